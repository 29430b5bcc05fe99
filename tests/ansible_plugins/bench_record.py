"""An Ansible callback for the tests: every task result and the play recap, as JSON lines in
$BENCH_ANSIBLE_RECORD (ansible-core 2.19 moved its own json callback out to ansible.posix,
which is not installed here: only ansible.builtin is)."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "bench_record"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, row: dict) -> None:
        with open(os.environ["BENCH_ANSIBLE_RECORD"], "a") as f:
            f.write(json.dumps(row, default=str) + "\n")

    def _result(self, result, status: str) -> None:
        # ansible-core 2.19 names them result/task/host; older versions _result/_task/_host.
        body = getattr(result, "result", None) or getattr(result, "_result", {})
        task = getattr(result, "task", None) or result._task
        host = getattr(result, "host", None) or result._host
        self._write({"task": task.get_name(), "host": host.get_name(), "status": status,
                     "result": self._clean(body)})

    def _clean(self, body) -> dict:
        return json.loads(json.dumps(dict(body), default=str))

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed):
            self._write({"stats": host, **stats.summarize(host)})
