"""Config files read outside Snakemake (the planners): merged in order as `snakemake --configfile
a.yaml b.yaml` merges them (a later file's keys replace an earlier one's, nested mappings key by
key), then validated against config/schema.yaml with its defaults filled, like the Snakefile does.
YTE templates are refused (`refuse_config_code`), here and in the Snakefile."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from xlir.common.io import InputError

#: the repository's schema (the package sits in workflow/xlir of the checkout)
SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


#: the environment switch that lets a config file be a YTE template (Snakemake then runs its code)
ALLOW_YTE = "XLIR_ALLOW_YTE"


def refuse_config_code(paths: list[str | Path], environ: Mapping[str, str] | None = None) -> None:
    """A config file is data: one that asks Snakemake to evaluate it as a YTE template
    (`__use_yte__: true`, which runs Python while the config loads) is refused, naming the file,
    unless the environment sets XLIR_ALLOW_YTE=1 (the config is then trusted code)."""
    environ = os.environ if environ is None else environ
    if environ.get(ALLOW_YTE) == "1":
        return
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "__use_yte__" in text:
            raise ValueError(
                f"config file {path}: '__use_yte__' makes Snakemake evaluate the file as a YTE template, which runs "
                f"Python code; xlir refuses config files that are code. Remove the key, or set {ALLOW_YTE}=1 if you "
                "trust the file"
            )


def merge(into: dict, other: dict) -> dict:
    """`other` merged into `into` key by key (nested mappings recursively), as Snakemake does."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def read_config_file(path: str | Path) -> dict:
    """One YAML config file; a syntax error names the file, line and column."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"config file {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"config file {path}:{where}: not valid YAML ({getattr(error, 'problem', error)})") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config file {path}: expected a mapping of config keys, found {type(data).__name__}")
    return data


def load_config(paths: Sequence[str | Path], schema: Path = SCHEMA) -> dict:
    """The config of `paths` (merged in order), validated, defaults filled."""
    from snakemake.utils import validate

    if not paths:
        raise InputError("no config file given")
    refuse_config_code(list(paths))
    config: dict = {}
    for path in paths:
        merge(config, read_config_file(path))
    try:
        validate(config, schema=str(schema), set_default=True)
    except Exception as error:  # snakemake's WorkflowError: the key, the value and what was expected
        raise InputError(f"config files {', '.join(map(str, paths))}: {error}") from error
    return config


@functools.cache
def _schema(schema: Path = SCHEMA) -> dict:
    import yaml

    return yaml.safe_load(schema.read_text(encoding="utf-8"))


def schema_defaults(*section: str, schema: Path = SCHEMA) -> dict:
    """The defaults config/schema.yaml states for the keys of one config section, the one place
    a default is written: `schema_defaults("report")`, `schema_defaults("training")`, or
    `schema_defaults("models", "*")` for the keys of every model (`*`: the section's
    additionalProperties). A key without a default is left out."""
    node = _schema(schema)
    for key in section:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return {key: spec["default"] for key, spec in node.get("properties", {}).items() if "default" in spec}


def with_defaults(values: dict | None, *section: str) -> dict:
    """`values` (one config section, possibly partial) over the schema's defaults of that section."""
    return {**schema_defaults(*section), **(values or {})}
