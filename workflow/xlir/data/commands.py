"""Stage 2 subcommands (rule file `workflow/rules/data.smk`): `fetch-qa`, `prepare-qa`, `translate`,
`mt-quality`, `build-train-set`."""

from __future__ import annotations

import argparse
from pathlib import Path

from xlir.common.cli_args import add_command, add_list_option, bool_arg, json_arg


def add_prepare_qa(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "prepare-qa", run_prepare_qa, "read the training source and split it (train, dev, held-out)")
    p.add_argument("--qa", required=True, type=json_arg, help="the config's qa block (JSON)")
    p.add_argument("--source-path", type=Path, help="the source's file or folder (lareqa, squad, jsonl, hf)")
    p.add_argument("--allow-network", action="store_true", help="hf: the hub may be reached (data.download)")
    p.add_argument("--out-pairs", required=True, type=Path)
    p.add_argument("--out-english", required=True, type=Path)
    p.add_argument("--out-references", required=True, type=Path)
    p.add_argument("--out-split", required=True, type=Path)


def run_prepare_qa(a: argparse.Namespace) -> None:
    from xlir.data.prepare_qa import prepare_qa

    prepare_qa(
        a.qa, a.source_path, a.out_pairs, a.out_english, a.out_references, a.out_split, allow_network=a.allow_network
    )


def add_fetch_qa(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "fetch-qa", run_fetch_qa, "copy the training source from the mirror or download it")
    p.add_argument("--kind", required=True, choices=["lareqa", "squad"])
    p.add_argument("--dataset", required=True, help="lareqa: xquad-r / mlqa-r; squad: squad-v1.1-train, ...")
    add_list_option(p, "--languages", help="lareqa: the languages to fetch")
    p.add_argument("--mirror", type=Path, help="local folder laid out like the sources (data.mirror)")
    p.add_argument("--download", action="store_true", help="fetch missing files from the official sources")
    p.add_argument("--verify-checksums", type=bool_arg, default=True)
    p.add_argument("--out-dir", required=True, type=Path)


def run_fetch_qa(a: argparse.Namespace) -> None:
    from xlir.data.fetch_qa import fetch_qa

    fetch_qa(a.kind, a.dataset, a.languages or [], a.out_dir, a.mirror, a.download, a.verify_checksums)


def _add_translation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--qa", required=True, type=Path)
    p.add_argument("--lang", required=True)
    p.add_argument("--src", default="en")
    p.add_argument("--backend", required=True, type=json_arg, help="translation backend config (JSON)")
    p.add_argument("--cache", required=True, type=Path, help="sqlite translation cache")
    p.add_argument("--out", required=True, type=Path)


def _cached_translator(a: argparse.Namespace):
    from xlir.data.translate.base import make_translator
    from xlir.data.translate.cache import CachedTranslator

    return CachedTranslator(make_translator(a.backend), a.cache)


def add_translate(sub: argparse._SubParsersAction) -> None:
    _add_translation_options(
        add_command(sub, "translate", run_translate, "machine-translate QA pairs into one language")
    )


def run_translate(a: argparse.Namespace) -> None:
    from xlir.data.translate import translate_qa_file

    translate_qa_file(a.qa, a.lang, a.out, _cached_translator(a), src=a.src)


def add_mt_quality(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "mt-quality", run_mt_quality, "score translations (BLEU, chrF)")
    _add_translation_options(p)
    p.add_argument("--mt", required=True, type=Path)
    p.add_argument("--references", type=Path)


def run_mt_quality(a: argparse.Namespace) -> None:
    from xlir.data.mt_quality import score_translation_file

    score_translation_file(a.qa, a.mt, a.lang, _cached_translator(a), a.out, references_tsv=a.references)


def add_build_train_set(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "build-train-set", run_build_train_set, "assemble multilingual training and dev pairs")
    p.add_argument("--pairs", required=True, type=Path, help="source pairs (prepare-qa)")
    p.add_argument("--split", required=True, type=Path)
    p.add_argument("--mt", nargs="*", default=[], help="translation files named {lang}.jsonl")
    add_list_option(p, "--languages", required=True)
    p.add_argument("--ngram", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--out-dev", required=True, type=Path)
    p.add_argument("--out-stats", required=True, type=Path)


def run_build_train_set(a: argparse.Namespace) -> None:
    from xlir.data.build_train_set import build_training_pairs

    mt_files = {Path(p).stem: Path(p) for p in a.mt}
    build_training_pairs(a.pairs, a.split, mt_files, a.languages, a.out, a.out_dev, a.out_stats, a.ngram, a.threshold)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (add_fetch_qa, add_prepare_qa, add_translate, add_mt_quality, add_build_train_set):
        add(sub)
