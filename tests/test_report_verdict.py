"""The first screen's parts from recorded cells: the matrix, the bottom line, the study's five
conclusions and what was not measured (bench.report.verdict and .conclusions), without a run."""

from __future__ import annotations

from bench import stats
from bench.report import conclusions, verdict
from bench.workloads import facts_of

# Recorded here (issue #26, and the example run in reports/): netperf TCP_RR transactions/s and
# sysbench-cpu events/s, native against docker-nat, 3 repetitions each.
RECORDED = {
    ("netperf-tcp-rr", "netperf", "transactions_per_second"): {
        "host": [27903, 16181, 16887], "docker-nat": [4944, 7377, 6741], "docker-host": [15726.9, 13851.3, 13809.8]},
    ("sysbench-cpu", "sysbench", "events_per_second"): {
        "host": [2380.8, 2334.0, 2300.8], "docker-nat": [2349.1, 2364.7, 2334.2], "docker-host": [2344.0, 2340.6, 2341.9]},
}


def cells(envs=("docker-nat", "docker-host")):
    out = []
    for (workload, tool, metric), values in RECORDED.items():
        by_env = {}
        for env in envs:
            r = stats.compare(values[env], values["host"], "higher", p=1.0)
            by_env[env] = {**r, "environment": env, "workload": workload, "metric": metric, "point": "",
                           "better": "higher", "n": 3, "native_n": 3, "resolve_n": 7}
        out.append({"label": workload, "workload": workload, "metric": metric, "point": "", "tool": tool,
                    "resource": facts_of(tool).resource_of(metric), "by_env": by_env})
    return out


def resource(tool, metric):
    return facts_of(tool).resource_of(metric)


def test_the_workload_modules_say_what_they_measure():
    assert resource("netperf", "transactions_per_second") == "network latency"
    assert resource("netperf", "throughput_mbps") == "network throughput"
    assert resource("hpcc", "stream_triad") == "memory" and resource("hpcc", "hpl_gflops") == "CPU"
    assert resource("fio", "read_iops") == "disk" and resource("redis", "get_requests_per_second") == "applications"
    # a tool bench no longer has (a recorded run's) is an application, compared with native
    assert resource("gone", "ops") == "applications" and facts_of("gone").against_native


def test_the_matrix_and_the_bottom_line_state_the_cost_with_its_size():
    grid = verdict.matrix(cells(), ["docker-nat", "docker-host"])
    assert grid["resources"] == ["CPU", "network latency"]
    nat = grid["rows"][0]["cells"]
    assert nat["network latency"]["verdict"] == "cost" and nat["network latency"]["size"] == "3.2× slower"
    assert nat["network latency"]["href"] == "#c-docker-nat--netperf-tcp-rr--transactions_per_second"
    assert nat["CPU"]["verdict"] == "equivalent"
    line = verdict.bottom_line(grid, {"docker-nat": "through docker-proxy on loopback"})
    assert line.startswith("docker-nat (through docker-proxy on loopback) costs on network latency (worst 3.2× slower)"), line


def test_the_nat_conclusion_names_the_path_it_was_measured_through():
    found = conclusions.conclusions(cells(), ["host", "docker-nat", "docker-host"],
                                    {"host": "host", "docker-nat": "docker", "docker-host": "docker"}, set(),
                                    {"docker-nat": "nat", "docker-host": "host"}, {"docker-nat"}, "host")
    by = {c["n"]: c for c in found}
    assert [c["n"] for c in found] == [1, 2, 3, 4, 5]
    assert by[4]["status"] == "holds" and "docker-proxy on loopback" in by[4]["why"]
    assert by[4]["links"][0]["href"] == "#c-docker-nat--netperf-tcp-rr--transactions_per_second"
    assert all(by[n]["status"] == "not tested" and "no virtual machine was measured under KVM" in by[n]["why"]
               for n in (1, 3))
    assert by[5]["status"] == "holds"   # sysbench within ±5 % in both containers
    # a kernel-DNAT environment, when it ran, decides instead of the proxied one
    found = conclusions.conclusions(cells(), ["host", "docker-nat", "docker-host"],
                                    {"host": "host", "docker-nat": "docker", "docker-host": "docker"}, set(),
                                    {"docker-nat": "nat", "docker-host": "nat"}, {"docker-nat"}, "host")
    assert "the study's path" in found[3]["why"] and found[3]["why"].startswith("docker-host")


def test_not_measured_says_only_what_is_true_of_this_run():
    skipped = {"hyper-v": "not supported by bench: needs a Windows host running Hyper-V; libvirt/KVM (kvm, kvm-tuned) "
                          "is the hardware-assisted hypervisor measured here",
               "kvm": "libvirt 9.0.0; KVM NOT usable (/dev/kvm is PVM (module kvm_pvm: ...), which boots only a PVM "
                      "guest kernel (CONFIG_PVM_GUEST); the image's Debian kernel is not one (Debian ships none). "
                      "Give one to the variant as `guest_kernel` (with `guest_initrd`, and `firmware`, e.g. "
                      "/usr/share/qemu/qboot.rom)); pass --allow-tcg to run it emulated under TCG"}
    out = verdict.not_measured(skipped, ["host", "docker-nat"], {"host": "host", "docker-nat": "docker"}, set())
    reasons = {tuple(g["names"]): g["why"] for g in out if not g["headline"]}
    assert reasons[("hyper-v",)] == "not supported by bench: needs a Windows host running Hyper-V"
    assert reasons[("kvm",)] == skipped["kvm"]   # whole, never cut mid-sentence
    # where KVM did run, the clause is true and stays
    out = verdict.not_measured(skipped, ["host", "kvm"], {"host": "host", "kvm": "libvirt"}, set())
    assert "measured here" in [g for g in out if g["names"] == ["hyper-v"]][0]["why"]


def test_hpl_beside_a_generic_blas_kernel_says_so():
    from bench.report import _setup_notes

    manifest = {"execution_context": {"native": {"blas_core": "Prescott"}},
                "host": {"cpu_model_name": "Intel(R) Xeon(R) Processor"}}
    [note] = _setup_notes([manifest], facts_of("hpcc"), ["host"])
    assert "generic Prescott kernel" in note and "fraction of the CPU's peak" in note
    # the example run's own (SkylakeX): nothing to say; a tool that does not use BLAS: nothing
    assert _setup_notes([{"execution_context": {"native": {"blas_core": "SkylakeX"}}}], facts_of("hpcc"), ["host"]) == []
    assert _setup_notes([manifest], facts_of("sysbench"), ["host"]) == []
