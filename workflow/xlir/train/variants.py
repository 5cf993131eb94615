"""Scaling variants as values: the one parser of a variant's config, at the edge.

`parse_variant` checks a `variants.<name>` mapping (per-kind keys `KIND_KEYS`, required
keys `REQUIRED_KEYS`, value ranges) and returns a frozen `VariantSpec`; everything
downstream (optimizer groups, LoRA ranks, the planner, the report) takes that object.
`config/schema.yaml` states the same per-kind keys (`if`/`then` per kind); a test checks
the two against each other."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("uniform", "decay", "grow", "freeze", "lora")
LORA_PROFILES = ("uniform", "linear", "exp")
DIRECTIONS = ("increasing", "decreasing")
DEPTHS = ("absolute", "relative")
#: how a LoRA block's alpha relates to its rank (`lora_config`): proportional keeps alpha / r
#: (today's default), fixed keeps alpha, rslora scales by alpha / sqrt(r) (peft `use_rslora`)
ALPHA_MODES = ("proportional", "fixed", "rslora")
#: `depth: relative` profiles equal the absolute ones on a stack of this many blocks
DEFAULT_REFERENCE_LAYERS = 12

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

COMMON_KEYS = ("name", "kind", "description")
KIND_KEYS = {
    "uniform": ("match_mean_lr_of",),
    "decay": ("gamma", "depth", "reference_layers"),
    "grow": ("gamma", "depth", "reference_layers"),
    "freeze": ("k",),
    "lora": ("profile", "rank", "alpha", "min_rank", "direction", "dropout", "alpha_mode"),
}
REQUIRED_KEYS = {"uniform": (), "decay": ("gamma",), "grow": ("gamma",), "freeze": ("k",), "lora": ("rank",)}
DEFAULT_LORA_DROPOUT = 0.1


@dataclass(frozen=True)
class VariantSpec:
    name: str
    kind: str
    gamma: float | None = None
    k: int | None = None
    profile: str | None = None
    rank: int | None = None
    alpha: float | None = None
    min_rank: int | None = None
    direction: str | None = None
    dropout: float | None = None
    depth: str | None = None
    reference_layers: int | None = None
    alpha_mode: str | None = None
    #: uniform: the name of a decay / grow variant whose parameter-weighted mean lr multiplier this
    #: control trains at (its config is resolved into `matched` when the workflow loads)
    match_mean_lr_of: str | None = None
    matched: dict | None = None
    description: str | None = None

    @property
    def is_lora(self) -> bool:
        return self.kind == "lora"

    def lr_scale(self, layer: int, num_layers: int) -> float:
        """Multiplier of the base learning rate for layer id `layer` (0 .. L + 1).

        `depth: relative` measures depth as a fraction of the stack, so a profile puts the
        same multiplier at the same fraction of a 12-, 24- or 36-block model: the exponent
        is scaled by (R + 1) / (L + 1), R = `reference_layers` (12), and the profile equals
        the absolute one on an R-block model (embeddings, layer 0: gamma ** (R + 1) in both)."""
        scale = 1.0
        if self.depth == "relative":
            scale = (int(self.reference_layers or DEFAULT_REFERENCE_LAYERS) + 1) / (num_layers + 1)
        if self.kind == "decay":
            return float(self.gamma) ** ((num_layers + 1 - layer) * scale)
        if self.kind == "grow":
            return float(self.gamma) ** (layer * scale)
        return 1.0

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


def _bad(name: str, key: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"variant {name!r}: key {key!r} is {value!r}; expected {expected}")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_variant(d: dict | VariantSpec) -> VariantSpec:
    """Validate a variant config dict; ValueError messages name the key and the expected values."""
    if isinstance(d, VariantSpec):
        d = d.to_dict()
    if not isinstance(d, dict):
        raise ValueError(f"variant config must be a mapping with keys 'name' and 'kind', got {d!r}")
    name = d.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise _bad(
            str(name),
            "name",
            name,
            "a non-empty string of letters, digits, '.', '_', '+', '-' (it becomes a path component)",
        )
    kind = d.get("kind")
    if kind not in KINDS:
        raise _bad(name, "kind", kind, f"one of {', '.join(KINDS)}")
    allowed = COMMON_KEYS + KIND_KEYS[kind]
    if "matched" in d and kind == "uniform":
        allowed = allowed + ("matched",)
    for key in d:
        if key not in allowed:
            raise ValueError(
                f"variant {name!r}: unknown key {key!r} for kind {kind!r}; expected keys: {', '.join(allowed)}"
            )
    for key in REQUIRED_KEYS[kind]:
        if d.get(key) is None:
            raise ValueError(f"variant {name!r}: missing key {key!r} (required for kind {kind!r})")
    description = d.get("description")
    if description is not None and not isinstance(description, str):
        raise _bad(name, "description", description, "a string")
    fields: dict[str, Any] = {"name": name, "kind": kind, "description": description}

    if kind == "uniform" and d.get("match_mean_lr_of") is not None:
        target = d["match_mean_lr_of"]
        if not isinstance(target, str) or not target:
            raise _bad(name, "match_mean_lr_of", target, "the name of a decay or grow variant")
        fields["match_mean_lr_of"] = target
        matched = d.get("matched")
        if matched is not None:
            spec = parse_variant(matched)
            if spec.kind not in ("decay", "grow"):
                raise _bad(name, "match_mean_lr_of", target, "a decay or grow variant (a per-layer lr profile)")
            fields["matched"] = spec.to_dict()
    if kind in ("decay", "grow"):
        gamma = d["gamma"]
        if not is_number(gamma) or not 0.0 < gamma <= 1.0:
            raise _bad(name, "gamma", gamma, "a number in (0, 1]")
        fields["gamma"] = float(gamma)
        depth = d.get("depth")
        if depth is not None and depth not in DEPTHS:
            raise _bad(name, "depth", depth, f"one of {', '.join(DEPTHS)}")
        if depth == "relative":
            fields["depth"] = depth
            reference = d.get("reference_layers", DEFAULT_REFERENCE_LAYERS)
            if not is_int(reference) or reference < 1:
                raise _bad(name, "reference_layers", reference, "an integer >= 1 (blocks of the reference stack)")
            fields["reference_layers"] = reference
        elif "reference_layers" in d:
            raise ValueError(f"variant {name!r}: key 'reference_layers' only applies with depth: relative")
    elif kind == "freeze":
        k = d["k"]
        if not is_int(k) or k < 0:
            raise _bad(name, "k", k, "an integer >= 0 (number of bottom layers to freeze, embeddings = layer 0)")
        fields["k"] = k
    elif kind == "lora":
        rank = d["rank"]
        if not is_int(rank) or rank < 1:
            raise _bad(name, "rank", rank, "an integer >= 1")
        profile = d.get("profile", "uniform")
        if profile not in LORA_PROFILES:
            raise _bad(name, "profile", profile, f"one of {', '.join(LORA_PROFILES)}")
        alpha = d.get("alpha", 2 * rank)
        if not is_number(alpha) or alpha <= 0:
            raise _bad(name, "alpha", alpha, "a number > 0 (LoRA scaling is alpha / rank)")
        dropout = d.get("dropout", DEFAULT_LORA_DROPOUT)
        if not is_number(dropout) or not 0.0 <= dropout < 1.0:
            raise _bad(name, "dropout", dropout, "a number in [0, 1)")
        fields.update(rank=rank, profile=profile, alpha=float(alpha), dropout=float(dropout))
        alpha_mode = d.get("alpha_mode")
        if alpha_mode is not None and alpha_mode not in ALPHA_MODES:
            raise _bad(name, "alpha_mode", alpha_mode, f"one of {', '.join(ALPHA_MODES)}")
        if alpha_mode not in (None, "proportional"):
            fields["alpha_mode"] = alpha_mode
        if profile == "uniform":
            for key in ("min_rank", "direction"):
                if key in d:
                    raise ValueError(
                        f"variant {name!r}: key {key!r} only applies to profile 'linear' or 'exp', not 'uniform'"
                    )
        else:
            min_rank = d.get("min_rank", max(1, rank // 4))
            if not is_int(min_rank) or not 1 <= min_rank < rank:
                raise _bad(name, "min_rank", min_rank, f"an integer with 1 <= min_rank < rank ({rank})")
            direction = d.get("direction", "increasing")
            if direction not in DIRECTIONS:
                raise _bad(name, "direction", direction, f"one of {', '.join(DIRECTIONS)}")
            fields.update(min_rank=min_rank, direction=direction)
    return VariantSpec(**fields)
