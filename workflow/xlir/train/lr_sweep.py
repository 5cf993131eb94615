"""The learning-rate sweep as values: which base learning rates each variant trains at, the
name of each sweep run, and the settings of the dev-split selection (`training.lr_sweep`).

A variant is swept when the grid of its kind is non-empty: full fine-tuning kinds (uniform,
decay, grow, freeze) read `training.lr_sweep.full`, LoRA reads `training.lr_sweep.lora`. Each
grid point is one training run, named `<variant>.lr<lr>` (e.g. `decay-0.9.lr3e-05`), evaluated on
the dev split only; rule `select_lr` picks the lr with the best mean dev score over seeds and
rule `link_selected_run` copies that run's outputs to the variant's own run folder, which the
evaluation benchmarks and the comparisons read. A mean-lr-matched uniform control follows the lr
its decay / grow target selected (so the pair differs in the profile's shape alone).

`training.lr_sweep.seeds` names the selection seeds: the seeds the sweep runs with. They are
disjoint from the test seeds (the config key `seeds`) by default, so no test score is the score
of a run that won the selection (no winner's curse); every test seed trains once, at the lr its
variant selected (rule `train_at_selected_lr`, `xlir train --selection`).
`allow_seed_overlap: true` lets selection seeds also be test seeds (the selected sweep run is
then reused as that seed's test run, rule `link_selected_run`; null seeds: every seed), and the
report flags it. `selection_from` reads the selections of an earlier selection shard instead of
sweeping (rule `import_selection`)."""

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
    #: the seeds the sweep runs with (None: every seed of the config, with allow_seed_overlap)
    seeds: tuple[int, ...] | None = None
    #: selection seeds may also be test seeds (the report flags it)
    allow_seed_overlap: bool = False
    #: a selection shard's folder whose selections replace the sweep (None: sweep here)
    selection_from: str | None = None

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
        overlap = d.get("allow_seed_overlap", False)
        if not isinstance(overlap, bool):
            raise ValueError(f"config key training.lr_sweep.allow_seed_overlap: {overlap!r}; expected true or false")
        selection_from = d.get("selection_from")
        if selection_from is not None and (not isinstance(selection_from, str) or not selection_from.strip()):
            raise ValueError(
                f"config key training.lr_sweep.selection_from: {selection_from!r}; expected the folder of a "
                "selection shard (results/shards/<study>/selection) or null"
            )
        return cls(
            full=grids["full"],
            lora=grids["lora"],
            metric=str(d.get("metric", "map")),
            setting=setting,
            seeds=tuple(dict.fromkeys(int(s) for s in seeds)) if seeds is not None else None,
            allow_seed_overlap=overlap,
            selection_from=selection_from,
        )

    def selection_seeds(self, seeds: list[int]) -> list[int]:
        """The seeds the sweep runs with. Disjoint from the test seeds `seeds` unless
        `allow_seed_overlap` (then null means every test seed); an overlap without the switch, or
        a sweep with no selection seeds, is an error naming the key."""
        if not self.active:
            return []
        if self.seeds is None:
            if self.allow_seed_overlap:
                return list(seeds)
            raise ValueError(
                "config key training.lr_sweep.seeds: null; the learning rate is selected on seeds of its own, "
                f"disjoint from the test seeds (seeds: {list(seeds)}), e.g. seeds: [7]. Set "
                "training.lr_sweep.allow_seed_overlap: true to select on the test seeds instead (the report "
                "then flags the winner's-curse bias)"
            )
        shared = [s for s in self.seeds if s in seeds]
        if shared and not self.allow_seed_overlap:
            raise ValueError(
                f"config key training.lr_sweep.seeds: {shared} also in the config key seeds (the test seeds); "
                "selection and test seeds are disjoint, so no test score is that of the run that won the "
                "selection. Pick other selection seeds, or set training.lr_sweep.allow_seed_overlap: true "
                "(the report then flags the overlap)"
            )
        return list(self.seeds)

    def overlaps(self, seeds: list[int]) -> bool:
        """True when a selection seed is also a test seed (allowed only by the switch)."""
        return any(s in seeds for s in self.selection_seeds(seeds))

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
