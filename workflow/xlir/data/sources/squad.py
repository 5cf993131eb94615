"""SQuAD-format JSON (v1.1, v2.0, and translated SQuAD files of the same shape) as source
pairs, ReQA-style: the question and the sentence of its paragraph that holds the answer.

Sentences come from `sentencex` (Wikimedia's rule-based segmenter for ~300 languages; a
language without rules of its own falls back along its fallback chain, ending in English).
Each paragraph is segmented once, whatever the number of questions on it. With
`passage="paragraph"` the answer is the whole paragraph instead.

Questions marked `is_impossible` or without answers (SQuAD v2.0) are skipped and counted.
Of several reference answers (the dev files) the first is used. pair_id `squad:{qa id}`;
group `{title}#{paragraph index}`, so questions on one paragraph stay on one side of the
dev split; title the article title."""

from __future__ import annotations

import bisect
from pathlib import Path

from xlir.common.io import InputError, get_logger, read_json

log = get_logger(__name__)

PASSAGES = ("sentence", "paragraph")


def _text(value: object) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


class SentenceSpans:
    """Character spans of a paragraph's sentences, computed once per paragraph."""

    def __init__(self, context: str, language: str) -> None:
        import sentencex

        self.context = context
        self.spans = [(b["start_index"], b["end_index"]) for b in sentencex.get_sentence_boundaries(language, context)]
        self.starts = [start for start, _ in self.spans]

    def holding(self, offset: int) -> tuple[int, int] | None:
        """The (start, end) span of the sentence holding character `offset` (or, when that is
        blank, the first non-blank character after it); None if no sentence does."""
        while offset < len(self.context) and self.context[offset].isspace():
            offset += 1
        index = bisect.bisect_right(self.starts, offset) - 1
        if index < 0:
            return None
        start, end = self.spans[index]
        if not start <= offset < end or not self.context[start:end].strip():
            return None
        return start, end


def load_squad(
    path: Path,
    lang: str = "en",
    passage: str = "sentence",
    segmenter_lang: str | None = None,
    stats: dict | None = None,
) -> list[dict]:
    """Source pairs of one SQuAD-format file, texts in `lang`.

    `segmenter_lang` picks the sentence rules when they should differ from `lang`. When
    `stats` is a dict it receives the counts that are also logged."""
    path = Path(path)
    if passage not in PASSAGES:
        raise InputError(f"config key qa.source.passage: {passage!r} is not one of {list(PASSAGES)}")
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InputError(f"{path}: expected a SQuAD-format object with a 'data' list of articles")
    segmenter = segmenter_lang or lang
    counts = {"questions": 0, "unanswerable_skipped": 0, "pairs": 0, "paragraphs_segmented": 0,
              "answer_text_mismatch": 0, "answer_crosses_sentence": 0}  # fmt: skip
    pairs: list[dict] = []
    seen: dict[str, str] = {}
    for a, article in enumerate(document["data"]):
        where_article = f"{path}: data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise InputError(f"{where_article}: expected an article with a 'paragraphs' list")
        title = article.get("title")
        if title is not None and not isinstance(title, str):
            raise InputError(f"{where_article}.title: expected a string, got {type(title).__name__}")
        for p, paragraph in enumerate(article["paragraphs"]):
            where_paragraph = f"{where_article}.paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise InputError(f"{where_paragraph}: expected an object with 'context' and 'qas'")
            context, qas = paragraph.get("context"), paragraph.get("qas")
            if not isinstance(context, str) or not context.strip():
                raise InputError(f"{where_paragraph}.context: expected a non-empty string")
            if not isinstance(qas, list):
                raise InputError(f"{where_paragraph}.qas: expected a list of questions")
            group = f"{title if title is not None else f'data[{a}]'}#{p}"
            sentences: SentenceSpans | None = None
            for k, qa in enumerate(qas):
                where = f"{where_paragraph}.qas[{k}]"
                counts["questions"] += 1
                if not isinstance(qa, dict):
                    raise InputError(f"{where}: expected an object with 'id', 'question' and 'answers'")
                qa_id = qa.get("id")
                if not isinstance(qa_id, str | int) or isinstance(qa_id, bool) or not str(qa_id).strip():
                    raise InputError(f"{where}.id: expected a non-empty string")
                qa_id = str(qa_id)
                if qa_id in seen:
                    raise InputError(f"{where}.id: {qa_id!r} repeats the id of {seen[qa_id]}")
                seen[qa_id] = where
                question = _text(qa.get("question"))
                if not question:
                    raise InputError(f"{where}.question: expected a non-empty string")
                answers = qa.get("answers")
                if answers is not None and not isinstance(answers, list):
                    raise InputError(f"{where}.answers: expected a list")
                if qa.get("is_impossible") or not answers:
                    counts["unanswerable_skipped"] += 1
                    continue
                answer = answers[0]
                start = answer.get("answer_start") if isinstance(answer, dict) else None
                if not isinstance(start, int) or isinstance(start, bool):
                    raise InputError(f"{where}.answers[0].answer_start: expected an integer character offset")
                if not 0 <= start < len(context):
                    raise InputError(
                        f"{where}.answers[0].answer_start: {start} lies outside the paragraph "
                        f"({len(context)} characters)"
                    )
                answer_text = answer.get("text")
                if isinstance(answer_text, str) and context[start : start + len(answer_text)] != answer_text:
                    counts["answer_text_mismatch"] += 1
                if passage == "paragraph":
                    passage_text = _text(context)
                else:
                    if sentences is None:
                        sentences = SentenceSpans(context, segmenter)
                        counts["paragraphs_segmented"] += 1
                    span = sentences.holding(start)
                    if span is None:
                        raise InputError(
                            f"{where}.answers[0].answer_start: offset {start} lies in no sentence of the "
                            f"paragraph (it falls on {context[start : start + 20]!r})"
                        )
                    if isinstance(answer_text, str) and start + len(answer_text.rstrip()) > span[1]:
                        counts["answer_crosses_sentence"] += 1
                    passage_text = _text(context[span[0] : span[1]])
                pairs.append(
                    {
                        "pair_id": f"squad:{qa_id}",
                        "group": group,
                        "title": title,
                        "texts": {lang: {"question": question, "answer": passage_text}},
                    }
                )
    counts["pairs"] = len(pairs)
    log.info(
        "%s: %d questions read, %d unanswerable skipped, %d pairs (%s passages, %d paragraphs segmented, "
        "rules %r); %d answer texts differ from the paragraph at answer_start, %d answers run past their sentence",
        path, counts["questions"], counts["unanswerable_skipped"], counts["pairs"], passage,
        counts["paragraphs_segmented"], segmenter, counts["answer_text_mismatch"], counts["answer_crosses_sentence"],
    )  # fmt: skip
    if stats is not None:
        stats.update(counts)
    return pairs
