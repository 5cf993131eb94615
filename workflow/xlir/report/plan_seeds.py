"""`xlir plan-seeds`: how many seeds the study needs, from a pilot run's comparisons.csv.

For every row with two or more seeds (default: the headline metric on every language
pair) it prints the power figures of `xlir.report.compare.power_columns`: the sd of the
per-seed Δ, the minimum detectable effect (MDE) with the pilot's seeds, and the seeds
needed to detect the minimum effect and to establish equivalence within ± the minimum
effect at a true difference of 0. The test is the report's: a two-sided t-test on
seeds - 1 degrees of freedom at Holm's strictest level, alpha / the row's Holm family
size (so the figures hold whatever the row's place in the Holm order, as long as the
family keeps its size). `--min-effect` and `--power` replace the pilot's `report.min_effect`
and `report.power`. A row with one seed has no measured seed variance: it is listed
as such (run the pilot with two or more seeds)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from xlir.common.cli_args import add_command
from xlir.common.io import InputError, atomic_open
from xlir.report.compare import power_columns, read_comparisons
from xlir.report.document import md_table
from xlir.report.stats import MAX_PLANNED_SEEDS

PLAN_COLUMNS = {
    "benchmark": "benchmark",
    "model": "model",
    "setting": "setting",
    "treatment": "treatment",
    "control": "control",
    "n_seeds": "seeds",
    "delta": "Δ",
    "seed_sd": "seed sd",
    "power_alpha": "alpha used",
    "mde": "MDE",
    "seeds_to_detect": "seeds to detect",
    "seeds_to_equivalence": "seeds to equivalence",
}


def replan(comparisons: pd.DataFrame, min_effect: float | None = None, power: float | None = None) -> pd.DataFrame:
    """A copy of `comparisons` with its power columns computed for `min_effect` (every metric
    but rank distance, which keeps 0) and `power` (each: the table's own when None)."""
    table = comparisons.copy()
    if min_effect is not None:
        if min_effect <= 0:
            raise InputError(f"--min-effect: expected a difference > 0, got {min_effect}")
        table["min_effect"] = [0.0 if m == "rank_distance" else float(min_effect) for m in table["metric"]]
    if power is not None:
        if not 0 < power < 1:
            raise InputError(f"--power: expected a probability in (0, 1), got {power}")
        table["power_target"] = float(power)
    power_columns(table)
    return table


def plan_table(table: pd.DataFrame, every_row: bool = False) -> pd.DataFrame:
    """The rows to plan with (headline metric, every language pair unless `every_row`), one line each."""
    rows = table if every_row else table[table["headline"] & (table["subset"] == "all")]
    return rows[list(PLAN_COLUMNS)].rename(columns=PLAN_COLUMNS).reset_index(drop=True)


def _seeds(values: pd.Series) -> str:
    return f"more than {MAX_PLANNED_SEEDS}" if values.isna().any() else str(int(values.max()))


def plan_summary(table: pd.DataFrame, every_row: bool = False) -> list[str]:
    """What the plan says overall: the pilot's seeds, and the seeds every row would need."""
    rows = table if every_row else table[table["headline"] & (table["subset"] == "all")]
    measured = rows[rows["n_seeds"] >= 2]
    if measured.empty:
        return [
            f"{len(rows)} rows, none with two or more seeds: the seed variance is not measured, so no plan can "
            "be made (run the pilot with two or more seeds)."
        ]
    power = float(measured["power_target"].iloc[0])
    effects = ", ".join(f"{e:g}" for e in sorted(set(measured["min_effect"])))
    powered = int((measured["mde"] <= measured["min_effect"] + 1e-12).sum())
    lines = [
        f"{len(measured)} rows with {', '.join(str(n) for n in sorted(set(measured['n_seeds'].astype(int))))} "
        f"seeds (pilot); power {100 * power:.0f}%, two-sided t-test on seeds - 1 df at alpha / Holm family size "
        f"(Holm's strictest step; {measured['power_alpha'].min():.3g} here); minimum effect {effects}.",
        f"Powered now: {powered} of {len(measured)} rows have MDE <= the minimum effect "
        f"(MDE {measured['mde'].min():.4f} to {measured['mde'].max():.4f}).",
        f"Seeds for every row to detect the minimum effect: {_seeds(measured['seeds_to_detect'])}; to establish "
        f"equivalence within it: {_seeds(measured['seeds_to_equivalence'])} (question variance held at the "
        "pilot's, Holm family of the pilot's size).",
    ]
    if len(measured) < len(rows):
        lines.append(f"{len(rows) - len(measured)} rows have one seed and no measured seed variance (left out).")
    return lines


def plan_text(
    comparisons_csv: Path, min_effect: float | None = None, power: float | None = None, every_row: bool = False
) -> tuple[str, pd.DataFrame]:
    """The printout (summary, then the per-row table) and the table."""
    table = replan(read_comparisons(comparisons_csv), min_effect, power)
    plan = plan_table(table, every_row)
    return "\n".join([*plan_summary(table, every_row), "", md_table(plan, digits=4)]), plan


def add_plan_seeds(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "plan-seeds",
        run_plan_seeds,
        "the seeds a study needs, from a pilot run's comparisons.csv (xlir.report.plan_seeds)",
    )
    p.add_argument("--comparisons", required=True, type=Path, help="comparisons.csv of a pilot run (`xlir compare`)")
    p.add_argument("--min-effect", type=float, help="the difference to detect (default: the pilot's report.min_effect)")
    p.add_argument("--power", type=float, help="the power target (default: the pilot's report.power, 0.8)")
    p.add_argument("--all-rows", action="store_true", help="every metric and subset, not only the headline rows")
    p.add_argument("--out", type=Path, help="also write the per-row table to this CSV")


def run_plan_seeds(a: argparse.Namespace) -> None:
    text, plan = plan_text(a.comparisons, a.min_effect, a.power, a.all_rows)
    if a.out:
        with atomic_open(a.out) as handle:
            plan.to_csv(handle, index=False)
    print(text)
