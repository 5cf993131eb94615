"""Every command of the README, the docs and the config files' comments works as written.

The commands are extracted from README.md, every docs/*.md page and config/README.md (fenced
bash blocks, and inline code spans that start with snakemake, xlir, make or python -m; a
fenced block of another language, e.g. `text`, is not run: the pages put there the commands
that need a finished study or shard) and from the comment lines of config/*.yaml
that hold an indented command; the commands of one block (or of consecutive comment lines) run
in order in a fresh copy of the repository, with `.venv` linked to the environment running
the tests. Each `snakemake` command is run with `-n` inserted after the program (a dry run:
the command line, the config files and the whole DAG, nothing is fetched or trained), each
`make` target with `make -n`, each `xlir` / `python -m` command as written (a bare
subcommand with --help). The one placeholder, `/path/to/mirror`, becomes a mirror folder.

The mirror form of the real study is also run for real as far as the data goes: the fetch
rules copy XQuAD-R and MLQA-R from the mirror and check their official SHA-256. That needs
the LAReQA files (../shared/data, or $XLIR_DATA_MIRROR); without them a fake mirror of
placeholder files stands in, whose checksums cannot match, so the fetch then runs with
data.verify_checksums: false (the layout is checked, the official files are not).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
REAL_MIRROR = Path(os.environ.get("XLIR_DATA_MIRROR", REPO.parent / "shared" / "data"))
PROGRAMS = ("snakemake", "xlir", "make", "python", "printf")
COPIED = ("Snakefile", "Makefile", "workflow", "config", "profiles", "envs", "scripts", "pyproject.toml")


def program(line: str) -> str:
    words = line.split()
    return words[0].removeprefix(".venv/bin/") if words else ""


def pages() -> list[Path]:
    """The Markdown pages whose commands are tested: README.md, docs/*.md, config/README.md."""
    found = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return found + [path for path in [REPO / "config" / "README.md"] if path.is_file()]


def page_units(path: Path) -> list[tuple[str, list[str]]]:
    """(where, commands) of one page: each fenced bash block, then each inline command."""
    name = path.relative_to(REPO).as_posix()
    text = path.read_text(encoding="utf-8")
    units, prose = [], []
    pattern = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
    position = 0
    for match in pattern.finditer(text):
        prose.append((text[position : match.start()], text.count("\n", 0, position) + 1))
        position = match.end()
        if match.group(1) in ("bash", "sh", "shell"):
            line_no = text.count("\n", 0, match.start()) + 1
            lines = [line for line in match.group(2).splitlines() if program(line) in PROGRAMS]
            units.append((f"{name}:{line_no}", lines))
    prose.append((text[position:], text.count("\n", 0, position) + 1))
    seen = set()
    for chunk, first_line in prose:
        for match in re.finditer(r"`([^`\n]+)`", chunk):
            command = match.group(1).strip()
            if program(command) in PROGRAMS and len(command.split()) > 1 and command not in seen:
                seen.add(command)
                units.append((f"{name}:{first_line + chunk.count(chr(10), 0, match.start())}", [command]))
    return units


def config_comment_units() -> list[tuple[str, list[str]]]:
    """Consecutive comment lines of config/*.yaml that hold a command, as one unit each (a command
    is indented in its comment, `#   snakemake ...`; prose follows `# ` directly)."""
    units = []
    for path in sorted((REPO / "config").glob("*.yaml")):
        current: list[str] = []
        start = 0
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            body = line[1:].strip() if re.match(r"#\s{2,}\S", line) else None
            if body and program(body) in PROGRAMS:
                if not current:
                    start = number
                current.append(body)
            elif current:
                units.append((f"config/{path.name}:{start}", current))
                current = []
    return units


UNITS = [unit for path in pages() for unit in page_units(path)] + config_comment_units()


def mirror_folder(root: Path) -> tuple[Path, bool]:
    """The LAReQA mirror: the real one when present, else placeholder files in its layout."""
    if (REAL_MIRROR / "lareqa" / "xquad-r" / "en.json").is_file():
        return REAL_MIRROR, True
    fake = root / "mirror"
    for dataset, langs in (("xquad-r", "ar de el en es hi ru th tr vi zh"), ("mlqa-r", "ar de en es hi vi zh")):
        (fake / "lareqa" / dataset).mkdir(parents=True)
        for lang in langs.split():
            (fake / "lareqa" / dataset / f"{lang}.json").write_text('{"data": []}\n', encoding="utf-8")
    return fake, False


def repo_copy(root: Path) -> Path:
    copy = root / "repo"
    copy.mkdir()
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", ".snakemake"))
        elif source.exists():
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(VENV)
    return copy


def run(command: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(cwd / "workflow"),
    }
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def as_checked(command: str, mirror: Path) -> str | None:
    """The command as the test runs it (None: skipped, with pytest.skip's reason)."""
    command = command.replace("/path/to/mirror", str(mirror))
    words = shlex.split(command, comments=True)
    name = words[0].removeprefix(".venv/bin/")
    if name == "snakemake":
        if "--report" in words:
            return None  # Snakemake's own report needs a finished study
        if "--profile" in words and "profiles/slurm" in words:
            try:
                import snakemake_executor_plugin_slurm  # noqa: F401
            except ImportError:
                return None
        if "--lint" in words:
            return command
        first, _, rest = command.partition(" ")
        return f"{first} -n {rest}"
    if name == "make":
        return f"make -n {' '.join(shlex.quote(w) for w in words[1:])}"
    if name in ("xlir", "python") and len(words) == 2 + (name == "python"):
        return f"{command} --help"  # a bare subcommand or module named in the prose
    return command


@pytest.fixture(scope="module")
def shared_copy(tmp_path_factory) -> tuple[Path, Path, dict]:
    """One repository copy and mirror for every unit, and the outcome of each command run
    (a command documented twice, e.g. in the README and a config comment, runs once)."""
    root = tmp_path_factory.mktemp("documented")
    mirror, _ = mirror_folder(root)
    copy = repo_copy(root)
    (copy / "my.yaml").write_text((copy / "config" / "config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return copy, mirror, {}


@pytest.mark.parametrize("where, commands", UNITS, ids=[where for where, _ in UNITS])
def test_documented_commands_work_as_written(shared_copy, where, commands):
    copy, mirror, outcomes = shared_copy
    ran = 0
    for command in commands:
        checked = as_checked(command, mirror)
        if checked is None:
            continue
        if "results/models/e5-small/base" in checked and not (copy / "results/models/e5-small/base").exists():
            build_tiny_model(copy / "results" / "models" / "e5-small" / "base")  # what prepare_model writes
        key = shlex.join(shlex.split(checked, comments=True))
        if key not in outcomes:
            outcomes[key] = run(checked, copy)
        done = outcomes[key]
        assert done.returncode == 0, f"{where}: {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        if checked.split()[0].endswith("snakemake") and "--lint" not in checked:
            assert "This was a dry-run" in done.stdout + done.stderr, f"{where}: {command}: no DAG"
        ran += 1
    if not ran:
        pytest.skip(f"{where}: {commands} needs a finished study or the SLURM executor plugin")


def test_the_commands_were_found():
    """The extraction sees the real study's commands, mirror form included, in the docs pages
    and in config/lareqa.yaml, and it reads every page."""
    everything = [command for _, commands in UNITS for command in commands]
    mirror_forms = [
        where for where, commands in UNITS for c in commands if "--configfile config/lareqa.yaml mirror.yaml" in c
    ]
    assert any(where.startswith("config/lareqa.yaml:") for where in mirror_forms)
    assert any(where.startswith("docs/") for where in mirror_forms)
    assert any(c.startswith("printf") and "mirror.yaml" in c for c in everything)
    assert any(c.startswith("make study") for c in everything)
    assert sum("config/paper.yaml" in c for c in everything) >= 3
    readme = [c for where, commands in UNITS if where.startswith("README.md:") for c in commands]
    assert any(c.startswith("make study") for c in readme) and any(c.startswith("make test") for c in readme)
    assert {where.partition(":")[0] for where, _ in UNITS} >= {
        path.relative_to(REPO).as_posix() for path in pages() if page_units(path)
    }


def test_targets_never_follow_configfile():
    """`--configfile a b all` reads `all` as a third config file: targets come first."""
    for where, commands in UNITS:
        for command in commands:
            words = shlex.split(command, comments=True)
            if program(command) != "snakemake" or "--configfile" not in words:
                continue
            after = words[words.index("--configfile") + 1 :]
            end = next((i for i, w in enumerate(after) if w.startswith("-")), len(after))
            files = after[:end]
            assert all(w.endswith((".yaml", ".yml", ".json")) for w in files), f"{where}: {command}"


def test_mirror_form_of_the_real_study_fetches_from_the_mirror(tmp_path):
    """The README's mirror.yaml, then the fetch rules for real (mirror copies, SHA-256 checks)."""
    mirror, real = mirror_folder(tmp_path)
    copy = repo_copy(tmp_path)

    def has_printf(commands: list[str]) -> bool:
        return any(c.startswith("printf") and "mirror.yaml" in c for c in commands)

    block = next(commands for _, commands in UNITS if has_printf(commands))
    printf = next(c for c in block if c.startswith("printf"))
    assert run(printf.replace("/path/to/mirror", str(mirror)), copy).returncode == 0
    if not real:  # placeholder files cannot match the official checksums
        with open(copy / "mirror.yaml", "a", encoding="utf-8") as handle:
            handle.write("  verify_checksums: false\n")
    targets = "resources/benchmarks/xquad-r resources/qa/mlqa-r"
    done = run(f".venv/bin/snakemake {targets} --cores 2 --configfile config/lareqa.yaml mirror.yaml", copy)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    import json

    for folder, count in (("benchmarks/xquad-r", 11), ("qa/mlqa-r", 7)):
        files = json.loads((copy / "resources" / folder / "checksums.json").read_text(encoding="utf-8"))["files"]
        assert len(files) == count
        assert all(str(record["source"]).startswith(str(mirror)) for record in files.values())
        assert all(record["verified"] for record in files.values()) == real
