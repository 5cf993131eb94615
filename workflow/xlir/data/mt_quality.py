"""How good are the machine translations? Corpus BLEU and chrF with sacrebleu.

Two methods:

* "reference": the translations of the English QA segments are scored against
  human reference translations (a TSV with columns `pair_id, field, lang,
  reference`; `field` is `question` or `answer`).
* "round-trip": without references, each translation is translated back into
  English with the same translator and compared with the original English.
  This measures round-trip consistency, not adequacy: a literal system, or one
  that leaves words untranslated, can score high, and errors of the two
  directions mix. Round-trip scores are not comparable with reference scores.

Only sacrebleu's built-in offline tokenizers are used (13a; zh for Chinese;
char for Japanese, Korean, Thai), never a named test set or a tokenizer
that needs a download."""

from __future__ import annotations

import logging
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF

from xlir.common.io import InputError, get_logger, read_tsv, write_json

_CHAR_LANGS = {"ja", "ko", "th", "my", "km", "lo"}
FIELDS = ("question", "answer")
REFERENCE_COLUMNS = ("pair_id", "field", "lang", "reference")


def bleu_tokenizer(lang: str) -> str:
    """sacrebleu tokenizer for texts in `lang` (offline ones only)."""
    if lang == "zh":
        return "zh"
    if lang in _CHAR_LANGS:
        return "char"
    return "13a"


def _scores(hyps: list[str], refs: list[str], tokenize: str, method: str) -> dict:
    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        return {"method": method, "n": 0, "bleu": None, "chrf": None, "tokenize": tokenize}
    bleu = BLEU(tokenize=tokenize)
    chrf = CHRF()
    bleu_score = bleu.corpus_score(hyps, [refs])
    chrf_score = chrf.corpus_score(hyps, [refs])
    return {
        "method": method,
        "n": len(hyps),
        "bleu": round(float(bleu_score.score), 4),
        "chrf": round(float(chrf_score.score), 4),
        "tokenize": tokenize,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def score_against_references(hyps: list[str], refs: list[str], tokenize: str = "13a") -> dict:
    """Corpus BLEU and chrF (0-100) of `hyps` against one reference each."""
    return _scores(hyps, refs, tokenize, "reference")


def round_trip_scores(sources: list[str], back_translations: list[str], tokenize: str = "13a") -> dict:
    """Corpus BLEU and chrF of English back-translations (en->xx->en) against the English sources."""
    return _scores(back_translations, sources, tokenize, "round-trip")


def read_references(references_tsv: str | Path, lang: str) -> dict[tuple[str, str], str]:
    """References for `lang` from the TSV, keyed by (pair_id, field)."""
    path = Path(references_tsv)
    rows = read_tsv(path)
    if rows:
        missing = [column for column in REFERENCE_COLUMNS if column not in rows[0]]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(REFERENCE_COLUMNS)}")
    references: dict[tuple[str, str], str] = {}
    for line_number, row in enumerate(rows, start=2):
        if row.get("lang") != lang:
            continue
        pair_id, field, reference = row.get("pair_id") or "", row.get("field") or "", row.get("reference")
        if not pair_id:
            raise InputError(f"{path}: line {line_number}: empty pair_id")
        if field not in FIELDS:
            raise InputError(f"{path}: line {line_number}: field {field!r} is not one of {', '.join(FIELDS)}")
        if reference is None or not reference.strip():
            raise InputError(f"{path}: line {line_number}: empty reference for {pair_id} {field}")
        if (pair_id, field) in references:
            raise InputError(f"{path}: line {line_number}: second {lang} reference for {pair_id} {field}")
        references[(pair_id, field)] = " ".join(reference.split())
    return references


Segment = tuple[str, str, str, str]  # (pair_id, field, English source, translation)


def _translated_segments(qa_jsonl: str | Path, mt_jsonl: str | Path, log: logging.Logger) -> tuple[list[Segment], int]:
    """The segments of `mt_jsonl` with a non-empty English source in `qa_jsonl`
    (whitespace normalised), and how many pairs of `qa_jsonl` have no translation."""
    from xlir.data.translate import read_qa_pairs

    qa = read_qa_pairs(qa_jsonl)
    mt = read_qa_pairs(mt_jsonl)
    english = {pair["pair_id"]: pair for pair in qa}
    unknown = [pair["pair_id"] for pair in mt if pair["pair_id"] not in english]
    if unknown:
        raise InputError(f"{mt_jsonl}: {len(unknown)} pair_id(s) not in {qa_jsonl}, e.g. {unknown[0]!r}")
    n_untranslated = len(english) - len(mt)
    if n_untranslated:
        log.warning("%s: %d of %d pairs of %s have no translation", mt_jsonl, n_untranslated, len(english), qa_jsonl)
    segments = [
        (pair["pair_id"], field, " ".join(english[pair["pair_id"]][field].split()), " ".join(pair[field].split()))
        for pair in mt
        for field in FIELDS
        if english[pair["pair_id"]][field].strip()
    ]
    return segments, n_untranslated


def _reference_block(
    segments: list[Segment], references_tsv: str | Path | None, lang: str, log: logging.Logger
) -> dict | None:
    """Reference-based scores of the translations that have a `lang` reference in
    `references_tsv`; None without references or when none matches a segment."""
    references = read_references(references_tsv, lang) if references_tsv else {}
    if not references:
        if references_tsv:
            others = sorted({row.get("lang") or "" for row in read_tsv(references_tsv)})
            if others:  # human references exist, only not for this language: say so, not silently
                log.warning(
                    "%s: no %s references (it has %s); %s is scored round-trip instead",
                    references_tsv, lang, ", ".join(others), lang,
                )  # fmt: skip
            else:  # e.g. the chatterbot source, which has no human translations
                log.info("%s holds no references; %s is scored round-trip", references_tsv, lang)
        return None
    matched = [
        (references[(pair_id, field)], hyp) for pair_id, field, _, hyp in segments if (pair_id, field) in references
    ]
    block = score_against_references(
        [hyp for _, hyp in matched], [ref for ref, _ in matched], tokenize=bleu_tokenizer(lang)
    )
    block["references_file"] = str(references_tsv)
    block["references_unmatched"] = len(references) - len(matched)
    if not matched:
        log.warning("%s: %d %s references, none matches a translated segment", references_tsv, len(references), lang)
        return None
    return block


def _round_trip_block(
    segments: list[Segment], translator, lang: str, src: str, backend: str | None, required: bool, log: logging.Logger
) -> tuple[dict | None, str | None]:
    """Round-trip scores (`lang` -> `src` back-translations against the sources) and,
    when there are none, why. A translation error propagates when `required`
    (no reference scores to fall back on)."""
    if translator is None:
        return None, "no translator given"
    try:
        back = translator.translate([hyp for *_, hyp in segments], lang, src)
        block = round_trip_scores([source for _, _, source, _ in segments], back, tokenize=bleu_tokenizer(src))
        block["back_translation"] = f"{lang}->{src} with {backend}"
        return block, None
    except (ValueError, RuntimeError) as error:
        if required:
            raise
        log.warning("round-trip scoring of %s skipped: %s", lang, error)
        return None, str(error)


def _note(
    reference_block: dict | None,
    round_trip_block: dict | None,
    round_trip_error: str | None,
    backend: str | None,
    src: str,
    lang: str,
    references_tsv: str | Path | None,
) -> str:
    """The result's human-readable description of the headline method."""
    if reference_block is not None:
        note = (
            f"Reference-based: corpus BLEU and chrF (sacrebleu, tokenize={reference_block['tokenize']}) of the "
            f"{backend or 'machine'} {src}->{lang} translations of {reference_block['n']} question/answer "
            f"segments against human {lang} references from {references_tsv}."
        )
        if round_trip_block is not None:
            note += (
                " The 'round_trip' block additionally compares the English sources with their "
                f"{src}->{lang}->{src} back-translations; it measures consistency, not adequacy."
            )
        elif round_trip_error:
            note += f" No round-trip score: {round_trip_error}."
        return note
    assert round_trip_block is not None
    return (
        f"Round-trip, no {lang} references: the {src}->{lang} translations of {round_trip_block['n']} "
        f"question/answer segments were translated back to {src} with {backend} and compared with the "
        f"original {src} text (corpus BLEU and chrF, sacrebleu, tokenize={round_trip_block['tokenize']}). "
        f"This measures round-trip consistency, not translation quality against human references: "
        f"literal or untranslated output can score high, and errors of both directions mix. "
        f"Not comparable with reference-based scores."
    )


def score_translation_file(
    qa_jsonl: str | Path,
    mt_jsonl: str | Path,
    lang: str,
    translator,
    out_json: str | Path,
    references_tsv: str | Path | None = None,
    src: str = "en",
    log: logging.Logger | None = None,
) -> dict:
    """Score `mt_jsonl` (translations of `qa_jsonl` into `lang`) and write `out_json`.

    With references for `lang` in `references_tsv` the headline method is
    "reference" and a round-trip block is added when the translator can
    translate back; otherwise the headline method is "round-trip"."""
    log = log or get_logger(__name__)
    segments, n_untranslated = _translated_segments(qa_jsonl, mt_jsonl, log)
    backend = getattr(translator, "name", None) if translator is not None else None
    result: dict = {"lang": lang, "src": src, "backend": backend, "mt_file": str(mt_jsonl)}
    reference_block = _reference_block(segments, references_tsv, lang, log)
    round_trip_block, round_trip_error = _round_trip_block(
        segments, translator, lang, src, backend, reference_block is None, log
    )
    if reference_block is None and round_trip_block is None:
        raise ValueError(f"{lang}: neither references nor a translator to score {mt_jsonl}")

    headline = reference_block if reference_block is not None else round_trip_block
    assert headline is not None
    result.update(
        {
            "method": headline["method"],
            "n_segments": headline["n"],
            "n": headline["n"],
            "bleu": headline["bleu"],
            "chrf": headline["chrf"],
        }
    )
    result["note"] = _note(reference_block, round_trip_block, round_trip_error, backend, src, lang, references_tsv)
    if reference_block is not None:
        result["reference"] = reference_block
    if round_trip_block is not None:
        result["round_trip"] = round_trip_block
    if n_untranslated:
        result["n_untranslated_pairs"] = n_untranslated
    write_json(out_json, result)
    log.info(
        "%s %s: %s BLEU %.1f chrF %.1f over %d segments",
        lang,
        backend,
        result["method"],
        result["bleu"] or 0.0,
        result["chrf"] or 0.0,
        result["n_segments"],
    )
    return result
