"""Training and encoding throughput: xlir against sentence-transformers and a bare PyTorch loop.

One process, one model, the same hybrid batches, lengths and threads for every contender:

training (pairs/s over `--steps` steps of the batch plan, word embeddings frozen, AdamW,
InfoNCE / MultipleNegativesRankingLoss at temperature 0.05 = scale 20, lr warmup 10%):
- xlir: `xlir.train.train.train`, the function behind `xlir train`, with the config's
  defaults (length runs on, `training.length_bucket_call_tokens` = 100) and with them off;
- sentence-transformers: `SentenceTransformerTrainer` with MultipleNegativesRankingLoss, fed
  the plan's batches in order (the library's `fit` path);
- bare PyTorch: AutoModel, mean pooling, one padded pass per side, AdamW.

encoding (texts/s over `--texts`, questions' or candidates' `text` field):
- xlir: `DualEncoder.encode` with the default engine on CPUs (ONNX Runtime, `xlir.model.onnx_engine`,
  timed with and without its one-off export) and with torch, at the default batching (64 texts,
  2048 padded tokens) and at 64 texts per batch alone;
- sentence-transformers: `SentenceTransformer.encode` at its defaults (batch 32, fp32);
- bare PyTorch: batches of 64 in file order.

Run after the demo's batches exist (`make bench` builds them), alone on the machine:
    python benchmarks/throughput.py --out benchmarks/results/latest.json
Prints a table with each contender's ratio to sentence-transformers and writes it as JSON.
Not part of the test suite: timings are measured, never asserted."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from xlir.model.encoder import DualEncoder, mean_pool  # noqa: E402
from xlir.model.precision import cpu_flags, cpu_has_bf16  # noqa: E402
from xlir.train.train import batch_texts, train  # noqa: E402
from xlir.train.variants import parse_variant  # noqa: E402

TEMPERATURE = 0.05
LR = 2e-5


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    flags = cpu_flags()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "simd": " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "none",
        "bf16 instructions": cpu_has_bf16(),
        "torch": torch.__version__,
        "sentence-transformers": __import__("sentence_transformers").__version__,
    }


# --- training -------------------------------------------------------------------------------


def xlir_training(model_dir: Path, pairs: Path, plan: list[dict], a, call_tokens: int | None) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plan_file = tmp / "plan.jsonl"
        plan_file.write_text("".join(json.dumps(b) + "\n" for b in plan), encoding="utf-8")
        summary = train(
            model_dir,
            pairs,
            plan_file,
            parse_variant({"name": "uniform", "kind": "uniform"}),
            tmp / "model",
            tmp / "groups.tsv",
            tmp / "log.tsv",
            tmp / "summary.json",
            lr=LR,
            weight_decay=0.01,
            temperature=TEMPERATURE,
            warmup_ratio=0.1,
            max_grad_norm=1.0,
            max_length=a.max_length,
            pooling="mean",
            freeze_word_embeddings=True,
            seed=13,
            threads=a.threads,
            options={"checkpoint_every": 0, "length_bucket_call_tokens": call_tokens, "precision": a.precision},
        )
    return summary["train_seconds"], summary["final_loss_mean_last10"]


def st_training(model_dir: Path, pairs: dict, plan: list[dict], a) -> tuple[float, float]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from torch.utils.data import SequentialSampler
    from transformers import TrainerCallback

    torch.manual_seed(13)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = a.max_length
    model[0].auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    anchors, positives = [], []
    for batch in plan:
        q, p = batch_texts(batch, pairs)
        anchors += ["query: " + t for t in q]
        positives += ["passage: " + t for t in p]
    data = Dataset.from_dict({"anchor": anchors, "positive": positives})
    batch_size = len(plan[0]["items"])

    def in_plan_order(dataset, batch_size, drop_last, **_):  # the plan's batches, in order
        return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)

    clock: dict[str, float] = {}
    losses_seen: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, *args, **kwargs):
            clock["start"] = time.perf_counter()

        def on_train_end(self, *args, **kwargs):
            clock["end"] = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses_seen.append(float(logs["loss"]))

    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=batch_size,
            num_train_epochs=1,
            learning_rate=LR,
            weight_decay=0.01,
            warmup_ratio=0.1,
            max_grad_norm=1.0,
            batch_sampler=in_plan_order,
            save_strategy="no",
            report_to=[],
            logging_steps=1,
            use_cpu=True,
            dataloader_num_workers=0,
            seed=13,
            disable_tqdm=True,
        )
        loss = losses.MultipleNegativesRankingLoss(model, scale=1 / TEMPERATURE)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss, callbacks=[Clock()])
        trainer.train()
    return clock["end"] - clock["start"], float(np.mean(losses_seen[-10:]))


def bare_training(model_dir: Path, pairs: dict, plan: list[dict], a) -> tuple[float, float]:
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(13)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir))
    model.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    warmup = int(np.ceil(0.1 * len(plan)))
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, len(plan))

    def embed(texts: list[str], prefix: str) -> torch.Tensor:
        batch = tokenizer(
            [prefix + t for t in texts], padding=True, truncation=True, max_length=a.max_length, return_tensors="pt"
        )
        batch.pop("token_type_ids", None)
        hidden = model(**batch).last_hidden_state
        return torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)

    seen = []
    start = time.perf_counter()
    for batch in plan:
        q, p = batch_texts(batch, pairs)
        optimizer.zero_grad(set_to_none=True)
        logits = embed(q, "query: ") @ embed(p, "passage: ").T / TEMPERATURE
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(q)))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        seen.append(loss.item())
    return time.perf_counter() - start, float(np.mean(seen[-10:]))


# --- encoding -------------------------------------------------------------------------------


def encoding(model_dir: Path, texts: list[str], a) -> dict[str, tuple[float, np.ndarray]]:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from xlir.model.onnx_engine import OnnxEmbedder

    out: dict[str, tuple[float, np.ndarray]] = {}
    encoder = DualEncoder.load(model_dir, max_length=a.encode_max_length, precision=a.precision)
    start = time.perf_counter()
    onnx = OnnxEmbedder(encoder, a.threads)
    exported = time.perf_counter()
    emb = encoder.encode(texts, "passage", batch_size=64, batch_tokens=2048, embed=onnx.embed)
    out["xlir onnx engine (the default on CPUs; export excluded)"] = (time.perf_counter() - exported, emb)
    out["xlir onnx engine (export included)"] = (time.perf_counter() - start, emb)
    for label, tokens in (
        ("xlir torch (64 texts / 2048 tokens per batch)", 2048),
        ("xlir torch (64 texts per batch)", None),
    ):
        start = time.perf_counter()
        emb = encoder.encode(texts, "passage", batch_size=64, batch_tokens=tokens)
        out[label] = (time.perf_counter() - start, emb)
    st = SentenceTransformer(str(model_dir), device="cpu")
    st.max_seq_length = a.encode_max_length
    start = time.perf_counter()
    emb = st.encode(["passage: " + t for t in texts], normalize_embeddings=True)
    out["sentence-transformers encode (batch 32)"] = (time.perf_counter() - start, emb)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    chunks = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = tokenizer(
                ["passage: " + t for t in texts[i : i + 64]],
                padding=True,
                truncation=True,
                max_length=a.encode_max_length,
                return_tensors="pt",
            )
            batch.pop("token_type_ids", None)
            hidden = model(**batch).last_hidden_state
            chunks.append(torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1).numpy())
    out["bare PyTorch (64 per batch, file order)"] = (time.perf_counter() - start, np.concatenate(chunks))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "results/models/e5-small/base")
    p.add_argument("--pairs", type=Path, default=ROOT / "results/data/train/pairs.jsonl")
    p.add_argument("--plan", type=Path, default=ROOT / "results/batches/hybrid/seed13.jsonl")
    p.add_argument("--texts", type=Path, default=ROOT / "results/benchmarks/demo/prepared/candidates.jsonl")
    p.add_argument("--max-texts", type=int, default=1000, help="first N texts of --texts (after a seeded shuffle)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--max-length", type=int, default=48, help="training tokens per text (the demo's)")
    p.add_argument("--encode-max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="xlir's precision")
    p.add_argument("--skip", nargs="*", default=[], choices=["training", "encoding"])
    p.add_argument("--out", type=Path, help="write the results as JSON")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    for path in (a.model, a.pairs, a.plan, a.texts):
        if not path.exists():
            sys.exit(f"{path} is missing: run `make bench` (it builds the demo's model, batches and benchmark first)")
    result: dict = {"machine": machine(), "settings": {k: str(v) for k, v in vars(a).items()}}
    rows = []
    if "training" not in a.skip:
        pairs_by_id = {r["pair_id"]: r for r in read_jsonl(a.pairs)}
        plan = read_jsonl(a.plan)[: a.steps]
        n_pairs = sum(len(b["items"]) for b in plan)
        timed = {
            "xlir train (length runs, the default)": xlir_training(a.model, a.pairs, plan, a, 100),
            "xlir train (one padded pass per side)": xlir_training(a.model, a.pairs, plan, a, None),
            "sentence-transformers MNRL fit": st_training(a.model, pairs_by_id, plan, a),
            "bare PyTorch loop": bare_training(a.model, pairs_by_id, plan, a),
        }
        base = n_pairs / timed["sentence-transformers MNRL fit"][0]
        for label, (seconds, loss) in timed.items():
            rate = n_pairs / seconds
            rows.append({"task": "training", "contender": label, "per_s": rate, "ratio": rate / base, "loss": loss})
    if "encoding" not in a.skip:
        texts = [r["text"] for r in read_jsonl(a.texts)]
        order = np.random.default_rng(0).permutation(len(texts))[: a.max_texts]
        texts = [texts[i] for i in order]
        timed = encoding(a.model, texts, a)
        base_seconds, reference = timed["sentence-transformers encode (batch 32)"]
        for label, (seconds, emb) in timed.items():
            cosine = (emb * reference).sum(axis=1)
            rows.append(
                {
                    "task": "encoding",
                    "contender": label,
                    "per_s": len(texts) / seconds,
                    "ratio": base_seconds / seconds,
                    "min cosine to sentence-transformers": float(cosine.min()),
                }
            )
    result["rows"] = rows
    print(f"machine: {result['machine']}")
    print("| task | contender | pairs or texts / s | x sentence-transformers | check |")
    print("|---|---|---|---|---|")
    for row in rows:
        check = (
            f"final loss {row['loss']:.4f}"
            if "loss" in row
            else f"min cosine {row['min cosine to sentence-transformers']:.6f}"
        )
        print(f"| {row['task']} | {row['contender']} | {row['per_s']:.1f} | {row['ratio']:.2f} | {check} |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
