"""Statistics of a results set: per cell, how much, how sure, and how it compares with native.

A *cell* is (environment, workload, metric, sweep point): the repetitions of one number.
For each cell: n, mean, SD, median, coefficient of variation and the 95 % confidence interval of
the mean (Student's t). For each cell of an environment other than the native baseline:

- the ratio of its mean to the baseline's, with a 95 % interval on the **log-ratio scale**: the
  delta method's standard error of log(mean_a / mean_b), sqrt(CoV_a^2 / n_a + CoV_b^2 / n_b), times
  t at Welch-Satterthwaite degrees of freedom. A 3x slowdown is as easy to bound as a 3 % one
  (an interval on the ratio's own scale, as Fieller's, stretches with the ratio and can be
  unbounded); its ends are always positive. Fieller's interval (`fieller_ratio`) remains for a
  mean that is not positive, where a logarithm has no meaning.
- the **verdict** (`verdict`), the one classification the words, the tables and the figures
  all show: `cost` or `gain` when the interval lies wholly beyond the equivalence band (+-5 %
  by default, symmetric on the log scale), `equivalent` when it lies wholly inside it, and
  `unresolved` only when it straddles an edge of the band. Repetitions that are completely
  apart (every one of the environment's beyond every one of native's, 3 or more each, where the
  chance of that order under no difference is 1 in C(6, 3) = 20 per side) decide the direction
  themselves: such a cell is a cost or a gain, never unresolved.
- an exact **permutation test** (scipy.stats.permutation_test) of the difference of the means:
  distribution-free, but its p cannot go below 2 / C(n1+n2, n1): 0.1 with 3 and 3 repetitions,
  0.029 with 4 and 4, 0.0079 with 5 and 5. Where that minimum is above alpha the test cannot
  say "significant" at all, so `significant` then falls back to the ratio's interval excluding
  1 (an assumption of log-normal means), and `basis` says which of the two decided.
- flags: `few` (n < 3) and `noisy` (CoV above a threshold, 5 % by default) in either cell.

`better` says which direction is the improvement; `overhead_pct` is the change in the worse
direction (positive: worse than native; negative: better), whatever the metric's direction.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .parallel import pmap


def _scipy_stats():
    """scipy.stats, imported when a statistic is first computed: it takes a second or two to
    import, which every command that fails early or reads no samples (a wrong run folder given
    to `bench report`) would otherwise spend before it says anything."""
    from scipy import stats

    return stats


NATIVE = "host"

# A workload parameter's column in store.load(): param_clients holds the parameter `clients`.
PARAM = "param_"
# Parameter names that are sweeps when they take several values, within a run or across runs
# (besides those a run recorded as swept, run.json's sweep_keys): a sweep point is a cell of its
# own even when a quick profile has only one point of it.
KNOWN_SWEEPS = ("clients", "threads", "streams", "iodepth", "numjobs")
PAIRS_PER_CALL = 256         # permutation tests vectorized together
MAX_ELEMENTS = 4_000_000     # floats in one vectorized permutation step (~32 MB)


@dataclasses.dataclass(frozen=True)
class Options:
    confidence: float = 0.95
    alpha: float = 0.05
    noisy_cov: float = 0.05       # a coefficient of variation above this flags the cell "noisy"
    min_n: int = 3                # fewer repetitions than this flags the cell "few"
    n_resamples: int = 9999       # permutations; exact when there are fewer distinct ones
    seed: int = 20140721          # the permutation test's, when it samples (recorded in the report)
    band: float = 0.05            # the equivalence band: a ratio within x(1 +- band) is "no change"


# -- one sample ------------------------------------------------------------------------------

_T: dict[tuple[float, float], float] = {}   # (confidence, df) -> t; a results set asks for a few thousand


def _t(confidence: float, df: float) -> float:
    """The two-sided t quantile, cached."""
    key = (confidence, float(df))
    if key not in _T:
        if len(_T) > 65536:
            _T.clear()
        _T[key] = float(_scipy_stats().t.ppf(0.5 + confidence / 2, df))
    return _T[key]


def describe(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """n, mean, SD (n-1), median, CoV and the t confidence interval of the mean."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    return _described(n, float(np.mean(x)) if n else math.nan, float(np.std(x, ddof=1)) if n > 1 else math.nan,
                      float(np.median(x)) if n else math.nan, confidence)


def _described(n: int, mean: float, sd: float, median: float, confidence: float) -> dict[str, float]:
    half = _t(confidence, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": mean, "sd": sd, "median": median,
            "cov": sd / abs(mean) if n > 1 and mean else math.nan,
            "ci_low": mean - half, "ci_high": mean + half}


@dataclasses.dataclass(frozen=True)
class Moments:
    """What describe(), log_ratio() and apart() take from a cell's values, as they compute it."""
    n: int
    mean: float
    sd: float        # ddof 1; nan below 2 values
    var: float       # ddof 1, as numpy's var (not sd squared: the last bit can differ)
    median: float
    low: float
    high: float


def moments_many(value: np.ndarray, positions: list[np.ndarray]) -> list[Moments]:
    """Each cell's Moments (cells given by their row positions in `value`), computed a matrix
    per number of repetitions: numpy's reductions along a row add in the same order as over
    the row alone, so every number is the one describe() gives, bit for bit."""
    out: list[Moments | None] = [None] * len(positions)
    by_n: dict[int, list[int]] = {}
    for i, pos in enumerate(positions):
        by_n.setdefault(len(pos), []).append(i)
    for n, cells_n in by_n.items():
        if n == 0:
            for i in cells_n:
                out[i] = Moments(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
            continue
        x = value[np.concatenate([positions[i] for i in cells_n])].reshape(len(cells_n), n)
        nan = np.full(len(cells_n), math.nan)
        columns = (x.mean(axis=1), x.std(axis=1, ddof=1) if n > 1 else nan, x.var(axis=1, ddof=1) if n > 1 else nan,
                   np.median(x, axis=1), x.min(axis=1), x.max(axis=1))
        for i, row in zip(cells_n, zip(*(c.tolist() for c in columns))):
            out[i] = Moments(n, *row)
    return out


def t_many(confidence: float, dfs) -> None:
    """The t quantiles of these degrees of freedom, into _t's cache in one vectorized call
    (scipy's ppf of an array is the same function, value by value, as of each alone)."""
    missing = sorted({float(d) for d in dfs if (confidence, float(d)) not in _T and math.isfinite(d)})
    if missing:
        for d, q in zip(missing, _scipy_stats().t.ppf(0.5 + confidence / 2, np.array(missing)).tolist()):
            _T[(confidence, d)] = float(q)


# -- two samples -----------------------------------------------------------------------------

def fieller_ratio(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """mean(a) / mean(b) and its Fieller interval for independent samples.

    Solves (ma - r mb)^2 <= t^2 (va + r^2 vb) for r, with va, vb the squared standard errors
    and t at the Welch-Satterthwaite degrees of freedom of ma - r mb. When mb is not clearly
    away from zero (t^2 vb >= mb^2) the set is unbounded: (ratio, -inf, inf).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return math.nan, math.nan, math.nan
    ma, mb = a.mean(), b.mean()
    ratio = ma / mb if mb else math.nan
    if na < 2 or nb < 2 or not mb:
        return float(ratio), math.nan, math.nan
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    spread = va + ratio**2 * vb
    if spread == 0:
        return float(ratio), float(ratio), float(ratio)
    df = spread**2 / (va**2 / (na - 1) + ratio**4 * vb**2 / (nb - 1))
    t = _t(confidence, round(float(df), 3))
    q = mb**2 - t**2 * vb
    if q <= 0:
        return float(ratio), -math.inf, math.inf
    disc = t**2 * (va * mb**2 + vb * ma**2 - t**2 * va * vb)
    root = math.sqrt(max(disc, 0.0))
    return float(ratio), float((ma * mb - root) / q), float((ma * mb + root) / q)


def log_ratio(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """mean(a) / mean(b) and its interval on the log scale: exp(log ratio -+ t * se), se the
    delta method's sqrt(CoV_a^2 / n_a + CoV_b^2 / n_b) (CoV with n - 1), t at the
    Welch-Satterthwaite degrees of freedom of the two terms. Where a mean is not positive the
    logarithm means nothing: Fieller's interval instead."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan, math.nan
    return _log_ratio(moments_many(a, [np.arange(len(a))])[0], moments_many(b, [np.arange(len(b))])[0],
                      confidence, lambda: fieller_ratio(a, b, confidence))


def _log_ratio(a: Moments, b: Moments, confidence: float, fieller) -> tuple[float, float, float]:
    """log_ratio from the two cells' Moments; `fieller()` where a mean is not positive."""
    na, nb, ma, mb = a.n, b.n, a.mean, b.mean
    if not (ma > 0 and mb > 0):
        return fieller()
    ratio = ma / mb
    if na < 2 or nb < 2:
        return ratio, math.nan, math.nan
    va, vb = a.var / na / ma**2, b.var / nb / mb**2
    se = math.sqrt(va + vb)
    if se == 0:
        return ratio, ratio, ratio
    half = _t(confidence, _welch_df(a, b)) * se
    return ratio, ratio * math.exp(-half), ratio * math.exp(half)


def _welch_df(a: Moments, b: Moments) -> float:
    """The Welch-Satterthwaite degrees of freedom of the log-ratio's two terms (to 3 decimals:
    the t quantile is cached by it); nan where _log_ratio has no interval."""
    if not (a.mean > 0 and b.mean > 0) or a.n < 2 or b.n < 2:
        return math.nan
    va, vb = a.var / a.n / a.mean**2, b.var / b.n / b.mean**2
    if va + vb == 0:
        return math.nan
    return round(float((va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))), 3)


def apart(a: Sequence[float], b: Sequence[float]) -> int:
    """+1 when every value of a is above every value of b, -1 when every one is below, else 0."""
    if len(a) == 0 or len(b) == 0:
        return 0
    return _apart(min(a), max(a), min(b), max(b))


def _apart(low_a: float, high_a: float, low_b: float, high_b: float) -> int:
    if low_a > high_b:
        return 1
    if high_a < low_b:
        return -1
    return 0


MIN_APART_N = 3   # repetitions per side for an order alone to decide (1 in 20 per side at 3 + 3)


def verdict(ratio_low: float, ratio_high: float, better: str, side: int = 0, n: tuple[int, int] = (0, 0),
            band: float = 0.05) -> str:
    """cost, gain, equivalent or unresolved: the ratio's interval against the band
    [1 / (1 + band), 1 + band]; `side` is apart(a, b), which decides the direction by itself
    with MIN_APART_N repetitions or more on each side, when the interval does not."""
    up = 1.0 if better == "higher" else -1.0   # a ratio above 1 is a gain for a higher-is-better metric
    edge = 1.0 + band
    if math.isfinite(ratio_low) and math.isfinite(ratio_high) and ratio_low > 0:
        if 1 / edge <= ratio_low and ratio_high <= edge:
            return "equivalent"
        if ratio_high < 1 / edge:
            return "cost" if up > 0 else "gain"
        if ratio_low > edge:
            return "gain" if up > 0 else "cost"
    if side and min(n) >= MIN_APART_N:
        return "gain" if side * up > 0 else "cost"
    return "unresolved"


def _mean_difference(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_p(a: Sequence[float], b: Sequence[float], n_resamples: int = 9999, seed: int = 0) -> float:
    """Two-sided permutation test of mean(a) - mean(b); exact when the splits are few enough."""
    return permutation_p_many([(a, b)], n_resamples, seed)[0]


def permutation_p_many(pairs: list[tuple[Sequence[float], Sequence[float]]], n_resamples: int = 9999,
                       seed: int = 0) -> list[float]:
    """permutation_p of many pairs, one scipy call per pair of sample sizes (a results set has
    thousands of cells, nearly all with the same repetitions: one vectorized test each size)."""
    out = [math.nan] * len(pairs)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, (a, b) in enumerate(pairs):
        if len(a) >= 2 and len(b) >= 2:  # scipy needs two per side; one alone says nothing of spread
            by_size.setdefault((len(a), len(b)), []).append(i)
    chunks = []
    for (n1, n2), same_size in by_size.items():
        for start in range(0, len(same_size), PAIRS_PER_CALL):
            idx = same_size[start:start + PAIRS_PER_CALL]
            a = np.array([np.asarray(pairs[i][0], float) for i in idx])
            b = np.array([np.asarray(pairs[i][1], float) for i in idx])
            chunks.append((idx, (a, b, n_resamples, seed)))
    for n1, n2 in by_size:   # the sampled tests' permutations, drawn here once: workers inherit them
        if math.comb(n1 + n2, n1) > n_resamples:
            _permutations(n1 + n2, n1, n_resamples, seed)
    # Each chunk has its own generator seeded the same: its p-values do not depend on which
    # process computes it, or in which order.
    for (idx, _), ps in zip(chunks, pmap(_permutation_chunk, [c for _, c in chunks])):
        for i, p in zip(idx, ps):
            out[i] = float(p)
    return out


def _permutation_chunk(job) -> np.ndarray:
    """Two-sided permutation p of each row pair of a (pairs x n1) and b (pairs x n2)."""
    a, b, n_resamples, seed = job
    n1, n2 = a.shape[1], b.shape[1]
    if math.comb(n1 + n2, n1) > n_resamples and np.isfinite(a).all() and np.isfinite(b).all():
        return _sampled_permutation_p(a, b, n_resamples, seed)
    # Exact (few splits: cheap), or a value that is not finite: scipy's own test.
    # Bound the memory of one vectorized step (pairs x permutations x values).
    batch = max(1, MAX_ELEMENTS // (a.shape[0] * (n1 + n2)))
    res = _scipy_stats().permutation_test((a, b), _mean_difference, permutation_type="independent",
                              vectorized=True, n_resamples=n_resamples, alternative="two-sided",
                              axis=1, batch=batch, rng=np.random.default_rng(seed))
    return np.atleast_1d(res.pvalue)


@functools.lru_cache(maxsize=8)
def _permutations(n: int, n1: int, n_resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The index permutations scipy's sampled test draws, in its order (one
    Generator.permutation(n) each from default_rng(seed)), and each one's 0/1 membership mask
    of the first sample. Every chunk of a size draws the same ones, so they are drawn once
    (summarize draws them before its worker processes fork: they inherit them)."""
    rng = np.random.default_rng(seed)
    perms = np.array([rng.permutation(n) for _ in range(n_resamples)])
    first = np.zeros((n_resamples, n))
    np.put_along_axis(first, perms[:, :n1], 1.0, axis=1)
    perms.setflags(write=False)
    first.setflags(write=False)
    return perms, first


def _sequential_mean(x: np.ndarray) -> np.ndarray:
    """Each row's mean, its values added left to right: the order numpy's mean takes in scipy's
    gathered (permutations x pairs x values) array, so the same bits (np.mean of a row would
    add pairwise, and can differ in the last bit)."""
    total = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        total += x[:, j]
    return total / x.shape[1]


def _sampled_permutation_p(a: np.ndarray, b: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """scipy.stats.permutation_test's sampled two-sided p of the difference of the means, the
    same numbers, faster.

    scipy gathers every permuted sample (pairs x permutations x values) and averages it. Here
    the permuted first sample's sums are one matrix product with each permutation's 0/1
    membership mask, and a permutation's difference of the means is that sum times
    (1/n1 + 1/n2) less the total over n2: exact but for rounding in the last bits. The p only
    counts null values on either side of observed -/+ scipy's tolerance, so each is counted
    twice, against that threshold moved by a (wide) rounding margin either way: where the two
    counts agree no value is near it; the few values of a row where they differ are recomputed
    exactly as scipy computes them, so the counts, and the p-values, are scipy's
    (tests/test_stats.py checks it against scipy itself, ties and constant samples included).
    """
    n1, n2 = a.shape[1], b.shape[1]
    data = np.concatenate([a, b], axis=1)                           # pairs x n
    perms, first = _permutations(n1 + n2, n1, n_resamples, seed)    # permutations x n
    observed = _mean_difference(a, b, axis=-1)
    gamma = np.abs(np.finfo(float).eps * 100 * observed)            # scipy's tolerance
    low, high = (observed + gamma)[:, None], (observed - gamma)[:, None]   # null <= low; null >= high
    # Rounding of a sum of n values is below n * eps * max|value|; allow 1000 times that.
    margin = (1000 * (n1 + n2) * np.finfo(float).eps * np.abs(data).max(axis=1))[:, None]
    shift = data.sum(axis=1)[:, None] / n2
    scale = 1.0 / n1 + 1.0 / n2
    less = np.ones(len(data), dtype=np.int64)                       # 1: the observed split, as scipy
    greater = np.ones(len(data), dtype=np.int64)
    for start in range(0, n_resamples, 2048):                       # blocks that stay in the CPU's cache
        null = data @ first[start:start + 2048].T                   # pairs x block: the permuted sums
        null *= scale
        null -= shift
        for counts, sure, near, at, below in ((less, null <= low - margin, null <= low + margin, low, True),
                                              (greater, null >= high + margin, null >= high - margin, high, False)):
            certain, loose = np.count_nonzero(sure, axis=1), np.count_nonzero(near, axis=1)
            counts += certain
            for r in np.flatnonzero(loose != certain):              # values near the threshold: as scipy
                cols = np.flatnonzero(near[r] & ~sure[r])
                permuted = data[r][perms[start + cols]]
                exact = _sequential_mean(permuted[:, :n1]) - _sequential_mean(permuted[:, n1:])
                counts[r] += np.count_nonzero(exact <= at[r] if below else exact >= at[r])
    return np.clip(np.minimum(less, greater) / (n_resamples + 1) * 2, 0.0, 1.0)


def min_attainable_p(n1: int, n2: int, n_resamples: int = 9999) -> float:
    """The smallest two-sided p the permutation test can give with these sample sizes."""
    splits = math.comb(n1 + n2, n1)
    if splits <= n_resamples:         # exact: the observed split is at least 1 of `splits` each side
        return min(1.0, 2 / splits)
    return min(1.0, 2 / (n_resamples + 1))  # sampled: scipy counts the observed one in (+1)


def repetitions_to_resolve(cov_a: float, cov_b: float, half_width: float = 0.05, confidence: float = 0.95,
                           limit: int = 1000) -> int | None:
    """About how many repetitions per side make the ratio's interval +-half_width (relative), given
    the two sides' coefficients of variation: the delta method's relative SE of a ratio of means,
    sqrt((cov_a^2 + cov_b^2) / n), times t at 2n - 2 degrees of freedom. None beyond `limit`."""
    if not (math.isfinite(cov_a) and math.isfinite(cov_b)) or half_width <= 0:
        return None
    spread = math.sqrt(cov_a**2 + cov_b**2)
    for n in range(2, limit + 1):
        if _t(confidence, 2 * n - 2) * spread / math.sqrt(n) <= half_width:
            return n
    return None


def compare(a: Sequence[float], b: Sequence[float], better: str, options: Options = Options(),
            p: float | None = None) -> dict[str, Any]:
    """Sample a against reference b: ratio a/b with its interval, overhead, test, flags.
    `p` is the permutation test's p when the caller computed it already (in a batch)."""
    if p is None:
        p = permutation_p(a, b, options.n_resamples, options.seed)
    x, y = np.asarray(a, float), np.asarray(b, float)
    ma, mb = moments_many(x, [np.arange(len(x))])[0], moments_many(y, [np.arange(len(y))])[0]
    return compared(ma, mb, better, options, p, lambda: log_ratio(a, b, options.confidence))


def compared(a: Moments, b: Moments, better: str, options: Options, p: float, exact=None) -> dict[str, Any]:
    """compare() from the two cells' Moments and the permutation p; `exact()` is log_ratio of
    the values themselves, for a cell whose mean is not positive (Fieller's interval)."""
    if a.n == 0 or b.n == 0:
        ratio, low, high = math.nan, math.nan, math.nan
    else:
        ratio, low, high = _log_ratio(a, b, options.confidence, exact)
    sign = -1.0 if better == "higher" else 1.0
    # Overhead: the worse-direction change in percent; its interval maps from the ratio's.
    ends = sorted([sign * (low - 1) * 100, sign * (high - 1) * 100])
    p_min = min_attainable_p(a.n, b.n, options.n_resamples)
    if p_min <= options.alpha:
        basis, significant = "permutation", bool(p < options.alpha)
    else:  # the permutation test cannot decide at this n: the parametric interval does
        basis = "interval"
        significant = bool(not math.isnan(low) and not (low <= 1 <= high))
    side = _apart(a.low, a.high, b.low, b.high) if a.n and b.n else 0
    return {"ratio": ratio, "ratio_low": low, "ratio_high": high,
            "overhead_pct": sign * (ratio - 1) * 100, "overhead_low": ends[0], "overhead_high": ends[1],
            "p": p, "p_min": p_min, "significant": significant, "basis": basis, "apart": side,
            "verdict": verdict(low, high, better, side, (a.n, b.n), options.band)}


def performance(ratio: float, low: float, high: float, better: str) -> tuple[float, float, float]:
    """A ratio to native and its interval as performance relative to native (up is better):
    a lower-is-better metric's ratio inverted. An end that is not a positive finite number
    (an unbounded interval) comes back as nan."""
    def ok(v):
        return v is not None and math.isfinite(v) and v > 0
    if better == "higher":
        return (ratio if ok(ratio) else math.nan, low if ok(low) else math.nan, high if ok(high) else math.nan)
    return (1 / ratio if ok(ratio) else math.nan, 1 / high if ok(high) else math.nan,
            1 / low if ok(low) else math.nan)


# -- a results set ---------------------------------------------------------------------------

def param_columns(df) -> list[str]:
    return [c for c in df.columns if c.startswith(PARAM)]


def param_column(name: str) -> str:
    return PARAM + name


def sweep_params(df) -> dict[str, list[str]]:
    """Per workload, the parameters (by name, without the column prefix) that are sweep
    dimensions: those the runs recorded as swept within a repetition (run.json's sweep_keys,
    which bench.load keeps in df.attrs; a sweep of one point is still one), then those seen to
    be: several values within one repetition (a run made before they were recorded), or a known
    sweep name with several values across the runs (runs made at 1 and at 2 threads)."""
    declared = df.attrs.get("sweep_keys") or {}
    out: dict[str, list[str]] = {}
    params = param_columns(df)
    for workload, rows in df.groupby("workload", sort=False):
        keys = [k for k in declared.get(workload, [])
                if param_column(k) in rows and rows[param_column(k)].notna().any()]
        for column in params:
            p = column[len(PARAM):]
            col = rows[column]
            if p in keys or col.isna().all() or (col.dtype == object
                                                  and col.map(lambda v: isinstance(v, (list, dict))).any()):
                continue  # a list parameter (redis' `tests`) is a setting, never a point
            if col.nunique(dropna=True) <= 1:
                continue  # one value in the workload's rows cannot vary: most parameters, cheaply
            within = rows.groupby(["run_id", "environment", "metric", "repetition"])[column].nunique(dropna=True)
            if (within > 1).any() or p in KNOWN_SWEEPS:   # several values, as checked above
                keys.append(p)
        out[workload] = keys
    return out


def baseline_environment(df) -> str | None:
    """The native baseline: `host`, or else the environment of kind host."""
    envs = list(df["environment"].unique())   # in order of appearance
    if NATIVE in envs:
        return NATIVE
    hosts = list(df.loc[df["env_kind"] == "host", "environment"].unique())
    return hosts[0] if hosts else None


def _point_label(keys: list[str], values: tuple) -> str:
    return ", ".join(f"{k}={_fmt_param(v)}" for k, v in zip(keys, values))


def _fmt_param(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _cell_positions(df):
    """Yield (key, sweep, positions) per cell in order of first appearance, positions being the
    cell's row numbers in df. One groupby per workload giving integer codes, then one stable
    argsort: no DataFrame per cell (a lab-scale results set has thousands of cells)."""
    import numpy as np_

    sweeps = sweep_params(df)
    for workload, rows in df.groupby("workload", sort=False):
        keys = sweeps.get(workload, [])
        by = ["environment", "metric", *map(param_column, keys)]
        codes = rows.groupby(by, sort=False, dropna=False).ngroup().to_numpy()
        order = np_.argsort(codes, kind="stable")          # rows of a cell together, in file order
        bounds = np_.flatnonzero(np_.diff(codes[order])) + 1
        where = rows.index.to_numpy()
        firsts = rows[by].to_numpy(object)
        for part in np_.split(order, bounds):            # codes are numbered by first appearance
            env, metric, *point = firsts[part[0]]
            yield (env, workload, metric, _point_label(keys, tuple(point))), dict(zip(keys, point)), where[part]


def cells(df, options: Options = Options()):
    """Yield (key, values, first_row) per cell: key = (environment, workload, metric, point)."""
    for key, sweep, positions in _cell_positions(df):
        yield key, sweep, df.loc[positions]


def summarize(df, baseline: str | None = None, options: Options = Options()):
    """One row per cell with its statistics and, beside the baseline, its comparison to it."""
    import pandas as pd

    if df.empty:
        return pd.DataFrame()
    baseline = baseline or baseline_environment(df)
    df = df.reset_index(drop=True)   # positions below are row numbers
    # Plain numpy columns: indexing them per cell costs microseconds, a pandas row milliseconds.
    value = df["value"].to_numpy(float)
    env_kind, tool, unit, better = (df[c].to_numpy(object) for c in ("env_kind", "tool", "unit", "better"))
    tcg = (df["env_accel"] == "tcg").to_numpy(bool) if "env_accel" in df else None
    groups = list(_cell_positions(df))
    moments = moments_many(value, [pos for _, _, pos in groups])   # every cell's, a matrix per n
    t_many(options.confidence, {m.n - 1 for m in moments if m.n > 1})
    native = {(w, m, pt): (pos, mo) for ((e, w, m, pt), _, pos), mo in zip(groups, moments) if e == baseline}
    rows, pending = [], []
    for ((env, workload, metric, point), sweep, pos), mo in zip(groups, moments):
        first = pos[0]
        row = {"environment": env, "env_kind": env_kind[first], "workload": workload,
               "tool": tool[first], "metric": metric, "unit": unit[first], "better": better[first],
               "point": point, **{f"sweep_{k}": v for k, v in sweep.items()},
               "emulated": bool(tcg is not None and tcg[pos].any()),
               **_described(mo.n, mo.mean, mo.sd, mo.median, options.confidence)}
        row["few"] = row["n"] < options.min_n
        row["noisy"] = bool(row["cov"] > options.noisy_cov)
        ref = native.get((workload, metric, point))
        if env != baseline and ref is not None:
            pending.append((row, pos, mo, ref))
        rows.append(row)
    t_many(options.confidence, [_welch_df(mo, ref) for _, _, mo, (_, ref) in pending])
    ps = permutation_p_many([(value[pos], value[ref[0]]) for _, pos, _, ref in pending], options.n_resamples,
                            options.seed)
    for (row, pos, mo, (ref_pos, ref)), p in zip(pending, ps):
        row.update(compared(mo, ref, row["better"], options, p,
                            lambda: log_ratio(value[pos], value[ref_pos], options.confidence)))
        native_cov = _described(ref.n, ref.mean, ref.sd, ref.median, 0.95)["cov"]
        row["few"] = row["few"] or ref.n < options.min_n
        row["noisy"] = row["noisy"] or bool(native_cov > options.noisy_cov)
        row["native_n"], row["native_cov"] = ref.n, native_cov
        row["resolved"] = row["verdict"] != "unresolved"
        row["resolve_n"] = repetitions_to_resolve(row["cov"], row["native_cov"], confidence=options.confidence)
    return pd.DataFrame(rows)


def compare_runs(before, after, options: Options = Options()):
    """Per cell present in both: the change from `before` to `after` (ratio after/before)."""
    import pandas as pd

    # The side is the run id: a sweep is found within one run, and a copied run folder keeps
    # its run id in every sample.
    both = pd.concat([before.assign(run_id="a"), after.assign(run_id="b")], ignore_index=True)
    rows, pending = [], []
    for (env, workload, metric, point), _, g in cells(both, options):
        a = g.loc[g["run_id"] == "a", "value"].to_numpy(float)
        b = g.loc[g["run_id"] == "b", "value"].to_numpy(float)
        if not len(a) or not len(b):
            continue
        first = g.iloc[0]
        da, db = describe(a), describe(b)
        row = {"environment": env, "workload": workload, "metric": metric, "point": point,
               "unit": first["unit"], "better": first["better"], "n_a": len(a), "n_b": len(b),
               "mean_a": da["mean"], "mean_b": db["mean"],
               "few": min(len(a), len(b)) < options.min_n,
               "noisy": bool(da["cov"] > options.noisy_cov or db["cov"] > options.noisy_cov)}
        pending.append((row, b, a))
        rows.append(row)
    ps = permutation_p_many([(b, a) for _, b, a in pending], options.n_resamples, options.seed)
    for (row, b, a), p in zip(pending, ps):
        row.update(compare(b, a, row["better"], options, p=p))
    return pd.DataFrame(rows)


def headline_metrics(df) -> dict[str, str]:
    """Per workload, its headline metric: the first one its tool emitted (parsers put the number
    a workload is about first; samples keep that order). A CI gate counts regressions on these:
    a tail percentile drifts between two runs of the same build where the headline does not."""
    firsts = df.drop_duplicates("workload")   # the first row of each workload, in file order
    return dict(zip(firsts["workload"], firsts["metric"]))
