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

from xlir.io_utils import InputError, get_logger, read_tsv, write_json

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


def score_translation_file(qa_jsonl: str | Path, mt_jsonl: str | Path, lang: str, translator,
                           out_json: str | Path, references_tsv: str | Path | None = None, src: str = "en",
                           log: logging.Logger | None = None) -> dict:
    """Score `mt_jsonl` (translations of `qa_jsonl` into `lang`) and write `out_json`.

    With references for `lang` in `references_tsv` the headline method is
    "reference" and a round-trip block is added when the translator can
    translate back; otherwise the headline method is "round-trip"."""
    from xlir.translate import read_qa_pairs

    log = log or get_logger("mt_quality")
    qa = read_qa_pairs(qa_jsonl)
    mt = read_qa_pairs(mt_jsonl)
    english = {pair["pair_id"]: pair for pair in qa}
    unknown = [pair["pair_id"] for pair in mt if pair["pair_id"] not in english]
    if unknown:
        raise InputError(f"{mt_jsonl}: {len(unknown)} pair_id(s) not in {qa_jsonl}, e.g. {unknown[0]!r}")
    n_untranslated = len(english) - len(mt)
    if n_untranslated:
        log.warning("%s: %d of %d pairs of %s have no translation", mt_jsonl, n_untranslated, len(english), qa_jsonl)

    # Segments: (pair_id, field, English source, translation), English source non-empty.
    segments = [
        (pair["pair_id"], field, " ".join(english[pair["pair_id"]][field].split()), " ".join(pair[field].split()))
        for pair in mt for field in FIELDS if english[pair["pair_id"]][field].strip()
    ]
    backend = getattr(translator, "name", None) if translator is not None else None
    result: dict = {"lang": lang, "src": src, "backend": backend, "mt_file": str(mt_jsonl)}

    references = read_references(references_tsv, lang) if references_tsv else {}
    reference_block = None
    if references:
        matched = [(references[(pair_id, field)], hyp) for pair_id, field, _, hyp in segments
                   if (pair_id, field) in references]
        reference_block = score_against_references([hyp for _, hyp in matched], [ref for ref, _ in matched],
                                                   tokenize=bleu_tokenizer(lang))
        reference_block["references_file"] = str(references_tsv)
        reference_block["references_unmatched"] = len(references) - len(matched)
        if not matched:
            log.warning("%s: %d %s references, none matches a translated segment", references_tsv,
                        len(references), lang)
            reference_block = None

    round_trip_block = None
    round_trip_error = None
    if translator is None:
        round_trip_error = "no translator given"
    else:
        try:
            back = translator.translate([hyp for *_, hyp in segments], lang, src)
            round_trip_block = round_trip_scores([source for _, _, source, _ in segments], back,
                                                 tokenize=bleu_tokenizer(src))
            round_trip_block["back_translation"] = f"{lang}->{src} with {backend}"
        except (ValueError, RuntimeError) as error:
            if reference_block is None:
                raise
            round_trip_error = str(error)
            log.warning("round-trip scoring of %s skipped: %s", lang, error)
    if reference_block is None and round_trip_block is None:
        raise ValueError(f"{lang}: neither references nor a translator to score {mt_jsonl}")

    headline = reference_block if reference_block is not None else round_trip_block
    assert headline is not None
    result.update({
        "method": headline["method"],
        "n_segments": headline["n"],
        "n": headline["n"],
        "bleu": headline["bleu"],
        "chrf": headline["chrf"],
    })
    if reference_block is not None:
        note = (f"Reference-based: corpus BLEU and chrF (sacrebleu, tokenize={reference_block['tokenize']}) of the "
                f"{backend or 'machine'} {src}->{lang} translations of {reference_block['n']} question/answer "
                f"segments against human {lang} references from {references_tsv}.")
        if round_trip_block is not None:
            note += (" The 'round_trip' block additionally compares the English sources with their "
                     f"{src}->{lang}->{src} back-translations; it measures consistency, not adequacy.")
        elif round_trip_error:
            note += f" No round-trip score: {round_trip_error}."
    else:
        note = (f"Round-trip, no {lang} references: the {src}->{lang} translations of {round_trip_block['n']} "
                f"question/answer segments were translated back to {src} with {backend} and compared with the "
                f"original {src} text (corpus BLEU and chrF, sacrebleu, tokenize={round_trip_block['tokenize']}). "
                f"This measures round-trip consistency, not translation quality against human references: "
                f"literal or untranslated output can score high, and errors of both directions mix. "
                f"Not comparable with reference-based scores.")
    result["note"] = note
    if reference_block is not None:
        result["reference"] = reference_block
    if round_trip_block is not None:
        result["round_trip"] = round_trip_block
    if n_untranslated:
        result["n_untranslated_pairs"] = n_untranslated
    write_json(out_json, result)
    log.info("%s %s: %s BLEU %.1f chrF %.1f over %d segments", lang, backend, result["method"],
             result["bleu"] or 0.0, result["chrf"] or 0.0, result["n_segments"])
    return result
