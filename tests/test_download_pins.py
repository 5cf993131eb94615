"""Pinned downloads (no network): MIRACL files are checked against the SHA-256 recorded at
their first fetch, from a mirror or a fake hub served from file:// URLs; hub models take a
`revision`, which prepare_model passes to the hub, model_card.json records (with the commit it
resolved to) and the report's provenance shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_workflow import MIRACL, write_miracl_mirror
from xlir.benchmarks.fetch_benchmark import fetch_miracl
from xlir.common.download import pin_checksums
from xlir.common.io import InputError, read_json

QRELS_EN = "miracl-v1.0-en/qrels/qrels.miracl-v1.0-en-dev.tsv"


# ------------------------------------------------------------------ pin_checksums
def test_pins_record_then_verify_then_refuse(tmp_path):
    pins = tmp_path / "checksums" / "miracl.json"
    first = {"a/x.tsv": {"sha256": "1" * 64, "bytes": 3, "source": "/mirror/a/x.tsv"}}
    assert pin_checksums(pins, first) == {"a/x.tsv": "recorded"}
    recorded = read_json(pins)["files"]["a/x.tsv"]
    assert recorded["sha256"] == "1" * 64 and recorded["first_source"] == "/mirror/a/x.tsv"
    assert pin_checksums(pins, first) == {"a/x.tsv": "verified"}

    changed = {"a/x.tsv": {"sha256": "2" * 64, "bytes": 3, "source": "https://hub/a/x.tsv"}}
    with pytest.raises(InputError) as error:
        pin_checksums(pins, changed)
    message = str(error.value)
    assert "https://hub/a/x.tsv (a/x.tsv)" in message and "2" * 64 in message and "1" * 64 in message
    assert str(pins) in message and "data.verify_checksums" in message
    # verify false: accepted and logged, the record is kept
    assert pin_checksums(pins, changed, verify=False) == {"a/x.tsv": "differs"}
    assert read_json(pins)["files"]["a/x.tsv"]["sha256"] == "1" * 64


def test_a_damaged_record_is_named(tmp_path):
    pins = tmp_path / "miracl.json"
    pins.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="not a checksum record"):
        pin_checksums(pins, {"k": {"sha256": "0" * 64, "bytes": 1, "source": "s"}})


# ------------------------------------------------------------------ fetch_miracl
def test_miracl_mirror_first_fetch_records_later_fetch_verifies(tmp_path):
    write_miracl_mirror(tmp_path / "mirror")
    pins = tmp_path / "resources" / "checksums" / "miracl.json"
    records = fetch_miracl(["en", "es"], "dev", tmp_path / "first", tmp_path / "mirror", pins=pins)
    assert {r["pinned"] for r in records.values()} == {"recorded"}
    # two topics, two qrels, two corpus shards: keyed by their path under the mirror's miracl/
    assert len(read_json(pins)["files"]) == 6 and QRELS_EN in read_json(pins)["files"]
    records = fetch_miracl(["en", "es"], "dev", tmp_path / "second", tmp_path / "mirror", pins=pins)
    assert {r["pinned"] for r in records.values()} == {"verified"}
    assert read_json(tmp_path / "second" / "checksums.json")["files"]["en/qrels.tsv"]["pinned"] == "verified"


def test_miracl_changed_file_fails_naming_it_and_writes_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    write_miracl_mirror(mirror)
    pins = tmp_path / "miracl.json"
    fetch_miracl(["en"], "dev", tmp_path / "first", mirror, pins=pins)
    with open(mirror / "miracl" / QRELS_EN, "a", encoding="utf-8") as handle:
        handle.write("101\tQ0\t2#0\t1\n")  # a changed judgement
    with pytest.raises(InputError) as error:
        fetch_miracl(["en"], "dev", tmp_path / "second", mirror, pins=pins)
    assert f"{mirror / 'miracl' / QRELS_EN} ({QRELS_EN})" in str(error.value)
    assert not (tmp_path / "second").exists()  # the folder appears only when every file passed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".second")]
    # data.verify_checksums: false accepts it
    records = fetch_miracl(["en"], "dev", tmp_path / "third", mirror, pins=pins, verify=False)
    assert records["en/qrels.tsv"]["pinned"] == "differs"
    assert (tmp_path / "third" / "en" / "qrels.tsv").read_text(encoding="utf-8").endswith("2#0\t1\n")


def fake_hub(root: Path, mirror: Path) -> str:
    """A file:// stand-in for huggingface.co serving the mirror's MIRACL files (HF_ENDPOINT)."""
    for relative in (mirror / "miracl").rglob("*"):
        if relative.is_file():
            name = relative.relative_to(mirror / "miracl")
            dataset = "miracl-corpus" if name.parts[0].startswith("miracl-corpus") else "miracl"
            target = root / "datasets" / "miracl" / dataset / "resolve" / "main" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(relative, target)
    for lang in MIRACL:
        folder = f"miracl-corpus-v1.0-{lang}"
        listing = [{"type": "file", "path": f"{folder}/docs-0.jsonl.gz"}]
        tree = root / "api" / "datasets" / "miracl" / "miracl-corpus" / "tree" / "main" / folder
        tree.parent.mkdir(parents=True, exist_ok=True)
        tree.write_text(json.dumps(listing), encoding="utf-8")
    return root.as_uri()


def test_miracl_download_is_pinned_like_the_mirror(tmp_path, monkeypatch):
    """Downloaded first (fake hub), then copied from a mirror: one record, the same keys."""
    mirror = tmp_path / "mirror"
    write_miracl_mirror(mirror)
    monkeypatch.setenv("HF_ENDPOINT", fake_hub(tmp_path / "hub", mirror))
    pins = tmp_path / "miracl.json"
    records = fetch_miracl(["en", "es"], "dev", tmp_path / "downloaded", None, allow_download=True, pins=pins)
    assert {r["pinned"] for r in records.values()} == {"recorded"}
    assert all(r["source"].startswith("file://") for r in records.values())
    records = fetch_miracl(["en", "es"], "dev", tmp_path / "copied", mirror, pins=pins)
    assert {r["pinned"] for r in records.values()} == {"verified"}
    # the hub's file changes: the next download fails naming it
    served = tmp_path / "hub" / "datasets" / "miracl" / "miracl" / "resolve" / "main" / QRELS_EN
    served.write_text("101\tQ0\t1#0\t0\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"{served.as_uri()} \\({QRELS_EN}\\)"):
        fetch_miracl(["en"], "dev", tmp_path / "again", None, allow_download=True, pins=pins)


def test_fetch_benchmark_cli_passes_pins(tmp_path):
    from xlir.cli import main

    write_miracl_mirror(tmp_path / "mirror")
    pins = tmp_path / "pins.json"
    args = ["fetch-benchmark", "--kind", "miracl", "--split", "dev", "--languages", "en", "--mirror"]
    main([*args, str(tmp_path / "mirror"), "--pins", str(pins), "--out-dir", str(tmp_path / "out")])
    assert QRELS_EN in read_json(pins)["files"]


# ------------------------------------------------------------------ hub revision
def test_hub_revision_reaches_the_hub_and_the_provenance(tmp_path, tiny_model_dir, monkeypatch):
    import transformers

    from xlir.model.prepare_model import prepare_model
    from xlir.report.provenance import model_table

    asked = []

    def loader(cls):
        real = cls.from_pretrained

        def from_pretrained(hub_id, revision=None, **kwargs):
            asked.append((cls.__name__, hub_id, revision))
            loaded = real(str(tiny_model_dir), **kwargs)
            if hasattr(loaded, "config"):
                loaded.config._commit_hash = "c0ffee" * 6 + "beef"
            return loaded

        return from_pretrained

    for cls in (transformers.AutoModel, transformers.AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", loader(cls))
    # the stand-in hub answers (prepare_model asks before it downloads)
    monkeypatch.setattr("xlir.model.prepare_model.hub_reachable", lambda endpoint: None)
    results = tmp_path / "results"
    card = prepare_model("hub", results / "models" / "xlmr" / "base", hub_id="org/xlmr", revision="v1.0")
    assert asked == [("AutoTokenizer", "org/xlmr", "v1.0"), ("AutoModel", "org/xlmr", "v1.0")]
    assert card["revision"] == "v1.0" and card["resolved_revision"] == "c0ffee" * 6 + "beef"
    assert read_json(results / "models" / "xlmr" / "base" / "model_card.json")["revision"] == "v1.0"

    config = {
        "models": {
            "xlmr": {"source": "hub", "hub_id": "org/xlmr", "revision": "v1.0"},
            "unpinned": {"source": "hub", "hub_id": "org/other"},
        }
    }
    table = model_table(config, results).set_index("model")
    assert table.loc["xlmr", "origin"] == "org/xlmr" and table.loc["xlmr", "revision"] == "v1.0"
    assert table.loc["xlmr", "resolved commit"] == "c0ffee" * 6 + "beef"
    assert table.loc["unpinned", "revision"].startswith("none (default branch")


def test_prepare_model_cli_takes_a_revision():
    from xlir.cli import build_parser

    parsed = build_parser().parse_args(
        ["prepare-model", "--source", "hub", "--hub-id", "org/m", "--revision", "abc", "--out", "x"]
    )
    assert parsed.revision == "abc"
