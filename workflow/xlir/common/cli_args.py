"""Argument types and the subcommand helper shared by every stage's `commands.py`.

Structured options (variant profiles, MT backends, the report manifest) are passed as
JSON strings so that Snakemake's params tracking sees every value a job depends on."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable


def json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from error


def langs_arg(text: str) -> list[str]:
    """A language (or category) list: space- or comma-separated."""
    return [t for t in text.replace(",", " ").split() if t]


def bool_arg(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def add_command(
    sub: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], None], help_text: str
) -> argparse.ArgumentParser:
    """A subcommand with its handler and the `--log` option every rule passes."""
    parser = sub.add_parser(name, help=help_text)
    parser.set_defaults(func=handler)
    parser.add_argument("--log", help="the rule's log file (appended)")
    return parser
