"""Paired significance tests for the difference between two retrieval runs.

The statistic is the one a setting's headline number is computed with: per
group (a language pair), the mean over its queries; then the unweighted mean
over groups (LAReQA's macro average). The data are per-query differences
`treatment - control` in a matrix `deltas[unit, group]` (NaN where a unit has
no measurement in a group), where a *unit* is what is resampled: a question id
shared by the parallel questions of every language (XQuAD-R, MLQA-R, the
demo), or a single question where questions are not parallel (MIRACL).

Question level (one training seed per arm):

- `paired_bootstrap`: resample units with replacement (the same resample in
  every group, so parallel questions stay together) and recompute the
  statistic; `percentile_ci` turns the samples into a confidence interval.
- `sign_flip_test`: the paired randomisation test. Under the null hypothesis
  that the two systems are exchangeable on each unit, the sign of a unit's
  differences is arbitrary; flip all of a unit's signs together at random and
  recompute the statistic. Two-sided p = (1 + #{|T*| >= |T|}) / (1 + R), so it
  is never below 1/(R+1), nor (exact test) below 2/2^units.

With one seed per arm these answer "is checkpoint A better than checkpoint B on
this question sample?", not "is recipe A better than recipe B": the variation
between training runs is not in them.

Seed level (`deltas[seed, unit, group]`, seed s of the treatment paired with
seed s of the control, or with the one untrained control run): the estimand is
the recipe difference, the expectation over training seeds and questions. The
estimate T is the macro mean of the seed-averaged deltas; its variance has a
seed part and a question part:

    Var(T) ~= s_D^2 / S  +  V_q

where D_s is seed s's macro delta (`seed_deltas`), s_D^2 their sample variance
(S - 1 degrees of freedom) and V_q the question-level variance of T, the
delta-method (linearised) variance of the macro mean over resampled units of
the seed-averaged deltas (`unit_variance`; the same quantity the question-id
bootstrap estimates, without its Monte-Carlo error). The seed-by-question
interaction is in both terms, so the estimate errs on the wide side by that
term's share (small when seeds or questions dominate). `seed_level_test`
gives the interval T +- t(S - 1) * se and the two-sided t-test of T = 0 with
S - 1 degrees of freedom: the seeds are the replicates of the recipe, and with
3 seeds the price is t(2) = 4.30 instead of 1.96. (Welch-Satterthwaite degrees
of freedom, used before, grow whenever a few seeds happen to agree, the very
case where s_D^2 underestimates: their false-positive rate was 0.060-0.075 at
alpha 0.05 with 3 seeds.) The p-value is continuous, so it resolves any Holm
family; an exact sign-flip test over seeds would not (its smallest p is
2 / 2^S: 0.031 with 6 seeds), which is why the t-test is used at every S.
tests/test_stats_simulation.py checks the false-positive rate (<= alpha + 0.01
with 3 and 5 seeds).

Power (`minimum_detectable_effect`, `seeds_to_detect`, `seeds_to_equivalence`):
from a row's seed sd s_D and question variance V_q the standard error with n
seeds is projected as se(n)^2 = s_D^2 / n + V_q (V_q held at its measured value,
which errs on the safe side: its per-seed share shrinks with more seeds). The
minimum detectable effect is the true difference the two-sided t-test (n - 1
df) at a given alpha finds with the given power (noncentral t); a row is
established equivalent when its interval at confidence 1 - alpha lies inside
+-min_effect (`xlir.report.compare`), which at a true difference of 0 happens
with probability `power` once (t(1 - alpha/2) + t((1 + power)/2)) se(n) <=
min_effect.

`two_level_bootstrap` resamples seeds with replacement, then question ids (one
draw shared by every seed and group) and is reported beside the t interval
(`boot_ci_low`, `boot_ci_high`). It is not the headline interval: with S seeds
a seed-resampling bootstrap shrinks the seed variance by (S - 1) / S and has
only S distinct seed values, so its percentile interval undercovers with 3 to 5
seeds (tests/test_stats_simulation.py, seed sd 0.01: 0.85 coverage with 3 seeds,
0.89 with 5, below the t interval's; question-only resampling of seed-averaged
scores has a false-positive rate near 0.4).

`holm`: Holm's step-down adjustment of a family of p-values; the smallest
adjusted p a family of m rows can reach is m times the smallest raw p
(`smallest_holm_p`), and `permutations_for` sizes R from m.

Everything is vectorised (resamples as a count/sign matrix times the delta
matrix, in chunks), seeded, and fast enough for 13k-query benchmarks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
from scipy import special
from scipy import stats as scipy_stats
from scipy.optimize import brentq

_CHUNK_CELLS = 4_000_000  # resample matrix cells per chunk (32 MB of float64)


def _prepare(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values with NaN as 0 and the presence mask, both float64; units without any
    measurement are dropped."""
    deltas = np.asarray(deltas, dtype=np.float64)
    if deltas.ndim != 2:
        raise ValueError(f"deltas must be a 2-D (unit x group) matrix, got shape {deltas.shape}")
    present = ~np.isnan(deltas)
    keep = present.any(axis=1)
    present = present[keep]
    values = np.where(present, deltas[keep], 0.0)
    return values, present.astype(np.float64)


def macro_mean(deltas: np.ndarray) -> float:
    """Mean over the units of each group, then the unweighted mean over the groups
    that have at least one unit (NaN when none has)."""
    values, present = _prepare(deltas)
    counts = present.sum(axis=0)
    used = counts > 0
    if not used.any():
        return float("nan")
    return float(np.mean(values.sum(axis=0)[used] / counts[used]))


def _macro_rows(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row-wise macro mean from per-group sums and counts (rows = resamples);
    groups with a zero count in a row are left out of that row's mean."""
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    used = counts > 0
    n_used = used.sum(axis=1)
    total = np.where(used, means, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_used > 0, total / n_used, np.nan)


def _chunks(n_samples: int, n_units: int) -> list[int]:
    size = max(1, min(n_samples, _CHUNK_CELLS // max(1, n_units)))
    return [min(size, n_samples - start) for start in range(0, n_samples, size)]


def paired_bootstrap(deltas: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """`n_samples` bootstrap replicates of `macro_mean(deltas)`: units drawn with
    replacement, one draw shared by every group."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    values, present = _prepare(deltas)
    n_units = values.shape[0]
    if n_units == 0:
        return np.full(n_samples, np.nan)
    out = []
    for size in _chunks(n_samples, n_units):
        draws = rng.integers(0, n_units, size=(size, n_units))
        offsets = (np.arange(size) * n_units)[:, None]
        weights = np.bincount((draws + offsets).ravel(), minlength=size * n_units).reshape(size, n_units)
        weights = weights.astype(np.float64)
        out.append(_macro_rows(weights @ values, weights @ present))
    return np.concatenate(out)


def sign_flip_test(deltas: np.ndarray, n_permutations: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of the paired randomisation (sign-flip) test of
    `macro_mean(deltas) == 0`, flipping all of a unit's differences together."""
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    values, present = _prepare(deltas)
    n_units = values.shape[0]
    if n_units == 0:
        return float("nan")
    counts = present.sum(axis=0)
    used = counts > 0
    values, counts = values[:, used], counts[used]
    # the statistic is linear in the signs: mean_g(sum_i s_i v_ig / n_g) = sum_i s_i w_i with
    # w_i = mean_g(v_ig / n_g), so each permutation is one dot product (not units x groups)
    weights = (values / counts).mean(axis=1)
    observed = abs(float(np.mean(values.sum(axis=0) / counts)))
    tolerance = 1e-12 * max(1.0, observed)
    extreme = 0
    for size in _chunks(n_permutations, n_units):
        signs = rng.integers(0, 2, size=(size, n_units)).astype(np.float64) * 2.0 - 1.0
        statistics = np.abs(signs @ weights)
        extreme += int(np.count_nonzero(statistics >= observed - tolerance))
    return (1 + extreme) / (1 + n_permutations)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap samples (NaN samples ignored)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return float(low), float(high)


def unit_variance(deltas: np.ndarray) -> float:
    """Delta-method variance of `macro_mean(deltas)` over resampled units: with
    m_g the mean and n_g the count of group g and G the groups used, unit i's
    influence is c_i = (1/G) sum_g (x_ig - m_g) / n_g over its measured groups,
    and the variance N / (N - 1) * sum_i c_i^2 (for one complete group: s^2 / N).
    NaN with fewer than two units."""
    values, present = _prepare(deltas)
    n_units = values.shape[0]
    counts = present.sum(axis=0)
    used = counts > 0
    if n_units < 2 or not used.any():
        return float("nan")
    values, present, counts = values[:, used], present[:, used], counts[used]
    means = values.sum(axis=0) / counts
    influence = (((values - means) * present) / counts).sum(axis=1) / used.sum()
    return float(n_units / (n_units - 1) * np.sum(influence**2))


def _prepare_seeds(deltas: np.ndarray) -> np.ndarray:
    """A (seed x unit x group) float64 array without the units no seed measured."""
    deltas = np.asarray(deltas, dtype=np.float64)
    if deltas.ndim != 3:
        raise ValueError(f"deltas must be a 3-D (seed x unit x group) array, got shape {deltas.shape}")
    keep = (~np.isnan(deltas)).any(axis=(0, 2))
    return deltas[:, keep]


def seed_average(deltas: np.ndarray) -> np.ndarray:
    """(unit x group) mean over the seeds that measured each cell (NaN where none did)."""
    deltas = np.asarray(deltas, dtype=np.float64)
    present = ~np.isnan(deltas)
    counts = present.sum(axis=0)
    sums = np.where(present, deltas, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def two_level_bootstrap(deltas: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """`n_samples` replicates of the macro mean of the seed-averaged deltas
    (`deltas[seed, unit, group]`): seeds drawn with replacement, then units drawn
    with replacement, one unit draw shared by every seed and group."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    deltas = _prepare_seeds(deltas)
    n_seeds, n_units, n_groups = deltas.shape
    if n_units == 0 or n_seeds == 0:
        return np.full(n_samples, np.nan)
    present = ~np.isnan(deltas)
    if (present == present[:1]).all():  # every seed measured the same queries: the statistic is linear
        return _two_level_bootstrap_same_queries(np.where(present, deltas, 0.0), present[0], n_samples, rng)
    values = np.where(present, deltas, 0.0).reshape(n_seeds, -1)
    present = present.astype(np.float64).reshape(n_seeds, -1)
    out = []
    for size in _chunks(n_samples, n_units * n_groups):
        seed_draws = rng.integers(0, n_seeds, size=(size, n_seeds)) + (np.arange(size) * n_seeds)[:, None]
        seed_weights = np.bincount(seed_draws.ravel(), minlength=size * n_seeds).reshape(size, n_seeds)
        seed_weights = seed_weights.astype(np.float64)
        unit_draws = rng.integers(0, n_units, size=(size, n_units))
        offsets = (np.arange(size) * n_units)[:, None]
        unit_weights = np.bincount((unit_draws + offsets).ravel(), minlength=size * n_units)
        unit_weights = unit_weights.reshape(size, n_units).astype(np.float64)
        # A cell's seed average weights its seeds by their draw counts; the macro mean
        # then weights units by theirs (units a seed lacks are left out of that seed).
        sums = (seed_weights @ values).reshape(size, n_units, n_groups)
        counts = (seed_weights @ present).reshape(size, n_units, n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            cell_means = np.where(counts > 0, sums / np.maximum(counts, 1e-300), 0.0)
        cell_present = (counts > 0).astype(np.float64)
        group_sums = np.einsum("su,sug->sg", unit_weights, cell_means)
        group_counts = np.einsum("su,sug->sg", unit_weights, cell_present)
        out.append(_macro_rows(group_sums, group_counts))
    return np.concatenate(out)


def _two_level_bootstrap_same_queries(
    values: np.ndarray, present: np.ndarray, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """`two_level_bootstrap` when every seed has the same measurements: a replicate's
    group sum is sum_s w_s / S * (unit weights @ values[s]), so the unit resample is one
    matrix product per seed."""
    n_seeds, n_units, _ = values.shape
    present = present.astype(np.float64)
    out = []
    for size in _chunks(n_samples, n_units * n_seeds):
        seed_draws = rng.integers(0, n_seeds, size=(size, n_seeds)) + (np.arange(size) * n_seeds)[:, None]
        seed_weights = np.bincount(seed_draws.ravel(), minlength=size * n_seeds).reshape(size, n_seeds)
        unit_draws = rng.integers(0, n_units, size=(size, n_units))
        offsets = (np.arange(size) * n_units)[:, None]
        unit_weights = np.bincount((unit_draws + offsets).ravel(), minlength=size * n_units)
        unit_weights = unit_weights.reshape(size, n_units).astype(np.float64)
        per_seed = np.stack([unit_weights @ values[seed] for seed in range(n_seeds)])  # seed x sample x group
        sums = np.einsum("ns,nsg->sg", seed_weights.T.astype(np.float64) / n_seeds, per_seed)
        out.append(_macro_rows(sums, unit_weights @ present))
    return np.concatenate(out)


@dataclass(frozen=True)
class SeedLevel:
    """The seed-level t interval and test (see the module docstring)."""

    delta: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    seed_deltas: tuple[float, ...]
    seed_variance: float  # s_D^2 / S
    question_variance: float  # V_q


def seed_level_test(deltas: np.ndarray, ci_level: float = 0.95) -> SeedLevel:
    """t interval and two-sided t-test of the recipe difference from
    `deltas[seed, unit, group]` (at least two seeds with a measurement)."""
    if not 0 < ci_level < 1:
        raise ValueError(f"level must be in (0, 1), got {ci_level}")
    deltas = _prepare_seeds(deltas)
    per_seed = np.array([macro_mean(d) for d in deltas]) if deltas.shape[1] else np.array([])
    per_seed = per_seed[~np.isnan(per_seed)]
    n_seeds = per_seed.size
    if n_seeds < 2:
        raise ValueError(f"seed-level inference needs at least two seeds with a measurement, got {n_seeds}")
    averaged = seed_average(deltas)
    estimate = macro_mean(averaged)
    seed_part = float(np.var(per_seed, ddof=1)) / n_seeds
    question_part = unit_variance(averaged)
    question_part = 0.0 if math.isnan(question_part) else question_part
    variance = seed_part + question_part
    se = math.sqrt(variance)
    df = float(n_seeds - 1)  # the seeds are the replicates (module docstring)
    if se > 0:
        quantile = float(scipy_stats.t.ppf(1 - (1 - ci_level) / 2, df))
        p_value = float(2 * scipy_stats.t.sf(abs(estimate) / se, df))
    else:  # every seed and question gives the same difference
        quantile, p_value = 0.0, (1.0 if estimate == 0 else 0.0)
    return SeedLevel(
        delta=estimate,
        se=se,
        df=float(df),
        ci_low=estimate - quantile * se,
        ci_high=estimate + quantile * se,
        p_value=min(1.0, p_value),
        seed_deltas=tuple(float(d) for d in per_seed),
        seed_variance=seed_part,
        question_variance=question_part,
    )


def smallest_p(permutations: int | None, n_units: int, seed_level: bool) -> float:
    """The smallest p-value a row's test can return: 0 for the (continuous) seed-level
    t-test; for the sign-flip test max(1 / (R + 1), 2 / 2^units) (the exact test's
    floor: the observed signs and their mirror image are always as extreme)."""
    if seed_level:
        return 0.0
    floor = 2.0 / 2.0**n_units if n_units < 1075 else 0.0
    if permutations is None or permutations < 1:
        return max(floor, 1.0)
    return max(1.0 / (permutations + 1), floor)


def smallest_holm_p(family_size: int, p_floor: float) -> float:
    """The smallest Holm-adjusted p a row can reach in a family of `family_size`
    rows: the family's smallest p is multiplied by the family size."""
    return min(1.0, family_size * p_floor)


def permutations_for(family_size: int, alpha: float, minimum: int, factor: float = 10.0) -> int:
    """Random sign vectors so that the smallest attainable Holm p of a family of
    `family_size` rows, family_size / (R + 1), is at most alpha / `factor`:
    R = max(minimum, ceil(factor * family_size / alpha) - 1)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return max(int(minimum), math.ceil(factor * max(1, family_size) / alpha) - 1)


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control); NaN entries
    stay NaN and do not count towards the family size.

    >>> holm([0.01, 0.04, 0.03]).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    running = 0.0
    for rank, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def holm_levels(p_values: np.ndarray | list[float], alpha: float) -> np.ndarray:
    """The per-comparison level each row is tested at by Holm's step-down procedure at
    family-wise level `alpha`: with the p-values sorted (stably, as `holm`), step k tests
    at alpha / (m - k) until the first step j that fails; that step and every later one
    stay at alpha / (m - j). A row is rejected by Holm iff its raw p < its level, so an
    interval at confidence 1 - level from the same test excludes 0 exactly when Holm
    rejects (for the t-test; for a bootstrap beside a randomisation test, up to their
    agreement). NaN p-values get NaN.

    >>> holm_levels([0.001, 0.02, 0.3], 0.05).round(4).tolist()
    [0.0167, 0.025, 0.05]
    >>> holm_levels([0.001, 0.04, 0.3], 0.05).round(4).tolist()
    [0.0167, 0.025, 0.025]
    """
    p = np.asarray(p_values, dtype=np.float64)
    levels = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    stopped: float | None = None
    for rank, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        level = alpha / (m - rank)
        if stopped is None and not p[index] < level:
            stopped = level
        levels[index] = level if stopped is None else stopped
    return levels


def t_interval(delta: float, se: float, df: float, level: float) -> tuple[float, float]:
    """delta +- t(df) quantile x se at confidence `level` (the seed-level interval)."""
    if se == 0:
        return delta, delta
    quantile = float(scipy_stats.t.ppf(1 - (1 - level) / 2, df))
    return delta - quantile * se, delta + quantile * se


MAX_PLANNED_SEEDS = 1000  # `seeds_to_detect` / `seeds_to_equivalence` give up beyond this


def t_test_power(effect: float, se: float, df: float, alpha: float) -> float:
    """Power of the two-sided t-test at level `alpha` (df degrees of freedom) against a
    true difference `effect` when the estimate's standard error is `se` (noncentral t)."""
    if se <= 0:
        return 1.0 if effect != 0 else alpha
    critical = float(special.stdtrit(df, 1 - alpha / 2))
    shift = abs(effect) / se
    upper = 1.0 - float(special.nctdtr(df, shift, critical))
    lower = float(special.nctdtr(df, shift, -critical))  # the wrong-sign tail
    return min(1.0, max(0.0, upper) + (0.0 if math.isnan(lower) else lower))


def minimum_detectable_effect(se: float, df: float, alpha: float, power: float = 0.8) -> float:
    """The smallest true difference the two-sided t-test at level `alpha` with `df` degrees
    of freedom finds with probability `power`, for standard error `se` (NaN without one)."""
    if not (se >= 0 and df >= 1) or not 0 < alpha < 1 or not 0 < power < 1:
        return float("nan")
    if se == 0:
        return 0.0
    # the usual approximation (t quantiles added) brackets the root closely
    guess = se * (float(special.stdtrit(df, 1 - alpha / 2)) + float(special.stdtrit(df, power)))
    low, high = 0.5 * guess, 1.5 * guess
    while t_test_power(low, se, df, alpha) > power:
        low /= 2
    while t_test_power(high, se, df, alpha) < power:
        high *= 2
    return float(brentq(lambda effect: t_test_power(effect, se, df, alpha) - power, low, high, xtol=1e-6 * guess))


def projected_se(seed_sd: float, question_variance: float, n_seeds: int) -> float:
    """se(n) = sqrt(s_D^2 / n + V_q): the standard error with `n_seeds` seeds (module docstring)."""
    return math.sqrt(seed_sd**2 / n_seeds + max(0.0, question_variance))


def seeds_to_detect(seed_sd: float, question_variance: float, effect: float, alpha: float, power: float = 0.8) -> float:
    """The fewest seeds (>= 2) whose minimum detectable effect is at most `effect`; NaN when
    the seed sd is unknown or more than `MAX_PLANNED_SEEDS` would be needed."""

    def detects(n: int) -> bool:
        se = projected_se(seed_sd, question_variance, n)
        return minimum_detectable_effect(se, n - 1, alpha, power) <= effect

    return _fewest_seeds(seed_sd, effect, detects)


def equivalence_se(margin: float, df: float, alpha: float, power: float = 0.8) -> float:
    """The largest standard error with which the interval at confidence 1 - alpha lies inside
    +-`margin` with probability `power` at a true difference of 0 (approximately:
    margin / (t(1 - alpha/2) + t((1 + power)/2)), both on df degrees of freedom)."""
    quantiles = float(special.stdtrit(df, 1 - alpha / 2)) + float(special.stdtrit(df, (1 + power) / 2))
    return margin / quantiles


def seeds_to_equivalence(
    seed_sd: float, question_variance: float, margin: float, alpha: float, power: float = 0.8
) -> float:
    """The fewest seeds (>= 2) with which a true difference of 0 is established equivalent
    (interval inside +-`margin`) with probability `power`; NaN as `seeds_to_detect`."""

    def establishes(n: int) -> bool:
        return projected_se(seed_sd, question_variance, n) <= equivalence_se(margin, n - 1, alpha, power)

    return _fewest_seeds(seed_sd, margin, establishes)


def _fewest_seeds(seed_sd: float, target: float, enough: Callable[[int], bool]) -> float:
    """The smallest n in 2 .. MAX_PLANNED_SEEDS with enough(n) (monotone in n), by bisection."""
    if math.isnan(seed_sd) or not target > 0 or not enough(MAX_PLANNED_SEEDS):
        return float("nan")
    low, high = 1, MAX_PLANNED_SEEDS  # enough(high) holds; low is below the range
    while high - low > 1:
        middle = (low + high) // 2
        if middle >= 2 and enough(middle):
            high = middle
        else:
            low = middle
    return float(high)


SEED_LEVEL_CI = "t interval over seeds and question ids (seeds - 1 df)"
SEED_LEVEL_TEST = "t-test over seeds and question ids (seeds - 1 df)"
QUESTION_CI = "percentile bootstrap over question ids"
QUESTION_TEST = "sign-flip randomisation over question ids"


@dataclass(frozen=True)
class PairedResult:
    """One comparison: the observed macro-averaged difference, its confidence
    interval and p-value, with the sizes and methods they rest on. `seed_level`:
    both include the variation between training seeds (two or more seeds);
    otherwise they are question-level only (one seed: two checkpoints)."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n_units: int
    n_groups: int
    n_measurements: int
    bootstrap_samples: int
    permutations: int
    ci_level: float
    n_seeds: int = 1
    seed_level: bool = False
    se: float = 0.0
    df: float = math.inf
    boot_ci_low: float = 0.0
    boot_ci_high: float = 0.0
    ci_method: str = QUESTION_CI
    test: str = QUESTION_TEST
    # The question-level bootstrap replicates the interval came from (one seed only), kept so that
    # `xlir.report.compare.finish` can take the Holm-adjusted percentile interval from the same samples.
    boot_samples: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "boot_samples"}


def compare_paired(
    deltas: np.ndarray,
    bootstrap_samples: int = 2000,
    permutations: int = 2000,
    ci_level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> PairedResult:
    """Question level (one seed): observed macro difference, percentile bootstrap CI
    and sign-flip p-value."""
    rng = rng if rng is not None else np.random.default_rng(0)
    values, present = _prepare(deltas)
    observed = macro_mean(deltas)
    boot = paired_bootstrap(deltas, bootstrap_samples, rng)
    low, high = percentile_ci(boot, ci_level)
    return PairedResult(
        delta=observed,
        ci_low=low,
        ci_high=high,
        p_value=sign_flip_test(deltas, permutations, rng),
        n_units=int(values.shape[0]),
        n_groups=int((present.sum(axis=0) > 0).sum()),
        n_measurements=int(present.sum()),
        bootstrap_samples=int(bootstrap_samples),
        permutations=int(permutations),
        ci_level=float(ci_level),
        se=float(np.std(finite, ddof=1)) if (finite := boot[~np.isnan(boot)]).size > 1 else 0.0,
        boot_ci_low=low,
        boot_ci_high=high,
        boot_samples=boot,
    )


def compare_seeds(
    deltas: np.ndarray,
    bootstrap_samples: int = 2000,
    permutations: int = 2000,
    ci_level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> PairedResult:
    """A comparison from `deltas[seed, unit, group]`: with two or more seeds the
    seed-level t interval and test (`seed_level_test`) and the two-level bootstrap
    interval beside it; with one seed `compare_paired` on it (question level)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    deltas = _prepare_seeds(deltas)
    measured = ~np.isnan(deltas).all(axis=(1, 2))
    deltas = deltas[measured]
    if deltas.shape[0] < 2:
        single = deltas[0] if deltas.shape[0] else np.empty((0, 0))
        return compare_paired(single, bootstrap_samples, permutations, ci_level, rng)
    result = seed_level_test(deltas, ci_level)
    boot_low, boot_high = percentile_ci(two_level_bootstrap(deltas, bootstrap_samples, rng), ci_level)
    averaged = seed_average(deltas)
    values, present = _prepare(averaged)
    return PairedResult(
        delta=result.delta,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        p_value=result.p_value,
        n_units=int(values.shape[0]),
        n_groups=int((present.sum(axis=0) > 0).sum()),
        n_measurements=int(present.sum()),
        bootstrap_samples=int(bootstrap_samples),
        permutations=0,
        ci_level=float(ci_level),
        n_seeds=int(deltas.shape[0]),
        seed_level=True,
        se=result.se,
        df=result.df,
        boot_ci_low=boot_low,
        boot_ci_high=boot_high,
        ci_method=SEED_LEVEL_CI,
        test=SEED_LEVEL_TEST,
    )
