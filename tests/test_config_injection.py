"""No config value reaches a shell unquoted, and no configured name leaves its folder.

Every injection and traversal of issue 13 is tried against the real workflow with
`snakemake -n` (nothing is trained or fetched):

- names that become path components (models, variants, samplings, benchmarks, categories,
  a MIRACL split, grid names) and the torch device are pattern-checked by config/schema.yaml:
  the dry run fails naming the config key, and nothing runs or is written;
- path-valued strings (translation.cache and references, data.mirror, a benchmark folder,
  a model's path, hub id and revision, qa.corpus_dir) may hold any character: the dry run
  prints every job's shell command (-p), each is then run by bash with `xlir` and `torchrun`
  replaced by a function that records its arguments, and no payload runs while each arrives
  whole, as written, inside one argument.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import build_tiny_model
from tests.test_workflow import tiny_config, write_corpus, write_miracl_mirror

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]

# bash functions that stand in for the workflow's commands: each call appends its
# arguments (NUL-separated, one call per line) to $ARGS_FILE
STUBS = 'xlir() { printf "%s\\0" "$@" >> "$ARGS_FILE"; printf "\\n" >> "$ARGS_FILE"; }; torchrun() { xlir "$@"; }; '


def payload(n: int) -> str:
    """Shell code in three forms, a quoted word and a glob; each form touches its own marker."""
    return f"x$(touch p{n})`touch q{n}`;touch r{n};'y' *"


def markers(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*") if re.fullmatch(r"[pqr]\d+", p.name))


def dry_run(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return subprocess.run(
        [*SNAKEMAKE, "-d", str(workdir), "--configfile", str(workdir / "config.yaml"), "-n", *args, "all"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_shell_commands(output: str, cwd: Path) -> tuple[list[list[str]], list[str]]:
    """Run every `Shell command:` of a dry run's output with the stubs in `cwd`: the argument
    lists the stubs recorded, and the commands."""
    commands = [c for c in re.findall(r"^Shell command: (.*)$", output, re.M) if c != "None"]  # None: rule all
    args_file = cwd / "args.bin"
    args_file.write_bytes(b"")
    for command in commands:
        command = command.removeprefix("exec ")  # rules exec their command; exec would bypass the stubs
        redirect = re.search(r"2>> (\S+)$", command)  # the job's log folder, which Snakemake would create
        if redirect:
            (cwd / redirect.group(1)).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["bash", "-c", STUBS + command],
            cwd=cwd,
            env={"PATH": "/usr/bin:/bin", "ARGS_FILE": str(args_file)},
            capture_output=True,
            timeout=60,
        )
    calls = [line for line in args_file.read_bytes().split(b"\n") if line]
    return [[word.decode() for word in call.split(b"\0")[:-1]] for call in calls], commands


@pytest.fixture()
def workdir(tmp_path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_harness_detects_an_unquoted_value(tmp_path):
    """The check itself: an unquoted payload in a command does run under the stubs."""
    calls, _ = run_shell_commands(f"Shell command: xlir train --device {payload(0)}\n", tmp_path)
    assert [p.name for p in markers(tmp_path)] == ["p0", "q0", "r0"]
    assert calls and "*" not in calls[0]  # the glob expanded too


def refused(config: dict, key: tuple[str, ...], value):
    """A config with `value` at `key` (a path of keys; a last part `{name}` renames that mapping key)."""
    node = config
    for part in key[:-1]:
        node = node.setdefault(part, {})
    last = key[-1]
    if last.startswith("{") and last.endswith("}"):
        old = last[1:-1]
        node[value] = node.pop(old)
        if key[0] == "variants" and config["grid"]["baseline_variant"] == old:
            config["grid"]["baseline_variant"] = value
    else:
        node[last] = value
    return config


def base_config(tmp: Path) -> dict:
    config = tiny_config(tmp)
    config["grid"] = {"baseline_variant": "uniform", "main_sampling": "hybrid"}
    return config


# (config key as a path, value, the key the error must name as Snakemake prints it)
REFUSED = [
    (("qa", "heldout_categories"), ["x'$(touch p1)'"], "['qa']['heldout_categories'][0]"),
    (("qa", "exclude_categories"), ["$(touch p1)"], "['qa']['exclude_categories'][0]"),
    (("benchmarks", "{demo}"), "b$(touch p1)", "['benchmarks']"),
    (("benchmarks", "{demo}"), "../../../../tmp/x", "['benchmarks']"),
    (("benchmarks", "{demo}"), "../../../escaped", "['benchmarks']"),
    (("benchmarks", "miracl", "split"), "dev$(touch p1)", "['benchmarks']['miracl']['split']"),
    (("models", "tiny", "device"), "cpu$(touch p1)", "['models']['tiny']['device']"),
    (("models", "{tiny}"), "..", "['models']"),
    (("models", "{tiny}"), "-rf", "['models']"),
    (("variants", "{uniform}"), "..", "['variants']"),
    (("variants", "{decay-0.8}"), ".", "['variants']"),
    (("samplings", "{xx}"), "..", "['samplings']"),
    (("grid", "main_sampling"), "../x", "['grid']['main_sampling']"),
    (("translation", "hf", "device"), "cuda;touch p1", "['translation']['hf']['device']"),
]


@pytest.mark.parametrize("key, value, where", REFUSED, ids=[f"{'.'.join(k)}={v!r}" for k, v, _ in REFUSED])
def test_bad_name_fails_before_anything_runs(workdir, key, value, where):
    config = refused(base_config(workdir), key, value)
    done = dry_run(workdir, config)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "Error validating config file" in output
    assert f"On instance{where}" in output, output[-3000:]
    shown = value[0] if isinstance(value, list) else value
    assert repr(shown) in output or shown in output
    # nothing ran or was written: no marker, no results, no resources, nothing beside the work folder
    assert not markers(workdir.parent)
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()
    assert sorted(p.name for p in workdir.parent.iterdir()) == ["work"]


def test_path_values_reach_every_command_quoted(workdir):
    """Shell code in every path-valued string: the workflow plans, and no payload runs."""
    config = base_config(workdir)
    values = {}
    config["translation"]["cache"] = values["translation.cache"] = f"results/cache/mt{payload(2)}.sqlite"
    references = workdir / f"ref{payload(3)}.tsv"
    references.write_text("pair_id\tfield\tlang\treference\np1\tquestion\tes\thola\n", encoding="utf-8")
    config["translation"]["references"] = values["translation.references"] = str(references)
    # the folders and files exist (the load-time checks look for them): only their names carry the payloads
    write_miracl_mirror(workdir / f"mirror{payload(4)}")
    config["data"]["mirror"] = values["data.mirror"] = str(workdir / f"mirror{payload(4)}")
    build_tiny_model(workdir / f"model{payload(5)}")
    config["models"]["tiny"]["path"] = values["models.tiny.path"] = str(workdir / f"model{payload(5)}")
    # a hub model is checked at load only with the network off: this one would be downloaded
    config["data"]["download"] = True
    config["models"]["hubbed"] = {"source": "hub", "hub_id": f"org/m{payload(6)}", "revision": payload(7)}
    values["models.hubbed.hub_id"], values["models.hubbed.revision"] = f"org/m{payload(6)}", payload(7)
    write_corpus(workdir / f"corpus{payload(8)}")
    config["qa"]["corpus_dir"] = values["qa.corpus_dir"] = str(workdir / f"corpus{payload(8)}")
    folder = workdir / f"xquad{payload(9)}"
    folder.mkdir()
    (folder / "en.json").write_text('{"version": "1.1", "data": []}', encoding="utf-8")
    config["benchmarks"]["xq"] = {"kind": "lareqa", "dataset": "xquad-r", "languages": ["en"], "folder": str(folder)}
    values["benchmarks.xq.folder"] = str(folder)

    done = dry_run(workdir, config, "-p")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sandbox = workdir.parent / "sandbox"
    sandbox.mkdir()
    calls, commands = run_shell_commands(done.stdout + done.stderr, sandbox)
    assert len(calls) == len(commands) > 50  # every job's command ran under the stubs
    assert not markers(workdir.parent)
    words = [word for call in calls for word in call]
    for key, value in values.items():
        if key == "translation.cache":  # one cache per target language: {cache stem}-{lang}.sqlite
            value = value.removesuffix(".sqlite")
        assert any(value in word for word in words), f"{key}: {value!r} did not arrive as written"
    # the hub revision reaches prepare-model as one argument after --revision
    prepare = [call for call in calls if call[0] == "prepare-model" and "--hub-id" in call]
    assert len(prepare) == 1 and prepare[0][prepare[0].index("--revision") + 1] == payload(7)
    # the per-language cache and the references reached the commands that read them
    assert any(word.endswith("-es.sqlite") and payload(2) in word for word in words)
    assert sum(str(references) == word for word in words) == len(config["translation"]["languages"])
