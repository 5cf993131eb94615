"""Training data: the lareqa source, the grouped dev split, human + machine texts per
language, batch plans over pairs with partial languages (no cross-language false
negatives), and the dev benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xlir.benchmarks.build_demo_benchmark import lareqa_document
from xlir.benchmarks.build_dev_benchmark import build_dev_benchmark
from xlir.benchmarks.lareqa import load_lareqa
from xlir.common.io import InputError, read_json, read_jsonl, write_jsonl
from xlir.data.build_train_set import build_training_pairs
from xlir.data.prepare_qa import prepare_qa, split_pairs
from xlir.data.sources.lareqa import load_lareqa_source
from xlir.train.plan_batches import plan_batches

ROOT = Path(__file__).resolve().parents[1]


def _write_lareqa(folder: Path, lang: str, articles: dict[str, list[tuple[str, str, str]]]) -> None:
    """{title: [(id, question, answer sentence)]} as one LAReQA file (a paragraph per article)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = []
    for title, items in articles.items():
        doc = lareqa_document([[{"id": i, "question": q, "answer": a} for i, q, a in items]], title)
        data.append({"title": title, "paragraphs": doc["data"][0]["paragraphs"]})
    (folder / f"{lang}.json").write_text(json.dumps({"data": data}), encoding="utf-8")


@pytest.fixture
def mlqa_like(tmp_path) -> Path:
    folder = tmp_path / "mlqa-r"
    articles_en = {
        f"Article {a}": [
            (f"id{a}-{k}", f"question {a} {k} about topic {a}?", f"Sentence {a} {k} answers it.") for k in range(4)
        ]
        for a in range(10)
    }
    _write_lareqa(folder, "en", articles_en)
    # German has only the first two questions of every article (as MLQA-R: 2-4 languages per id)
    articles_de = {
        f"Artikel {a}": [(i, f"Frage {i}?", f"Satz {i} beantwortet sie.") for i, _, _ in items[:2]]
        for a, items in enumerate(articles_en.values())
    }
    _write_lareqa(folder, "de", articles_de)
    return folder


def test_lareqa_source_links_languages_by_id(mlqa_like):
    pairs = load_lareqa_source(mlqa_like, ["en", "de"], "mlqa-r")
    assert len(pairs) == 40
    first = next(p for p in pairs if p["pair_id"] == "mlqa-r:id3-1")
    assert first["group"] == first["title"] == "Article 3"  # the English article, in every language
    assert first["texts"]["en"] == {"question": "question 3 1 about topic 3?", "answer": "Sentence 3 1 answers it."}
    assert first["texts"]["de"]["answer"] == "Satz id3-1 beantwortet sie."
    assert set(next(p for p in pairs if p["pair_id"] == "mlqa-r:id3-3")["texts"]) == {"en"}
    with pytest.raises(InputError, match=r"hi.json: mlqa-r file for training language 'hi' not found"):
        load_lareqa_source(mlqa_like, ["en", "hi"], "mlqa-r")


def test_dev_split_keeps_groups_together_and_is_seeded(mlqa_like):
    pairs = load_lareqa_source(mlqa_like, ["en", "de"], "mlqa-r")
    split = split_pairs(pairs, None, 0.2, None, seed=3)
    group_of = {p["pair_id"]: p["group"] for p in pairs}
    dev_groups = {group_of[i] for i in split["dev_pair_ids"]}
    train_groups = {group_of[i] for i in split["train_pair_ids"]}
    assert not dev_groups & train_groups
    assert len(split["dev_pair_ids"]) == 8 and split["dev_groups"] == 2
    assert split_pairs(pairs, None, 0.2, None, seed=3) == split
    assert split_pairs(pairs, None, 0.2, None, seed=4)["dev_pair_ids"] != split["dev_pair_ids"]
    assert split_pairs(pairs, None, 0.2, 4, seed=3)["dev_groups"] == 1  # max_pairs caps it


def test_prepare_and_build_mix_human_and_machine_texts(mlqa_like, tmp_path):
    qa = {"source": {"kind": "lareqa", "dataset": "mlqa-r", "languages": ["en", "de"]}, "dev": {"fraction": 0.2}}
    out = {name: tmp_path / name for name in ("pairs.jsonl", "en.jsonl", "refs.tsv", "split.json")}
    split = prepare_qa(qa, mlqa_like, *out.values())
    assert split["human_texts_per_language"] == {"de": 20, "en": 40}
    english = read_jsonl(out["en.jsonl"])
    assert len(english) == 40 and set(english[0]) == {"pair_id", "question", "answer"}
    references = out["refs.tsv"].read_text().splitlines()
    assert references[0] == "pair_id\tfield\tlang\treference" and len(references) == 1 + 40  # 20 de pairs x 2 fields
    # machine translation of every English pair into de and es (what rule translate writes)
    mt = {}
    for lang in ("de", "es"):
        mt[lang] = tmp_path / f"{lang}.jsonl"
        write_jsonl(
            mt[lang],
            [
                {"pair_id": e["pair_id"], "question": f"{lang} {e['question']}", "answer": f"{lang} {e['answer']}"}
                for e in english
            ],
        )
    stats = build_training_pairs(
        out["pairs.jsonl"],
        out["split.json"],
        mt,
        ["en", "de", "es"],
        tmp_path / "train.jsonl",
        tmp_path / "dev.jsonl",
        tmp_path / "stats.json",
    )
    assert stats["n_pairs"] == 32 and stats["n_dev_pairs"] == 8
    train = stats["texts_per_language"]
    dev = stats["dev_texts_per_language"]
    assert train["en"] == {"human": 32, "mt": 0}
    assert train["de"]["human"] + dev["de"]["human"] == 20  # human German used where it exists
    assert train["de"]["mt"] + dev["de"]["mt"] == 20  # MT only where the pair lacks German
    assert train["es"] == {"human": 0, "mt": 32}
    record = next(r for r in read_jsonl(tmp_path / "train.jsonl") if r["origin"]["de"] == "human")
    assert not record["texts"]["de"]["question"].startswith("de ")
    with pytest.raises(InputError, match="training.languages: \\['hi'\\]"):
        build_training_pairs(
            out["pairs.jsonl"],
            out["split.json"],
            mt,
            ["en", "hi"],
            tmp_path / "t2.jsonl",
            tmp_path / "d2.jsonl",
            tmp_path / "s2.json",
        )


def _pair(pair_id: str, texts: dict[str, tuple[str, str]]) -> dict:
    return {"pair_id": pair_id, "texts": {lang: {"question": q, "answer": a} for lang, (q, a) in texts.items()}}


def test_plans_use_only_the_languages_a_pair_has():
    pairs = [_pair(f"p{i}", {"en": (f"q{i}", f"a{i}"), "de": (f"dq{i}", f"da{i}")}) for i in range(20)]
    pairs += [_pair(f"h{i}", {"en": (f"hq{i}", f"ha{i}"), "hi": (f"iq{i}", f"ia{i}")}) for i in range(20)]
    languages = ["en", "de", "hi"]
    by_id = {p["pair_id"]: p for p in pairs}
    for alpha in (0.0, 0.5, 1.0):
        for batch in plan_batches(pairs, languages, alpha, 8, 30, seed=1):
            for item in batch["items"]:
                texts = by_id[item["pair_id"]]["texts"]
                assert item["query_lang"] in texts and item["passage_lang"] in texts
                if batch["kind"] == "cross":
                    assert item["query_lang"] != item["passage_lang"]


def test_no_cross_language_false_negatives():
    """Two pairs with one English question (asked in different languages) never share a batch."""
    pairs = [
        _pair(
            f"joke{i}", {"en": ("tell me a joke", f"joke number {i}"), "es": (f"cuéntame un chiste {i}", f"chiste {i}")}
        )
        for i in range(10)
    ]
    pairs += [
        _pair(f"p{i}", {"en": (f"question {i}", f"answer {i}"), "es": (f"pregunta {i}", f"respuesta {i}")})
        for i in range(30)
    ]
    jokes = {f"joke{i}" for i in range(10)}
    for alpha in (0.0, 0.5):
        for batch in plan_batches(pairs, ["en", "es"], alpha, 8, 40, seed=2):
            assert len(jokes & {item["pair_id"] for item in batch["items"]}) <= 1


def test_dev_benchmark_merges_repeated_answers(tmp_path):
    dev = [
        {
            "pair_id": "a",
            "group": "g",
            "texts": {"en": {"question": "who?", "answer": "Ann."}, "de": {"question": "wer?", "answer": "Anna."}},
        },
        {"pair_id": "b", "group": "g", "texts": {"en": {"question": "who again?", "answer": "Ann."}}},
        {
            "pair_id": "c",
            "group": "h",
            "texts": {"en": {"question": "where?", "answer": "Rome."}, "de": {"question": "wo?", "answer": "Rom."}},
        },
    ]
    write_jsonl(tmp_path / "dev.jsonl", dev)
    counts = build_dev_benchmark(tmp_path / "dev.jsonl", ["en", "de"], tmp_path / "raw")
    assert counts == {"en": 3, "de": 2}
    bench = load_lareqa(tmp_path / "raw", ["en", "de"])
    assert len(bench.candidates) == 4  # "Ann." once in English
    assert bench.relevant("en:b") == {"en:0:0"}
    assert bench.relevant("de:a") == {"en:0:0", "de:0:0"}


def _dry_run(tmp_path: Path, config: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    snakemake = Path(sys.executable).parent / "snakemake"
    return subprocess.run(
        [str(snakemake), "-n", "all", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_evaluation_benchmark_is_never_the_training_source(tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "config" / "lareqa.yaml").read_text())
    config["qa"]["source"]["dataset"] = "xquad-r"
    config["qa"]["source"]["languages"] = ["en", "de"]
    result = _dry_run(tmp_path, config)
    assert result.returncode != 0
    assert (
        "qa.source: the training source xquad-r is also evaluation benchmark 'xquad-r'" in result.stdout + result.stderr
    )


def test_split_file_records_the_source(mlqa_like, tmp_path):
    qa = {"source": {"kind": "lareqa", "dataset": "mlqa-r", "languages": ["en"]}, "dev": {"fraction": 0.1}}
    prepare_qa(qa, mlqa_like, *(tmp_path / n for n in ("p.jsonl", "e.jsonl", "r.tsv", "s.json")))
    split = read_json(tmp_path / "s.json")
    assert split["source"]["dataset"] == "mlqa-r" and split["heldout_pair_ids"] == []


@pytest.mark.parametrize(
    "source, problem",
    [
        ({"kind": "hf", "path": "x", "passage": "sentence"}, "'passage' was unexpected"),
        ({"kind": "jsonl"}, "'path' is a required property"),
        ({"kind": "lareqa", "dataset": "mlqa-r"}, "'languages' is a required property"),
        ({"kind": "squad", "dataset": "squad-v3"}, "'squad-v3' is not one of"),
    ],
)
def test_schema_names_the_source_keys_each_kind_reads(source, problem):
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["qa"]["source"] = source
    with pytest.raises(Exception, match=problem):
        validate(config, str(ROOT / "config" / "schema.yaml"), set_default=True)
