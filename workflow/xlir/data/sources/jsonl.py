"""JSON-lines QA files as source pairs. Each line is one of::

    {"id": "q1", "question": "...", "answer": "..."}                  # texts in `lang`
    {"id": "q1", "texts": {"en": {"question": "...", "answer": "..."},
                           "de": {"question": "...", "answer": "..."}}}  # already parallel

with optional `group` (what the dev split keeps together; the id by default) and `title`.
pair_id `jsonl:{id}`. Blank lines are ignored; a bad line raises InputError naming the
file and line."""

from __future__ import annotations

import json
from pathlib import Path

from xlir.common.io import InputError, get_logger, iter_lines

log = get_logger(__name__)


def _text(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _qa(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected an object with 'question' and 'answer'")
    question, answer = _text(value.get("question")), _text(value.get("answer"))
    if not question or not answer:
        raise InputError(f"{where}: 'question' and 'answer' must be non-empty strings")
    return {"question": question, "answer": answer}


def parse_record(record: object, lang: str, where: str) -> dict:
    """One line's object as a source pair (without the `jsonl:` prefix on its id)."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object")
    record_id = record.get("id")
    if not isinstance(record_id, str | int) or isinstance(record_id, bool) or not str(record_id).strip():
        raise InputError(f"{where}: 'id' must be a non-empty string or an integer")
    has_flat = "question" in record or "answer" in record
    if has_flat and "texts" in record:
        raise InputError(f"{where}: give either 'question'/'answer' or 'texts', not both")
    if "texts" in record:
        texts = record["texts"]
        if not isinstance(texts, dict) or not texts:
            raise InputError(f"{where}: 'texts' must map language codes to {{question, answer}} objects")
        texts = {str(code): _qa(value, f"{where}: texts.{code}") for code, value in texts.items()}
    elif has_flat:
        texts = {lang: _qa(record, where)}
    else:
        raise InputError(f"{where}: expected 'question' and 'answer' (or 'texts')")
    group, title = record.get("group", record_id), record.get("title")
    if not isinstance(group, str | int) or isinstance(group, bool) or not str(group).strip():
        raise InputError(f"{where}: 'group' must be a non-empty string")
    if title is not None and not isinstance(title, str):
        raise InputError(f"{where}: 'title' must be a string or null")
    return {"pair_id": str(record_id), "group": str(group), "title": title, "texts": texts}


def load_jsonl(path: Path, lang: str = "en") -> list[dict]:
    """Source pairs of one JSONL file; `lang` is the language of `{id, question, answer}` lines."""
    path = Path(path)
    pairs: list[dict] = []
    seen: dict[str, int] = {}
    try:
        lines = list(iter_lines(path))
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from error
    for line_number, line in lines:
        if not line.strip():
            continue
        where = f"{path}: line {line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where}: invalid JSON ({error.msg}, column {error.colno})") from error
        pair = parse_record(record, lang, where)
        if pair["pair_id"] in seen:
            raise InputError(f"{where}: id {pair['pair_id']!r} repeats the id of line {seen[pair['pair_id']]}")
        seen[pair["pair_id"]] = line_number
        pair["pair_id"] = f"jsonl:{pair['pair_id']}"
        pairs.append(pair)
    if not pairs:
        raise InputError(f"{path}: no records (expected one JSON object a line)")
    languages = sorted({code for pair in pairs for code in pair["texts"]})
    log.info("%s: %d pairs, languages %s", path, len(pairs), languages)
    return pairs
