"""bench.stats against numbers checked by hand, by brute force, or by scipy itself."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from bench import stats

T_975_DF2 = 4.302652729911275   # Student's t, 97.5th percentile, 2 degrees of freedom (tables: 4.303)
T_975_DF3 = 3.182446305284263   # 3 degrees of freedom (tables: 3.182)


def test_describe_known_values():
    d = stats.describe([1, 2, 3, 4])
    sd = math.sqrt(5 / 3)                      # sum of squares 5, n - 1 = 3
    assert d["n"] == 4 and d["mean"] == 2.5 and d["median"] == 2.5
    assert d["sd"] == pytest.approx(sd) and d["cov"] == pytest.approx(sd / 2.5)
    half = T_975_DF3 * sd / 2
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((2.5 - half, 2.5 + half))
    # ... and the same as scipy's own interval
    assert (d["ci_low"], d["ci_high"]) == pytest.approx(st.t.interval(0.95, 3, loc=2.5, scale=st.sem([1, 2, 3, 4])))


def test_describe_degenerate_samples():
    one = stats.describe([7.0])
    assert one["n"] == 1 and one["mean"] == 7 and math.isnan(one["sd"]) and math.isnan(one["ci_low"])
    same = stats.describe([3.0, 3.0, 3.0])
    assert same["sd"] == 0 and same["ci_low"] == same["ci_high"] == 3 and same["cov"] == 0


def test_fieller_with_an_exact_baseline_is_the_t_interval_scaled():
    # b has no variance: the ratio's interval is a's t interval divided by mean(b).
    ratio, low, high = stats.fieller_ratio([9, 10, 11], [10, 10, 10])
    half = T_975_DF2 * 1 / math.sqrt(3)
    assert ratio == 1.0
    assert (low, high) == pytest.approx(((10 - half) / 10, (10 + half) / 10))   # 0.7516, 1.2484


def test_fieller_ends_solve_its_defining_equation():
    a, b = np.array([2.0, 4, 6]), np.array([9.0, 10, 11])
    ratio, low, high = stats.fieller_ratio(a, b)
    va, vb = 4 / 3, 1 / 3                              # squared standard errors, by hand
    spread = va + 0.4**2 * vb
    df = spread**2 / (va**2 / 2 + 0.4**4 * vb**2 / 2)   # Welch-Satterthwaite at r = 0.4: 2.1598
    assert df == pytest.approx(2.1598, abs=1e-4)
    t = st.t.ppf(0.975, df)
    assert ratio == pytest.approx(0.4) and low < 0.4 < high
    for r in (low, high):
        assert (4 - r * 10) ** 2 == pytest.approx(t**2 * (va + r**2 * vb), rel=1e-3)


def test_fieller_is_unbounded_when_the_baseline_mean_is_not_away_from_zero():
    assert stats.fieller_ratio([1, 2, 3], [-1, 0.1, 1.5])[1:] == (-math.inf, math.inf)


def test_fieller_covers_the_true_ratio_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(1000):
        a, b = rng.normal(80, 8, 5), rng.normal(100, 5, 5)   # true ratio 0.8
        _, low, high = stats.fieller_ratio(a, b)
        hits += low <= 0.8 <= high
    assert 0.93 <= hits / 1000 <= 0.97


def brute_force_p(a, b):
    """The exact two-sided permutation p by enumerating every split (scipy's definition)."""
    pooled = np.array([*a, *b])
    observed = np.mean(a) - np.mean(b)
    diffs = []
    for idx in itertools.combinations(range(len(pooled)), len(a)):
        mask = np.zeros(len(pooled), bool)
        mask[list(idx)] = True
        diffs.append(pooled[mask].mean() - pooled[~mask].mean())
    diffs = np.array(diffs)
    eps = 1e-14 * max(1, abs(observed))
    greater, less = np.mean(diffs >= observed - eps), np.mean(diffs <= observed + eps)
    return min(1.0, 2 * min(greater, less))


@pytest.mark.parametrize("a, b", [([1, 3, 5], [2, 4, 9]), ([10, 11, 12, 13], [13, 14, 15, 16]),
                                  ([1.5, 2.5, 2.0], [1.0, 1.2, 9.0, 3.3])])
def test_permutation_p_is_the_exact_test(a, b):
    assert stats.permutation_p(a, b) == pytest.approx(brute_force_p(a, b))


def test_minimum_attainable_p():
    assert stats.min_attainable_p(3, 3) == pytest.approx(0.1)       # 2 / C(6, 3) = 2 / 20
    assert stats.min_attainable_p(4, 4) == pytest.approx(2 / 70)
    assert stats.min_attainable_p(5, 5) == pytest.approx(2 / 252)
    # fully separated samples reach exactly that minimum
    assert stats.permutation_p([1, 2, 3], [10, 11, 12]) == pytest.approx(0.1)
    assert stats.permutation_p([1, 2, 3, 4, 5], [10, 11, 12, 13, 14]) == pytest.approx(2 / 252)
    assert stats.permutation_p([1, 2, 3], [1, 2, 3]) == 1.0


def test_batched_permutation_tests_equal_single_ones():
    rng = np.random.default_rng(3)
    pairs = [(rng.normal(0, 1, 3), rng.normal(0.5, 1, 3)) for _ in range(5)] + \
            [(rng.normal(0, 1, 4), rng.normal(1, 1, 5)) for _ in range(3)]
    many = stats.permutation_p_many(pairs)
    assert many == pytest.approx([stats.permutation_p(a, b) for a, b in pairs])


def _scipy_p(a, b, n_resamples=9999, seed=20140721):
    res = st.permutation_test((a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                              permutation_type="independent", vectorized=True, n_resamples=n_resamples,
                              alternative="two-sided", axis=1, rng=np.random.default_rng(seed))
    return np.atleast_1d(res.pvalue)


@pytest.mark.parametrize("kind", ["normal", "shifted", "constant", "integers", "repeated"])
@pytest.mark.parametrize("n1,n2", [(8, 9), (10, 10), (30, 30)])
def test_sampled_permutation_p_is_scipys_to_the_bit(kind, n1, n2):
    """The fast sampled test (a matrix product, near-threshold values recomputed) gives exactly
    scipy's p-values, also where rounding decides: ties, constant samples, repeated values."""
    rng = np.random.default_rng(n1 * 100 + n2)
    pairs = 40
    a, b = rng.normal(100, 4, (pairs, n1)), rng.normal(100, 4, (pairs, n2))
    if kind == "shifted":
        b -= 3
    elif kind == "constant":
        a, b = np.full((pairs, n1), 3.3), np.full((pairs, n2), 3.3)
        b[::2] = 7.1
    elif kind == "integers":
        a, b = rng.integers(0, 3, (pairs, n1)).astype(float), rng.integers(0, 3, (pairs, n2)).astype(float)
    elif kind == "repeated":   # b holds a's values: the observed split recurs among the permutations
        b = np.concatenate([a, a], axis=1)[:, :n2] + 1e6
        a = a + 1e6
    assert math.comb(n1 + n2, n1) > 9999   # the sampled path, not the exact one
    fast = stats._permutation_chunk((a, b, 9999, 20140721))
    assert np.array_equal(fast, _scipy_p(a, b))


def test_compare_direction_overhead_and_basis():
    slower = stats.compare([90, 90.5, 89.5], [100, 100.5, 99.5], "higher")
    assert slower["ratio"] == pytest.approx(0.9) and slower["overhead_pct"] == pytest.approx(10)
    assert slower["overhead_low"] < 10 < slower["overhead_high"]
    # n = 3: the permutation test cannot reach 0.05, so the interval decides
    assert slower["basis"] == "interval" and slower["significant"] and slower["p"] == pytest.approx(0.1)
    # the same numbers as a latency (lower is better) are an improvement: negative overhead
    faster = stats.compare([90, 90.5, 89.5], [100, 100.5, 99.5], "lower")
    assert faster["overhead_pct"] == pytest.approx(-10) and faster["significant"]
    # n = 5: the permutation test decides
    five = stats.compare([90, 91, 89, 90.5, 89.5], [100, 101, 99, 100.5, 99.5], "higher")
    assert five["basis"] == "permutation" and five["p"] == pytest.approx(2 / 252) and five["significant"]
    same = stats.compare([99, 101, 100, 98, 102], [100, 102, 98, 101, 99], "higher")
    assert not same["significant"] and same["p"] > 0.5


def frame(rows):
    base = {"run_id": "r1", "tool": "t", "unit": "u", "better": "higher", "timestamp": 0.0}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_summarize_cells_baseline_sweeps_and_flags():
    rows = []
    for env, kind, scale in (("host", "host", 1.0), ("docker-nat", "docker", 0.8)):
        for rep, noise in enumerate((0.99, 1.0, 1.01), start=1):
            for clients in (1, 10):
                rows.append({"environment": env, "env_kind": kind, "workload": "redis", "metric": "get_rps",
                             "value": 1000 * clients * scale * noise, "repetition": rep, "param_clients": clients,
                             "param_tests": ["get"]})
            rows.append({"environment": env, "env_kind": kind, "workload": "cpu", "metric": "eps",
                         "value": [50, 100, 150][rep - 1] if env == "host" else 100, "repetition": rep})
    df = frame(rows)
    assert stats.sweep_params(df) == {"redis": ["clients"], "cpu": []}
    assert stats.baseline_environment(df) == "host"
    s = stats.summarize(df).set_index(["environment", "workload", "point"])
    nat = s.loc[("docker-nat", "redis", "clients=10")]
    assert nat["n"] == 3 and nat["mean"] == pytest.approx(8000) and nat["ratio"] == pytest.approx(0.8)
    assert nat["overhead_pct"] == pytest.approx(20) and nat["significant"] and not nat["noisy"]
    assert s.loc[("host", "redis", "clients=1")]["mean"] == pytest.approx(1000)
    assert math.isnan(s.loc[("host", "redis", "clients=1")]["ratio"])
    assert s.loc[("host", "cpu", "")]["noisy"]          # CoV 50 %
    assert s.loc[("docker-nat", "cpu", "")]["noisy"]    # against a noisy native
    assert not s.loc[("docker-nat", "cpu", "")]["significant"]


def test_baseline_is_the_environment_of_kind_host_when_none_is_named_host():
    df = frame([{"environment": "bare", "env_kind": "host", "workload": "w", "metric": "m", "value": 1, "repetition": 1},
                {"environment": "kvm", "env_kind": "libvirt", "workload": "w", "metric": "m", "value": 1, "repetition": 1}])
    assert stats.baseline_environment(df) == "bare"
    few = stats.summarize(df).set_index("environment").loc["kvm"]
    assert few["few"] and math.isnan(few["ratio_low"])


def test_compare_runs_finds_a_planted_regression_only():
    rng = np.random.default_rng(5)
    rows = [{"environment": "host", "env_kind": "host", "workload": w, "metric": "m",
             "value": 100 + rng.normal(0, 1), "repetition": rep} for w in ("a", "b") for rep in (1, 2, 3)]
    before = frame(rows)
    after = before.assign(run_id="r2", value=before["value"] + rng.normal(0, 1, len(before)))
    assert not stats.compare_runs(before, after)["significant"].any()
    after.loc[after["workload"] == "b", "value"] *= 0.7
    changed = stats.compare_runs(before, after).set_index("workload")
    assert changed.loc["b", "significant"] and changed.loc["b", "overhead_pct"] == pytest.approx(30, abs=3)
    assert not changed.loc["a", "significant"]


def test_a_side_with_one_value_has_no_permutation_p():
    # scipy refuses a sample of one; a lone repetition (the others failed) gives no test, not a crash
    assert math.isnan(stats.permutation_p([1.0], [2.0, 3.0]))
    assert stats.permutation_p([1.0, 1.1], [2.0, 2.1]) == pytest.approx(1 / 3)


def test_recorded_sweep_keys_are_used_instead_of_inferred(tmp_path):
    """A run records which parameters its repetitions sweep (run.json's workloads.*.sweep_keys):
    a sweep of one point is still a sweep. A run without them is inferred as before, and a known
    sweep name that takes several values across runs is one too (test_notebook's two runs)."""
    import json as json_

    from bench.store import load

    folder = tmp_path / "r"
    folder.mkdir()
    rows = []
    for rep in (1, 2):
        for clients, value in ((1, 10.0 + rep), (10, 50.0 + rep)):
            rows.append({"run_id": "r", "environment": "host", "env_kind": "host", "workload": "redis",
                         "tool": "redis", "metric": "get_requests_per_second", "unit": "req/s", "value": value,
                         "better": "higher", "repetition": rep, "timestamp": 1.0, "parity_ok": True,
                         "params": {"clients": clients, "requests": 100, "threads": 4}, "variant": {}})
    (folder / "samples.jsonl").write_text("".join(json_.dumps(r) + "\n" for r in rows))
    manifest = {"format_version": 3, "run_id": "r", "status": "complete",
                "workloads": {"redis": {"params": {}, "sweep_keys": ["clients"]}}}
    (folder / "run.json").write_text(json_.dumps(manifest))
    df = load(folder)
    assert df.attrs["sweep_keys"] == {"redis": ["clients"]}
    assert stats.sweep_params(df) == {"redis": ["clients"]}
    assert stats.sweep_params(df[df.param_clients == 1]) == {"redis": ["clients"]}   # one point: still a sweep
    del manifest["workloads"]["redis"]["sweep_keys"]
    (folder / "run.json").write_text(json_.dumps(manifest))
    assert stats.sweep_params(load(folder)) == {"redis": ["clients"]}   # inferred: several within a repetition


def test_every_sweep_a_parser_reports_is_declared_by_its_tool():
    """A Measurement's params name points of the tool's declared sweeps, nothing else."""
    from pathlib import Path

    from bench.workloads import TOOLS

    data = Path(__file__).parent / "data"
    seen = {}
    for tool, folder, params in (("redis", "redis", TOOLS["redis"].Params(clients=[1, 10, 50])),
                                 ("mariadb", "mariadb", TOOLS["mariadb"].Params(threads=[1, 4, 8])),
                                 ("instances", "instances", TOOLS["instances"].Params(measure="density"))):
        for path in sorted((data / folder).glob("*.*")):
            try:
                measured = TOOLS[tool].parse(path.read_text(), params)
            except Exception:  # noqa: BLE001 -- the recorded failures of the tool
                continue
            seen.setdefault(tool, set()).update(k for m in measured for k in m.params)
    assert all(seen[t] == set(TOOLS[t].sweeps) for t in ("redis", "mariadb", "instances"))
    assert all(not TOOLS[t].sweeps for t in TOOLS if t not in ("redis", "mariadb", "instances"))


# -- the verdict: cost, gain, equivalent or unresolved ---------------------------------------

# Cells recorded on this project's machines (issue #26): netperf TCP_RR transactions/s, host and
# docker-nat (docker-proxy on loopback), and Redis GET at 10 clients (the run's mean ± SD, as three
# repetitions mean - SD, mean, mean + SD); and the example run's Redis GET at 10 clients
# (reports/20261203-113710-quick-18c4).
TCP_RR_HOST, TCP_RR_NAT = [27903, 16181, 16887], [4944, 7377, 6741]
REDIS_HOST, REDIS_NAT = [83750, 85750, 87750], [23590, 29090, 34590]
EXAMPLE_REDIS_HOST, EXAMPLE_REDIS_NAT = [134228.2, 135135.1, 130718.9], [51813.5, 49504.9, 50505.1]


@pytest.mark.parametrize("nat, host, factor", [(TCP_RR_NAT, TCP_RR_HOST, "3.2×"), (REDIS_NAT, REDIS_HOST, "2.9×"),
                                               (EXAMPLE_REDIS_NAT, EXAMPLE_REDIS_HOST, "2.6×")])
def test_the_large_losses_recorded_here_are_costs_with_their_sizes(nat, host, factor):
    from bench.report.numbers import change

    r = stats.compare(nat, host, "higher")
    assert r["verdict"] == "cost", r
    assert 0 < r["ratio_low"] < r["ratio"] < r["ratio_high"] < 1 / 1.05
    assert change({**r, "better": "higher"}, interval=False) == f"{factor} slower"
    # the same cell as a latency (lower is better, the inverse ratio) is the same cost
    latency = stats.compare([1e6 / v for v in nat], [1e6 / v for v in host], "lower")
    assert latency["verdict"] == "cost"


def test_the_log_interval_is_the_ratio_times_a_symmetric_factor():
    ratio, low, high = stats.log_ratio(TCP_RR_NAT, TCP_RR_HOST)
    assert ratio == pytest.approx(np.mean(TCP_RR_NAT) / np.mean(TCP_RR_HOST))
    assert ratio / low == pytest.approx(high / ratio)
    # the delta method's relative SE with Welch's degrees of freedom, worked by hand
    a, b = np.array(TCP_RR_NAT, float), np.array(TCP_RR_HOST, float)
    va, vb = a.var(ddof=1) / 3 / a.mean() ** 2, b.var(ddof=1) / 3 / b.mean() ** 2
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)
    assert math.log(high / ratio) == pytest.approx(st.t.ppf(0.975, df) * math.sqrt(va + vb), rel=1e-3)


def test_the_log_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    rng = np.random.default_rng(26)
    hits = 0
    for _ in range(2000):
        a, b = rng.normal(50, 5, 5), rng.normal(100, 10, 5)
        _, low, high = stats.log_ratio(a, b)
        hits += low <= 0.5 <= high
    assert 0.93 <= hits / 2000 <= 0.975


@pytest.mark.parametrize("a, b, better, expected", [
    ([100, 101, 99], [100, 100.5, 99.5], "higher", "equivalent"),       # inside ±5 %
    ([80, 81, 79], [100, 100.5, 99.5], "higher", "cost"),               # wholly below ×1/1.05
    ([80, 81, 79], [100, 100.5, 99.5], "lower", "gain"),                # the same as a latency
    ([125, 120, 130], [100, 100.5, 99.5], "higher", "gain"),
    ([60, 100, 140], [100, 70, 130], "higher", "unresolved"),           # straddles both edges
])
def test_the_verdict_sets_the_interval_against_the_band(a, b, better, expected):
    assert stats.compare(a, b, better)["verdict"] == expected


def test_a_cell_whose_repetitions_are_completely_apart_is_never_unresolved():
    """Every environment value beyond every native one (3 or more each): a cost or a gain in
    that direction, whatever the spread, the scale, the sizes or the metric's direction."""
    rng = np.random.default_rng(2026)
    seen = {"interval": 0, "order": 0}
    for _ in range(1500):
        n1, n2 = rng.integers(3, 11, 2)
        scale = 10 ** rng.uniform(-3, 6)
        native = scale * rng.lognormal(0, rng.uniform(0.001, 0.6), n2)
        gap = rng.uniform(1e-9, 3) * (native.max() - native.min() + scale * 1e-6)
        up = rng.random() < 0.5
        spread = rng.uniform(0, 2) * (native.max() - native.min() + scale * 1e-6)
        if up:
            env = native.max() + gap + rng.uniform(0, 1, n1) * spread
        else:
            env = native.min() - gap - rng.uniform(0, 1, n1) * spread
            if env.min() <= 0:
                env = native.min() * rng.uniform(0.01, 0.99, n1)
        assert stats.apart(env, native) == (1 if up else -1)
        for better in ("higher", "lower"):
            r = stats.compare(env, native, better, p=1.0)   # the verdict does not read the permutation p
            assert r["verdict"] != "unresolved", (env, native, better, r)
            if r["verdict"] != "equivalent":
                assert r["verdict"] == ("gain" if up == (better == "higher") else "cost"), (env, native, better, r)
            band = 1 / 1.05 <= r["ratio_low"] and r["ratio_high"] <= 1.05 or r["ratio_high"] < 1 / 1.05 or r["ratio_low"] > 1.05
            seen["interval" if band else "order"] += 1
    assert seen["order"] > 100 and seen["interval"] > 100   # both rules were exercised


def test_two_repetitions_apart_are_not_enough_to_decide_alone():
    r = stats.compare([110, 140], [100, 101], "higher")   # 1 in 6 by chance alone
    assert r["apart"] == 1 and r["verdict"] == "unresolved"


def test_summarize_gives_every_compared_cell_its_verdict():
    rows = [{"environment": env, "env_kind": kind, "workload": "netperf-tcp-rr", "metric": "tps", "value": v,
             "repetition": i} for env, kind, values in (("host", "host", TCP_RR_HOST), ("docker-nat", "docker", TCP_RR_NAT))
            for i, v in enumerate(values, start=1)]
    s = stats.summarize(frame(rows)).set_index("environment")
    assert s.loc["docker-nat", "verdict"] == "cost" and s.loc["docker-nat", "resolved"]
    assert not isinstance(s.loc["host", "verdict"], str)   # native is not compared with itself
