"""MariaDB under sysbench OLTP: mariadbd inside the environment, sysbench on the host.

The study's MySQL test: `sysbench oltp` read-only (`--oltp-read-only=on`) against InnoDB with a
3 GB buffer pool, O_DIRECT and innodb_flush_log_at_trx_commit = 0 (mysql/mysql-opt.cnf), 2 M
rows, 60 s per point, 10 to 290 client threads. `mode: read-write` is an extra of ours: writes
with commit-time log flushing measure the disk path as well, which the study's test did not. One repetition is a whole sweep: a fresh
data folder, a server of our own (never the distribution's service), the table loaded once,
a short unmeasured warm-up, then one `sysbench ... run` per thread count. Each point's output
follows a marker line `# threads=T` in the raw text, so that the parser (and a person) can
tell the points apart; `# prepare` and `# warm-up` blocks are kept for a look but not parsed.
"""

from __future__ import annotations

import re
import time
from typing import Literal

from pydantic import Field, PositiveInt

from ..environments.base import Environment, ExecResult
from ..errors import ToolError
from ..model import Measurement
from .base import Count, Pause, Seconds, Threads, _bounded, CellContext, Params, RawOutput, Workload, first_line

DATABASE = USER = PASSWORD = "sbtest"  # a throwaway server, for the run's own client only
# Run by mariadbd before it accepts connections. '%' because the client's address varies: a
# server in a container sees the host's client from the Docker bridge's address, not from
# 127.0.0.1, and a --client-host connects from its own address (or, through Docker's DNAT,
# from the bridge's). The server listens only on loopback or on the address facing that host.
INIT_SQL = (f"CREATE DATABASE {DATABASE};\n"
            f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';\n"
            f"GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{USER}'@'%';\n")
SOCKET = "mysqld.sock"   # in the repetition's own 0700 folder (see Mariadb.socket_folder)
SOCKET_MAX = 100         # bytes of a unix socket's path that mariadbd takes (107), with room
POINT = re.compile(r"^# threads=(\d+)\s*$")
# Seconds allowed for sysbench prepare per row: a TCG guest loads a few thousand rows/s.
SECONDS_PER_ROW = 1 / 2000


class MariadbParams(Params):
    # sysbench 1.0's scripts: oltp_read_only (the study's) or oltp_read_write
    mode: Literal["read-only", "read-write"] = "read-only"
    threads: list[Threads] = Field(default=[1, 4, 16], min_length=1)  # the sweep's points
    time: Seconds = 60              # seconds of `sysbench run` per point
    table_size: Count = 10000     # rows per table
    tables: _bounded(1, 1000) = 1
    buffer_pool: str = Field(default="128M", pattern=r"^[0-9]+[KMG]?$")  # innodb_buffer_pool_size
    flush_method: Literal["O_DIRECT", "fsync", "O_DSYNC", "O_DIRECT_NO_FSYNC"] = "O_DIRECT"
    warmup: Pause = 10  # unmeasured seconds at the largest thread count
    # innodb_flush_log_at_trx_commit: 1 (the server's default) flushes the log at every commit,
    # 0 (the study's) about once a second
    flush_log_at_trx_commit: Literal[0, 1, 2] = 1


class Mariadb(Workload):
    tool = "mariadb"
    resource = "applications"
    sweeps = ("threads",)
    programs = ("mariadbd",)
    client_programs = ("sysbench",)
    client_packages = ("sysbench",)
    packages = ("mariadb-server",)
    server_ports = 1
    Params = MariadbParams
    runtime_refusals = {"runsc": "mariadbd's InnoDB fails to start under gVisor (its io_uring/native AIO "
                                 "setup fails)"}

    def timeout(self, p: MariadbParams) -> float:
        # The whole repetition: initialise, start, load, warm up, then every point of the sweep.
        load = p.table_size * p.tables * SECONDS_PER_ROW
        return 180.0 + load + p.warmup + len(p.threads) * (p.time + 30.0)

    def version(self, env: Environment) -> str:
        r = env.exec(["mariadbd", "--version"], timeout=20)
        return first_line(r.stdout) if r.ok else ""

    # -- commands ------------------------------------------------------------------------------

    @staticmethod
    def install_argv(datadir: str) -> list[str]:
        # Root stays on unix-socket authentication (the default): nothing without a password
        # is reachable over TCP. --force skips the check that the hostname resolves, which
        # fails in the VM guest (its hostname is in no /etc/hosts); only root@host rows need it.
        return ["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
                "--skip-name-resolve", "--skip-test-db", "--force"]

    @staticmethod
    def socket_folder(env: Environment, base: str) -> str:
        """Where mariadbd's unix socket goes: the repetition's own folder, inside the run's
        scratch folder. A unix socket's path holds at most 107 bytes and mariadbd refuses to
        start with a longer one; under a deep scratch folder (pytest's) the socket goes to a
        private folder of its own, made by mktemp (mode 0700, a name nobody can guess in
        advance), never to a fixed path in /tmp that another local user could make first."""
        if len(f"{base}/{SOCKET}") <= SOCKET_MAX:
            return base
        made = env.exec(["mktemp", "-d", "/tmp/bench-mariadb-XXXXXXXXXX"], timeout=30)
        if not made.ok or not made.stdout.strip():
            raise ToolError(f"cannot make a private folder for mariadbd's socket: {made.stderr.strip()}")
        return made.stdout.strip()

    @classmethod
    def server_argv(cls, p: MariadbParams, datadir: str, init_file: str, address: str, port: int,
                    socket: str) -> list[str]:
        return ["mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}",
                f"--socket={socket}", f"--pid-file={datadir}/mysqld.pid",
                f"--bind-address={address}", f"--port={port}", "--skip-name-resolve",
                f"--innodb-buffer-pool-size={p.buffer_pool}", f"--innodb-flush-method={p.flush_method}",
                f"--innodb-flush-log-at-trx-commit={p.flush_log_at_trx_commit}",
                # the study's mysql-opt.cnf, where MariaDB 10.11 still has the setting (its
                # innodb_buffer_pool_instances, _support_xa, _additional_mem_pool_size are gone)
                "--thread-cache-size=256", "--query-cache-type=0", "--query-cache-size=0",
                "--innodb-log-buffer-size=8M", "--innodb-file-per-table=1",
                # every sysbench thread holds a connection; the default 151 would refuse 290
                f"--max-connections={max(p.threads) + 20}", f"--init-file={init_file}"]

    @staticmethod
    def client_argv(p: MariadbParams, address: str, port: int, command: str,
                    threads: int = 1, seconds: int = 0) -> list[str]:
        script = "oltp_read_only" if p.mode == "read-only" else "oltp_read_write"
        argv = ["sysbench", script, "--db-driver=mysql", f"--mysql-host={address}",
                f"--mysql-port={port}", f"--mysql-user={USER}", f"--mysql-password={PASSWORD}",
                f"--mysql-db={DATABASE}", f"--tables={p.tables}", f"--table-size={p.table_size}",
                f"--threads={threads}"]
        if command == "run":
            argv += [f"--time={seconds}", "--report-interval=0"]
        return [*argv, command]

    # -- one repetition ------------------------------------------------------------------------

    def run(self, ctx: CellContext) -> RawOutput:
        p = ctx.params
        deadline = time.monotonic() + ctx.timeout
        env = ctx.env
        base = f"{env.workdir}/mariadb-{ctx.label}"
        datadir = f"{base}/data"
        steps: list[ExecResult] = []
        extra: dict[str, str] = {}

        def left() -> float:
            return max(deadline - time.monotonic(), 1.0)

        port = env.ports[0]
        leftovers = ["rm", "-rf", base]
        env.exec(leftovers, timeout=120)  # a killed earlier repetition's
        env.exec(["mkdir", "-m", "0700", "-p", base], timeout=30)
        socket_folder = self.socket_folder(env, base)
        if socket_folder != base:
            leftovers.append(socket_folder)
        try:
            install = env.exec(self.install_argv(datadir), timeout=left())
            steps.append(install)
            extra["install"] = install.stdout + install.stderr
            if not install.ok:  # the runner records its status and keeps its words
                return RawOutput(f"# install\n{install.stdout}", install, extra)
            init_file = f"{base}/init.sql"
            env.put_file(init_file, INIT_SQL.encode())
            log_name = f"mariadbd-{ctx.label}"
            server = env.start_server(self.server_argv(ctx.params, datadir, init_file, env.listen_address, port,
                                                    f"{socket_folder}/{SOCKET}"),
                                      log_name=log_name)
            try:
                ready = self._wait_ready(env, port, log_name, timeout=min(left(), 180.0))
                if ready:
                    text, result = self._sweep(ctx, p, steps, left)
            finally:
                extra["server"] = server.stop()
            if not ready:
                raise ToolError(f"mariadbd did not get ready on port {port}: {_server_error(extra['server'])}")
        finally:
            env.exec(leftovers, timeout=120)
        return RawOutput(text, result, extra)

    @staticmethod
    def _wait_ready(env: Environment, port: int, log_name: str, timeout: float) -> bool:
        """Until mariadbd says it is ready (after running the init file) and listens; False at
        once when it aborts, rather than waiting out the timeout. Every environment keeps a
        server's output in {workdir}/{log_name}.log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                log = env.get_file(f"{env.workdir}/{log_name}.log").decode(errors="replace")
            except FileNotFoundError:
                log = ""
            if "[ERROR] Aborting" in log:
                return False
            if "ready for connections" in log:
                return env.wait_listening(port, timeout=max(deadline - time.monotonic(), 1.0))
            time.sleep(0.5)
        return False

    def _sweep(self, ctx: CellContext, p: MariadbParams, steps: list[ExecResult],
               left) -> tuple[str, ExecResult]:
        """prepare, warm-up, then each thread count; stops at the first command that fails."""
        address, port = ctx.env.endpoint(ctx.env.ports[0])
        plan = [("# prepare", self.client_argv(ctx.params, address, port, "prepare",
                                               threads=min(p.tables, max(p.threads))))]
        if p.warmup:
            plan.append((f"# warm-up threads={max(p.threads)} time={p.warmup}",
                         self.client_argv(ctx.params, address, port, "run", max(p.threads), p.warmup)))
        plan += [(f"# threads={t}", self.client_argv(ctx.params, address, port, "run", t, p.time))
                 for t in p.threads]
        out: list[str] = []
        err: list[str] = []
        last = steps[-1]
        for marker, argv in plan:
            last = ctx.client.exec(ctx.env.client_command(argv), timeout=left())
            steps.append(last)
            out.append(f"{marker}\n{last.stdout}")
            if last.stderr.strip():
                err.append(f"{marker}\n{last.stderr}")
            if not last.ok:
                break
        text = "".join(o if o.endswith("\n") else o + "\n" for o in out)
        result = ExecResult(last.argv, last.returncode, text, "".join(err),
                            sum(s.duration for s in steps), last.timed_out)
        return text, result

    # -- parsing -------------------------------------------------------------------------------

    @staticmethod
    def parse(text: str, params: MariadbParams) -> list[Measurement]:
        points = _points(text)
        if not points:
            raise ToolError("no '# threads=' point in the sysbench output")
        out: list[Measurement] = []
        for threads, block in points.items():
            def number(pattern: str) -> float | None:
                m = re.search(pattern, block, re.MULTILINE)
                return float(m.group(1)) if m else None

            tps = number(r"^\s*transactions:\s+\d+\s+\(([\d.]+) per sec\.\)")
            qps = number(r"^\s*queries:\s+\d+\s+\(([\d.]+) per sec\.\)")
            avg = number(r"^\s*avg:\s+([\d.]+)\s*$")
            p95 = number(r"^\s*95th percentile:\s+([\d.]+)\s*$")
            if tps is None or qps is None or avg is None or p95 is None:
                raise ToolError(f"no sysbench result for threads={threads}: {_failure(block)}")
            point = {"threads": threads}
            out += [Measurement("transactions_per_second", tps, "trans/s", params=point),
                    Measurement("queries_per_second", qps, "queries/s", params=point),
                    Measurement("latency_avg", avg, "ms", "lower", params=point),
                    Measurement("latency_p95", p95, "ms", "lower", params=point)]
        missing = [t for t in params.threads if t not in points]
        if missing:
            raise ToolError(f"no sysbench output for threads={missing[0]} (the sweep ended early)")
        return out


def _points(text: str) -> dict[int, str]:
    """The output of each `# threads=T` block, in sweep order; other `# ` blocks are skipped."""
    points: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("# "):
            m = POINT.match(line)
            current = points.setdefault(int(m.group(1)), []) if m else None
        elif current is not None:
            current.append(line)
    return {t: "\n".join(lines) for t, lines in points.items()}


def _failure(block: str) -> str:
    """sysbench's own words when a point failed (FATAL: ...), or that its output stops short."""
    for line in block.splitlines():
        if "FATAL" in line or "error" in line.lower():
            return line.strip()
    return "the output ends before the statistics (killed or timed out?)"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _server_error(log: str) -> str:
    """The first line of mariadbd's (or its installer's) output that says what went wrong."""
    errors = [line.strip() for line in log.splitlines()
              if "[ERROR]" in line or "FATAL" in line or line.lower().startswith(("error", "could not"))]
    return errors[0] if errors else _last_line(log)
