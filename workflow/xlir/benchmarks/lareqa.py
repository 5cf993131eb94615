"""LAReQA benchmark files (XQuAD-R, MLQA-R, and our demo benchmark).

Format (SQuAD v1.1 JSON plus two fields per paragraph):
    data[] -> paragraphs[] -> {context, sentences[], sentence_breaks[[start, end]], qas[]}
    qas[]  -> {id, question, answers[{text, answer_start}]}

Candidates are the sentences of every paragraph (sentences answering no
question stay in the pool as distractors). A question's relevant candidates
are the sentences, in every language where its id appears, whose
[start, end) break holds the answer's `answer_start`. Questions and candidates keep
their article's `title` (data[].title, null where absent) for the article-level
overlap report of the leakage check.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from xlir.benchmarks.prepared import PreparedFiles, as_prepared_files
from xlir.common.io import InputError, atomic_open, get_logger, read_json, write_json, write_jsonl

log = get_logger(__name__)


@dataclass
class Benchmark:
    """Questions, candidate pool and relevance of a multilingual LAReQA benchmark."""

    questions: list[dict] = field(default_factory=list)  # {qid, lang, id, text, title}
    candidates: list[dict] = field(default_factory=list)  # {cid, lang, text, context, title}
    answers: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # id -> lang -> cids

    def relevant(self, qid: str) -> set[str]:
        """All candidates (every language) holding the answer of the question `qid`."""
        question_id = qid.split(":", 1)[1]
        return set().union(*self.answers.get(question_id, {}).values())

    def stats(self) -> dict:
        per_lang_q: dict[str, int] = defaultdict(int)
        per_lang_c: dict[str, int] = defaultdict(int)
        for q in self.questions:
            per_lang_q[q["lang"]] += 1
        for c in self.candidates:
            per_lang_c[c["lang"]] += 1
        relevant_counts = [len(self.relevant(q["qid"])) for q in self.questions]
        return {
            "languages": sorted(per_lang_q),
            "questions_per_language": dict(sorted(per_lang_q.items())),
            "candidates_per_language": dict(sorted(per_lang_c.items())),
            "n_questions": len(self.questions),
            "n_candidates": len(self.candidates),
            "n_question_ids": len(self.answers),
            "relevant_per_question_min": min(relevant_counts, default=0),
            "relevant_per_question_max": max(relevant_counts, default=0),
            "relevant_per_question_mean": sum(relevant_counts) / max(len(relevant_counts), 1),
        }


def _sentence_of(breaks: list, answer_start: int) -> int | None:
    for index, (start, end) in enumerate(breaks):
        if start <= answer_start < end:
            return index
    return None


def load_language_file(path: Path, lang: str, benchmark: Benchmark) -> None:
    """Add one language's questions and candidates to `benchmark`."""
    path = Path(path)
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InputError(f"{path}: expected a JSON object with a 'data' list (SQuAD/LAReQA format)")
    paragraph_index = 0
    seen: dict[str, str] = {}  # question id -> where it first occurred in this file
    for a, article in enumerate(document["data"]):
        title = article.get("title") if isinstance(article.get("title"), str) else None
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            for key in ("context", "sentences", "sentence_breaks", "qas"):
                if key not in paragraph:
                    raise InputError(
                        f"{where}: missing '{key}' (LAReQA paragraphs need context, sentences, sentence_breaks, qas)"
                    )
            sentences, breaks = paragraph["sentences"], paragraph["sentence_breaks"]
            if len(sentences) != len(breaks):
                raise InputError(f"{where}: {len(sentences)} sentences but {len(breaks)} sentence_breaks")
            for s, sentence in enumerate(sentences):
                if not isinstance(sentence, str) or not sentence.strip():
                    raise InputError(
                        f"{where}.sentences[{s}]: empty sentence {sentence!r}; every sentence is a candidate "
                        "and needs text"
                    )
                benchmark.candidates.append(
                    {
                        "cid": f"{lang}:{paragraph_index}:{s}",
                        "lang": lang,
                        "text": sentence,
                        "context": paragraph["context"],
                        "title": title,
                    }
                )
            for k, qa in enumerate(paragraph["qas"]):
                qwhere = f"{where}.qas[{k}]"
                if not qa.get("id") or not isinstance(qa.get("question"), str) or not qa.get("answers"):
                    raise InputError(f"{qwhere}: expected id, question and a non-empty answers list")
                if not qa["question"].strip():
                    raise InputError(f"{qwhere} (id {qa['id']}): empty question")
                if str(qa["id"]) in seen:
                    raise InputError(f"{qwhere}: id {str(qa['id'])!r} repeats the id of {seen[str(qa['id'])]}")
                seen[str(qa["id"])] = f"data[{a}].paragraphs[{p}].qas[{k}]"
                answer_start = qa["answers"][0].get("answer_start")
                if not isinstance(answer_start, int):
                    raise InputError(f"{qwhere} (id {qa['id']}): answers[0].answer_start must be an integer")
                sentence = _sentence_of(breaks, answer_start)
                if sentence is None:
                    raise InputError(f"{qwhere} (id {qa['id']}): answer_start {answer_start} lies in no sentence break")
                question_id = str(qa["id"])
                benchmark.questions.append(
                    {
                        "qid": f"{lang}:{question_id}",
                        "lang": lang,
                        "id": question_id,
                        "text": qa["question"],
                        "title": title,
                    }
                )
                benchmark.answers.setdefault(question_id, {}).setdefault(lang, set()).add(
                    f"{lang}:{paragraph_index}:{sentence}"
                )
            paragraph_index += 1


def load_lareqa(raw_dir: Path, languages: list[str]) -> Benchmark:
    """Load `{raw_dir}/{lang}.json` for every language."""
    benchmark = Benchmark()
    for lang in languages:
        path = Path(raw_dir) / f"{lang}.json"
        if not path.exists():
            raise InputError(f"{path}: benchmark file for language '{lang}' not found")
        load_language_file(path, lang, benchmark)
    return benchmark


def write_prepared(benchmark: Benchmark, out: str | Path | PreparedFiles) -> dict:
    """Write questions.jsonl, candidates.jsonl, qrels.tsv and stats.json (`xlir.benchmarks.prepared`)."""
    files = as_prepared_files(out)
    write_jsonl(files.candidates, benchmark.candidates)
    with atomic_open(files.qrels) as handle:
        for question in benchmark.questions:
            for cid in sorted(benchmark.relevant(question["qid"])):
                handle.write(f"{question['qid']} 0 {cid} 1\n")
    stats = benchmark.stats()
    write_json(files.stats, stats)
    write_jsonl(files.questions, benchmark.questions)
    log.info(
        "prepared %d questions, %d candidates, languages %s",
        stats["n_questions"],
        stats["n_candidates"],
        stats["languages"],
    )
    return stats


def prepare_lareqa(raw_dir: Path, languages: list[str], out: str | Path | PreparedFiles) -> dict:
    return write_prepared(load_lareqa(raw_dir, languages), out)
