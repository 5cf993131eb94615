"""The package mirrors the DAG: one subpackage per rule file, rule = subcommand = module,
imports only from the same or an earlier stage, no import cycle, and facts held once
(variant keys, precisions) agree wherever they are stated."""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xlir import cli
from xlir.model.precision import PRECISIONS
from xlir.train import variants

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "workflow" / "xlir"
RULES = REPO / "workflow" / "rules"
#: stages in DAG order; `common` holds what every stage shares and imports no stage
ORDER = ["common", "model", "data", "benchmarks", "train", "retrieval", "evaluation", "analysis", "report", "shard"]
#: rules whose module is named after what they share with a sibling rule
SHARED_MODULES = {
    "index_dense": "dense",
    "search_dense": "dense",
    "index_bm25": "bm25",
    "search_bm25": "bm25",
    "check_leakage": "leakage",
    "drop_overlapping_pairs": "leakage",
}


def rules_by_file() -> dict[str, dict[str, str]]:
    """Rule file stem -> {rule name: its shell command text}."""
    found = {}
    for path in sorted(RULES.glob("*.smk")):
        text = path.read_text(encoding="utf-8")
        blocks = re.split(r"^rule (\w+):\n", text, flags=re.MULTILINE)
        found[path.stem] = {name: body for name, body in zip(blocks[1::2], blocks[2::2])}
    return found


def subcommands_of(commands_module) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    commands_module.register(sub)
    return set(sub.choices)


def stage_of_module(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "xlir" and parts[1] in ORDER else None


def imports_of(path: Path) -> set[str]:
    """Every xlir module a file imports, at the top or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("xlir"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xlir"):
            submodules = {
                f"{node.module}.{alias.name}"
                for alias in node.names
                if (PACKAGE.parent / f"{node.module}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
                or (PACKAGE.parent / f"{node.module}.{alias.name}".replace(".", "/")).is_dir()
            }
            # `from package import submodule` runs the package's __init__ only as a parent
            found.update(submodules if len(submodules) == len(node.names) else {node.module, *submodules})
    return found


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_one_rule_file_per_stage_and_one_subpackage_per_rule_file():
    stems = set(rules_by_file()) - {"common"}
    assert stems == set(ORDER) - {"common"}
    assert [stage for stage, _ in cli.STAGES] == ORDER[1:]
    for stage in ORDER:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
    assert not rules_by_file()["common"], "common.smk holds functions only"
    snakefile = (REPO / "Snakefile").read_text(encoding="utf-8")
    included = re.findall(r'^include: "workflow/rules/(\w+)\.smk"', snakefile, flags=re.MULTILINE)
    assert included == ORDER  # common first, then the stages in DAG order


@pytest.mark.parametrize("stage", ORDER[1:])
def test_rule_subcommand_and_module_say_the_same_thing(stage):
    commands = dict(cli.STAGES)[stage]
    subcommands = subcommands_of(commands)
    rules = rules_by_file()[stage]
    for rule, body in rules.items():
        subcommand = rule.replace("_", "-")
        # exec: the job's shell is replaced by the command, so a signal reaches xlir itself and no
        # orphan writes outputs after Snakemake gave the job up
        assert re.search(rf'"exec (xlir|\{{params\.launcher\}}) {subcommand} ', body), (
            f"rule {rule} calls exec xlir {subcommand}"
        )
        assert subcommand in subcommands, f"xlir {subcommand} is registered by xlir/{stage}/commands.py"
        module = SHARED_MODULES.get(rule, rule)
        assert (PACKAGE / stage / f"{module}.py").is_file() or (PACKAGE / stage / module).is_dir(), (
            f"rule {rule}: module xlir/{stage}/{module}.py"
        )
    # every subcommand of a stage's rules is registered there, and the tools beside them are few
    assert subcommands - {r.replace("_", "-") for r in rules} <= {
        "plan-memory",
        "plan-time",
        "plan-seeds",
        "compare-shards",
    }


def test_every_rule_has_a_conda_environment_in_step_with_the_requirements():
    for stage, rules in rules_by_file().items():
        for rule, body in rules.items():
            match = re.search(r'conda:\n\s+"([^"]+)"', body)
            assert match, f"rule {rule} ({stage}.smk) names no conda environment"
            env = (RULES / match.group(1)).resolve()
            assert env.is_file(), env
            spec = yaml.safe_load(env.read_text(encoding="utf-8"))
            pip = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict))
            assert "-r requirements.txt" in pip and (env.parent / "requirements.txt").is_file()


def test_imports_run_from_earlier_stages_only():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        here = stage_of_module(module_name(path))
        if here is None:  # xlir/__init__.py and cli.py assemble the stages
            continue
        for imported in imports_of(path):
            there = stage_of_module(imported)
            if there is not None and ORDER.index(there) > ORDER.index(here):
                wrong.append(f"{module_name(path)} ({here}) imports {imported} ({there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    graph = {module_name(path): {m for m in imports_of(path)} for path in PACKAGE.rglob("*.py")}
    graph = {module: {m for m in targets if m in graph and m != module} for module, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = trail[trail.index(target) :] if target in trail else [target]
                pytest.fail("import cycle: " + " -> ".join([*cycle, target]))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def schema() -> dict:
    return yaml.safe_load((REPO / "config" / "schema.yaml").read_text(encoding="utf-8"))


def test_variant_keys_per_kind_agree_between_schema_and_parser():
    spec = schema()["properties"]["variants"]["additionalProperties"]
    assert spec["properties"]["kind"]["enum"] == list(variants.KINDS)
    assert spec["properties"]["profile"]["enum"] == list(variants.LORA_PROFILES)
    assert spec["properties"]["direction"]["enum"] == list(variants.DIRECTIONS)
    by_kind = {rule["if"]["properties"]["kind"]["const"]: rule["then"] for rule in spec["allOf"]}
    assert set(by_kind) == set(variants.KINDS)
    common = set(variants.COMMON_KEYS) - {"name"}  # the name is the variant's key in the config
    for kind, then in by_kind.items():
        assert set(then.get("required", [])) == set(variants.REQUIRED_KEYS[kind]), kind
        assert set(then["properties"]) == common | set(variants.KIND_KEYS[kind]), kind
        assert then["additionalProperties"] is False
        assert set(then["properties"]) <= set(spec["properties"]), kind


def test_schema_rejects_what_the_parser_rejects():
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    for name, bad in {
        "d": {"kind": "decay", "gamma": 0.9, "rank": 4},
        "l": {"kind": "lora"},
        "u": {"kind": "uniform", "k": 2},
    }.items():
        with pytest.raises(ValueError):
            variants.parse_variant({"name": name, **bad})
        with pytest.raises(Exception, match="variants|valid"):
            validate({**config, "variants": {name: bad}}, str(REPO / "config" / "schema.yaml"))


def test_one_list_of_precisions():
    properties = schema()["properties"]
    model = properties["models"]["additionalProperties"]["properties"]
    assert model["encode_precision"]["enum"] == list(PRECISIONS)
    assert model["training"]["properties"]["precision"]["enum"] == list(PRECISIONS)
    assert properties["training"]["properties"]["precision"]["enum"] == list(PRECISIONS)


def test_loading_the_workflow_imports_no_torch():
    """Every xlir module the Snakefile and the rule files import at load time (snakemake -n, --lint)
    leaves torch unimported: torch costs seconds of every dry run."""
    modules = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        modules |= set(re.findall(r"^\s*from (xlir[\w.]*) import", path.read_text(encoding="utf-8"), re.M))
    assert "xlir.config_checks" in modules and "xlir.study" in modules
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in sorted(modules))
    code += "print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False", f"torch imported while loading the workflow ({sorted(modules)})"


#: config sections whose defaults config/schema.yaml states (`*`: every entry of a mapping)
DEFAULTED_SECTIONS = [
    ("training",),
    ("report",),
    ("grid",),
    ("analysis",),
    ("evaluation",),
    ("qa",),
    ("translation",),
    ("translation", "hf"),
    ("data",),
    ("leakage",),
    ("models", "*"),
]


def test_no_schema_default_is_written_again():
    """A default lives in config/schema.yaml alone: no package module restates one as
    `<mapping>.get("<key>", <the schema's default>)` (code reads it with
    xlir.common.config_files.schema_defaults / with_defaults, or from the validated config)."""
    from xlir.common.config_files import schema_defaults

    defaults: dict[str, set] = {}
    for section in DEFAULTED_SECTIONS:
        for key, value in schema_defaults(*section).items():
            if value is not None and not isinstance(value, (dict, list)):
                defaults.setdefault(key, set()).add(repr(value))
    restated = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"):
                continue
            if len(node.args) != 2 or not all(isinstance(arg, ast.Constant) for arg in node.args):
                continue
            key, value = node.args[0].value, node.args[1].value
            if isinstance(key, str) and repr(value) in defaults.get(key, ()):
                restated.append(f"{path.relative_to(REPO)}:{node.lineno}: .get({key!r}, {value!r})")
    assert not restated, "schema defaults written again:\n" + "\n".join(restated)


def test_config_checks_live_in_the_checker_not_in_the_rule_files():
    """Every config problem is found by xlir.config_checks (all of them reported at once), none
    by a `raise` in a rule file that would stop at the first."""
    raised = []
    for path in [REPO / "Snakefile", *sorted(RULES.glob("*.smk"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"raise \w+\(f?[\"']config key", line):
                raised.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not raised, "\n".join(raised)


def test_the_train_options_defaults_are_the_schemas():
    from xlir.common.config_files import schema_defaults
    from xlir.train.options import OPTION_KEYS, TrainOptions

    training = schema_defaults("training")
    assert TrainOptions().to_dict() == {key: training[key] for key in OPTION_KEYS}
