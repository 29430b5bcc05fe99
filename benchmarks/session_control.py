"""The scheduling-group control of PERFORMANCE.md (transparency): netperf TCP_RR and fio 4 KiB
randread run directly, either in the caller's session or each process in a new session (what
bench's host environment did with setsid before it used a process group), interleaved:

    .venv/bin/python -m benchmarks.session_control 8      # rounds

With autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) each session is a CPU
scheduling group; on a loaded machine that changes what a tool measures.
"""
import os, subprocess, sys, time, socket, statistics, tempfile, shutil
from bench.environments.host import free_loopback_ports
from bench.workloads.netperf import Netperf
from bench.workloads.fio import Fio
RANDREAD = Fio.Params(rw="randread", bs="4k", iodepth=16, size="256M", runtime=3)
def netperf(own_session):
    control, data = free_loopback_ports(2)
    srv = subprocess.Popen(["netserver","-D","-4","-L","127.0.0.1","-p",str(control)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=own_session)
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", control)) == 0: break
        time.sleep(0.02)
    argv = Netperf.client_argv(Netperf.Params(test="TCP_RR", length=3, request_size=1, response_size=1), "127.0.0.1",
                               control, data)
    r = subprocess.run(argv, capture_output=True, text=True, start_new_session=own_session, timeout=60)
    srv.terminate(); srv.wait()
    return Netperf.parse(r.stdout, Netperf.Params(test="TCP_RR"))[0].value
def fio(own_session, folder):
    argv = Fio.argv(RANDREAD, folder, "x")
    r = subprocess.run(argv, capture_output=True, text=True, start_new_session=own_session, timeout=120)
    return Fio.parse(r.stdout, RANDREAD)[0].value
res = {"netperf": {False: [], True: []}, "fio": {False: [], True: []}}
folder = tempfile.mkdtemp(dir="/var/tmp", prefix="bench-autogroup-")
fio(False, folder)
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 8):
    for own in ((False, True) if i % 2 == 0 else (True, False)):
        res["netperf"][own].append(netperf(own))
        res["fio"][own].append(fio(own, folder))
    print(i, {k: {s: round(v[s][-1]) for s in v} for k, v in res.items()}, os.getloadavg()[0], flush=True)
shutil.rmtree(folder)
for k, v in res.items():
    print(k, "same session median", statistics.median(v[False]), "own sessions median", statistics.median(v[True]), "ratio own/same", statistics.median(v[True]) / statistics.median(v[False]))
