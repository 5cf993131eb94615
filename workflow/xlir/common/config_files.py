"""Config files read outside Snakemake (the planners): merged in order as `snakemake --configfile
a.yaml b.yaml` merges them (a later file's keys replace an earlier one's, nested mappings key by
key), then validated against config/schema.yaml with its defaults filled, like the Snakefile does.
YTE templates are refused (`xlir.config_checks.refuse_config_code`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xlir.common.io import InputError

#: the repository's schema (the package sits in workflow/xlir of the checkout)
SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


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

    from xlir.config_checks import refuse_config_code

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
