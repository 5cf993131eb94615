"""Training source `lareqa`: human-translated parallel QA from an XQuAD-R or MLQA-R file set.

Each `{folder}/{lang}.json` is SQuAD v1.1 JSON plus `sentences` and `sentence_breaks` per
paragraph. A question id shared across files links its translations: the source pair of
id X holds, for every language whose file has X, that language's question and the
sentence (by `sentence_breaks`) holding its answer's `answer_start`. The pair's `group`
and `title` are the English article title (the first language's where English is absent),
so the dev split keeps an article's questions together in every language."""

from __future__ import annotations

from pathlib import Path

from xlir.common.io import InputError, get_logger, read_json

log = get_logger(__name__)


def _sentence_holding(breaks: list, answer_start: int) -> int | None:
    for index, span in enumerate(breaks):
        if span[0] <= answer_start < span[1]:
            return index
    return None


def _read_language(path: Path, lang: str) -> dict[str, dict]:
    """id -> {question, answer, title} of one language file."""
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InputError(f"{path}: expected a JSON object with a 'data' list (SQuAD/LAReQA format)")
    records: dict[str, dict] = {}
    for a, article in enumerate(document["data"]):
        title = str(article.get("title") or f"{path.stem}-article-{a}").replace("_", " ")
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            sentences, breaks = paragraph.get("sentences"), paragraph.get("sentence_breaks")
            if not isinstance(sentences, list) or not isinstance(breaks, list) or len(sentences) != len(breaks):
                raise InputError(f"{where}: expected 'sentences' and 'sentence_breaks' lists of equal length")
            for k, qa in enumerate(paragraph.get("qas", [])):
                qwhere = f"{where}.qas[{k}]"
                if not qa.get("id") or not isinstance(qa.get("question"), str) or not qa.get("answers"):
                    raise InputError(f"{qwhere}: expected id, question and a non-empty answers list")
                start = qa["answers"][0].get("answer_start")
                sentence = _sentence_holding(breaks, start) if isinstance(start, int) else None
                if sentence is None:
                    raise InputError(f"{qwhere} (id {qa['id']}): answer_start {start!r} lies in no sentence break")
                question_id = str(qa["id"])
                if question_id in records:
                    raise InputError(f"{qwhere}: id {question_id!r} occurs twice in {path}")
                question, answer = " ".join(qa["question"].split()), " ".join(str(sentences[sentence]).split())
                if not question:
                    raise InputError(f"{qwhere} (id {question_id}): empty question")
                if not answer:
                    raise InputError(f"{qwhere} (id {question_id}): the answer's sentence ({sentence}) is empty")
                records[question_id] = {"question": question, "answer": answer, "title": title}
    return records


def load_lareqa_source(folder: Path, languages: list[str], dataset: str) -> list[dict]:
    """Source pairs of `{folder}/{lang}.json` for every language (see the module docstring)."""
    folder = Path(folder)
    by_language = {}
    for lang in languages:
        path = folder / f"{lang}.json"
        if not path.is_file():
            raise InputError(f"{path}: {dataset} file for training language '{lang}' not found")
        by_language[lang] = _read_language(path, lang)
    order = (["en"] if "en" in by_language else []) + [lang for lang in languages if lang != "en"]
    pairs: dict[str, dict] = {}
    for lang in order:
        for question_id, record in by_language[lang].items():
            pair = pairs.setdefault(
                question_id,
                {
                    "pair_id": f"{dataset}:{question_id}",
                    "group": record["title"],
                    "title": record["title"],
                    "texts": {},
                },
            )
            pair["texts"][lang] = {"question": record["question"], "answer": record["answer"]}
    result = [pairs[key] for key in sorted(pairs)]
    log.info(
        "%s: %d question ids, %s texts per language",
        dataset,
        len(result),
        {lang: len(records) for lang, records in by_language.items()},
    )
    return result
