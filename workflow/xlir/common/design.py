"""The design of a study: every config value that changes a result, and its hash.

Two shards belong to one study when their design hashes agree. Left out are the values that
change no result: which test seeds a shard runs (`seeds`; shards split them), where an earlier
selection comes from (`training.lr_sweep.selection_from`), the study's name, thread counts,
checkpoint frequency, cache and mirror locations, download switches, which baselines a shard
runs, the per-layer analysis (a measurement beside the results), and the report's rendering
and statistics (applied when the shards are merged)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

#: dotted config keys that change no shard result (removed before hashing)
EXCLUDED_KEYS = (
    "study",
    "seeds",
    "threads",
    "report",
    "analysis",
    "training.checkpoint_every",
    "training.lr_sweep.selection_from",
    "translation.cache",
    "data.mirror",
    "data.download",
    "data.verify_checksums",
    "evaluation.zeroshot",
    "evaluation.bm25",
    "evaluation.verify_trec_eval",
    "evaluation.trec_depth",
)


def design_config(config: dict) -> dict:
    """`config` (validated, defaults filled) without the keys in EXCLUDED_KEYS."""
    design = copy.deepcopy(config)
    for dotted in EXCLUDED_KEYS:
        *parents, last = dotted.split(".")
        node: Any = design
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(last, None)
    return design


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def design_hash(design: dict) -> str:
    """SHA-256 of the design's canonical JSON (first 16 hex digits)."""
    return hashlib.sha256(canonical(design).encode()).hexdigest()[:16]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: leaf value}; lists are leaves."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def differing_keys(a: dict, b: dict) -> list[str]:
    """The dotted keys whose values differ between two designs (missing on one side included)."""
    flat_a, flat_b = flatten(a), flatten(b)
    return sorted(k for k in set(flat_a) | set(flat_b) if canonical(flat_a.get(k)) != canonical(flat_b.get(k)))
