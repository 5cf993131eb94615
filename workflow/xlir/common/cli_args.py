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


class ListOption(argparse.Action):
    """A list option: any number of values (`--languages en es ca`; none is an empty list),
    each value may itself hold several, comma- or space-separated (`--languages "en,es"`).
    Rules pass lists as separately quoted words (`{params.languages:q}`)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, [item for value in values for item in langs_arg(value)])


def add_list_option(
    parser: argparse.ArgumentParser, flag: str, *, required: bool = False, help: str | None = None
) -> None:
    parser.add_argument(flag, nargs="*", action=ListOption, required=required, default=[], help=help)


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
