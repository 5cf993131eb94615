"""The learning-rate sweep as values: which base learning rates each variant trains at, the
name of each sweep run, and the settings of the dev-split selection (`training.lr_sweep`).

A variant is swept when the grid of its kind is non-empty: full fine-tuning kinds (uniform,
decay, grow, freeze) read `training.lr_sweep.full`, LoRA reads `training.lr_sweep.lora`. Each
grid point is one training run, named `<variant>.lr<lr>` (e.g. `decay-0.9.lr3e-05`), evaluated on
the dev split only; rule `select_lr` picks the lr with the best mean dev score over seeds and
rule `link_selected_run` copies that run's outputs to the variant's own run folder, which the
evaluation benchmarks and the comparisons read. A mean-lr-matched uniform control follows the lr
its decay / grow target selected (so the pair differs in the profile's shape alone).

`training.lr_sweep.seeds` (default: every seed) names the seeds the sweep runs with. The other
seeds train once, at the lr their variant selected (rule `train_at_selected_lr`, `xlir train
--selection`): with 3 seeds and a 2-point grid, selecting on one seed trains 4 runs per variant
instead of 6."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xlir.train.variants import VariantSpec

#: dev-split settings the selection can maximise; `mean` averages the three
SETTINGS = ("monolingual", "cross-lingual", "multilingual")
SELECT_SETTINGS = (*SETTINGS, "mean")
SEPARATOR = ".lr"


@dataclass(frozen=True)
class SweepConfig:
    """`training.lr_sweep`, parsed once."""

    full: tuple[float, ...] = ()
    lora: tuple[float, ...] = ()
    metric: str = "map"
    setting: str = "mean"
    #: the seeds the sweep runs with (None: every seed of the config)
    seeds: tuple[int, ...] | None = None

    @classmethod
    def from_config(cls, d: dict | None) -> SweepConfig:
        d = d or {}
        grids = {}
        for kind in ("full", "lora"):
            values = d.get(kind) or []
            if not isinstance(values, list) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 for v in values
            ):
                raise ValueError(
                    f"config key training.lr_sweep.{kind}: {values!r}; expected a list of learning rates > 0"
                )
            if len(set(values)) != len(values):
                raise ValueError(f"config key training.lr_sweep.{kind}: {values!r} repeats a learning rate")
            grids[kind] = tuple(sorted(float(v) for v in values))
        setting = d.get("setting", "mean")
        if setting not in SELECT_SETTINGS:
            raise ValueError(
                f"config key training.lr_sweep.setting: {setting!r}; expected one of {', '.join(SELECT_SETTINGS)}"
            )
        seeds = d.get("seeds")
        if seeds is not None and (
            not isinstance(seeds, list)
            or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
        ):
            raise ValueError(
                f"config key training.lr_sweep.seeds: {seeds!r}; expected null (every seed) or a non-empty list "
                "of seeds from the config key seeds"
            )
        return cls(
            full=grids["full"],
            lora=grids["lora"],
            metric=str(d.get("metric", "map")),
            setting=setting,
            seeds=tuple(dict.fromkeys(int(s) for s in seeds)) if seeds is not None else None,
        )

    def selection_seeds(self, seeds: list[int]) -> list[int]:
        """The config's seeds the sweep runs with (all of them unless `seeds` is set); a seed that
        is not in the config is an error naming the key."""
        if self.seeds is None:
            return list(seeds)
        unknown = [s for s in self.seeds if s not in seeds]
        if unknown:
            raise ValueError(
                f"config key training.lr_sweep.seeds: {unknown} not in the config key seeds ({seeds}); "
                "the sweep selects on a subset of the study's seeds"
            )
        return [s for s in seeds if s in self.seeds]

    @property
    def active(self) -> bool:
        return bool(self.full or self.lora)

    def grid(self, spec: VariantSpec) -> tuple[float, ...]:
        """The base learning rates `spec` is swept over (empty: not swept)."""
        return self.lora if spec.is_lora else self.full


def lr_tag(lr: float) -> str:
    """A learning rate as it appears in a run name: 3e-05, 0.0001, 5e-05."""
    return f"{lr:g}"


def sweep_run_name(variant: str, lr: float) -> str:
    return f"{variant}{SEPARATOR}{lr_tag(lr)}"


def sweep_runs(specs: dict[str, VariantSpec], sweep: SweepConfig) -> dict[str, tuple[str, float]]:
    """{sweep run name: (variant, lr)} for every swept variant; a name that collides with a
    configured variant is an error naming both."""
    runs: dict[str, tuple[str, float]] = {}
    for name, spec in specs.items():
        for lr in sweep.grid(spec):
            run = sweep_run_name(name, lr)
            if run in specs:
                raise ValueError(
                    f"config key variants.{run}: the name is taken by the lr sweep of variant '{name}' "
                    f"(training.lr_sweep); rename the variant"
                )
            runs[run] = (name, lr)
    return runs


def selected_lr(selection: Path) -> float:
    """The base lr a `select_lr` output holds (`selected_lr`), checked."""
    from xlir.common.io import InputError, read_json

    value = read_json(selection).get("selected_lr")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InputError(f"{selection}: expected a selection (select_lr) with selected_lr > 0, found {value!r}")
    return float(value)


def training_overrides(spec: VariantSpec, lr: float) -> dict[str, float]:
    """The `training` keys a sweep run sets: its base lr (`lora_lr` for LoRA, `lr` otherwise)."""
    return {"lora_lr": lr} if spec.is_lora else {"lr": lr}
