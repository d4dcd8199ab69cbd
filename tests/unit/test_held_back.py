"""A request that holds its hidden tests back: the child gets their inputs only after reporting the tests before
them, and what it printed from then on is counted, never kept (graders/supervision.py ChildPipes, the harness's
serve, graders/wire.py read_one). Real pipes and the real harness loop, in threads instead of a sandbox."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graders import wire
from graders.cases import build_cases
from graders.child import harness
from graders.problem import ProblemBank
from graders.request import build_request
from graders.supervision import ChildOutcome, ChildPipes, LogSink, SandboxLimits


def request(code: str) -> bytes:
    header = {"function": "f", "programs": [{"code": code}], "tests": [{"name": "public", "args": [{"s": 1.0}]}],
              "output_budget": 1 << 20, "sealed": 2}
    held = {"tests": [{"name": "hidden-a", "args": [{"s": 2.0}]}, {"name": "hidden-b", "args": [{"s": 3.0}]}]}
    return wire.encode(header) + wire.encode(held)


def child_pipes(req: bytes) -> tuple[ChildPipes, dict[str, int]]:
    """The parent's ChildPipes on four real pipes, and the child's ends (stdin to read; stdout, stderr, result)."""
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    pipes = ChildPipes(stdin=os.fdopen(stdin_w, "wb", buffering=0), stdout=os.fdopen(out_r, "rb", buffering=0),
                       stderr=os.fdopen(err_r, "rb", buffering=0), result_fd=res_r, request=req,
                       limits=SandboxLimits())
    return pipes, {"stdin": stdin_r, "stdout": out_w, "stderr": err_w, "result": res_w}


def test_read_one_reads_exactly_one_message_and_message_length_finds_its_end() -> None:
    first, second = wire.encode({"a": 1}, [np.arange(3)]), wire.encode({"b": 2})
    assert wire.message_length(first + second) == len(first)
    r, w = os.pipe()
    os.write(w, first + second)
    os.close(w)
    one, two = wire.read_one(r), wire.read_one(r)
    assert one.header == {"a": 1} and one.arrays[0].tolist() == [0, 1, 2] and two.header == {"b": 2}
    os.close(r)


@pytest.mark.parametrize("slow_reader", [False, True], ids=["reader", "reader-descheduled"])
def test_hidden_inputs_arrive_after_the_public_report_and_their_prints_are_only_counted(
        slow_reader: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # reader-descheduled: a log reader that loses the CPU between taking the public test's print off the pipe and
    # counting it (a busy machine). The cut must wait for it, not count that print as the hidden tests'.
    if slow_reader:
        add = LogSink.add

        def slow_add(self: LogSink, chunk: bytes) -> None:
            time.sleep(0.05)
            add(self, chunk)

        monkeypatch.setattr(LogSink, "add", slow_add)
    # The program prints each input; on the public test it also looks whether anything more came on stdin yet. It
    # finds its descriptors (and where to say what it saw) in `builtins._gx`, set by the child thread below.
    code = ("import builtins, os, select\n"
            "def f(x):\n"
            "    gx = builtins._gx\n"
            "    if x == 1.0:\n"
            "        gx['stdin_ready'] = bool(select.select([gx['stdin']], [], [], 0.2)[0])\n"
            "    os.write(gx['stdout'], f'input {x}\\n'.encode())\n"
            "    return x\n")
    pipes, ends = child_pipes(request(code))
    seen: dict[str, Any] = dict(ends)

    def child() -> None:
        out = os.fdopen(ends["result"], "wb", buffering=0)
        wire.write_message(out, {"event": "ready", "pid": os.getpid()})
        first = wire.read_one(ends["stdin"])
        import builtins
        builtins._gx = seen  # type: ignore[attr-defined]
        try:
            harness.serve(first, out, held_back=lambda: wire.read_one(ends["stdin"]))
        finally:
            del builtins._gx  # type: ignore[attr-defined]
            out.close()
            os.close(ends["stdout"])
            os.close(ends["stderr"])

    thread = threading.Thread(target=child)
    thread.start()
    kinds = []
    deadline = time.monotonic() + 60
    while "done" not in kinds:
        assert time.monotonic() < deadline, kinds
        try:
            kind, payload = pipes.events.get(timeout=1)
        except queue.Empty:
            continue
        assert kind == "message", (kind, payload)
        kinds.append(payload.kind)
    thread.join(10)
    outcome = ChildOutcome()
    assert pipes.finish(outcome)
    assert seen["stdin_ready"] is False  # nothing of the hidden tests was there while the public one ran
    assert kinds == ["ready", "load", "start", "test", "start", "test", "start", "test", "done"]
    assert outcome.held_back_sent
    assert outcome.stdout == b"input 1.0\n" and outcome.stdout_total == len(b"input 1.0\n")
    assert outcome.hidden_log_bytes == len(b"input 2.0\ninput 3.0\n")
    # What the hidden tests returned counts to the MiB only (a few bytes here: none).
    assert 0 < outcome.result_bytes == pipes.result_bytes_at_seal < pipes.channel.decoder.total
    os.close(ends["stdin"])


def test_a_child_that_never_reports_the_public_tests_gets_no_hidden_inputs() -> None:
    pipes, ends = child_pipes(request("def f(x):\n    return x\n"))
    stdin_r = ends["stdin"]
    first = wire.read_one(stdin_r)
    assert first.header["sealed"] == 2 and len(first.header["tests"]) == 1
    for fd in (ends["stdout"], ends["stderr"], ends["result"]):  # the child dies before its first test
        os.close(fd)
    outcome = ChildOutcome()
    pipes.finish(outcome)
    assert os.read(stdin_r, 1 << 16) == b""  # stdin closed, and the hidden tests never written
    assert not outcome.held_back_sent and outcome.hidden_log_bytes == 0
    os.close(stdin_r)


def test_a_submissions_request_holds_back_its_hidden_tests_and_never_all_of_them() -> None:
    loaded = ProblemBank(Path(__file__).resolve().parents[2] / "problems").get("nnx-module-basics")
    assert loaded is not None
    cases = build_cases(loaded.problem)
    n_public = len(loaded.problem.tests.public)
    assert 0 < n_public < len(cases)
    req = build_request(loaded, cases, ["x = 1\n"], output_budget=1 << 20, hold_back_from=n_public)
    first = wire.decode_all(req[:wire.message_length(req)])[0]
    rest = wire.decode_all(req[wire.message_length(req):])[0]
    assert len(first.header["tests"]) == n_public and first.header["sealed"] == len(cases) - n_public
    assert [t["name"] for t in rest.header["tests"]] == [c.name for c in cases[n_public:]]
    assert all(a["a"] < len(rest.arrays) for t in rest.header["tests"] for a in t["args"] if "a" in a)
    # Nothing to hold back (a Run): one message. Holding back every test would leave no report to cut at: refused.
    whole = build_request(loaded, cases[:n_public], ["x = 1\n"], output_budget=1 << 20, hold_back_from=n_public)
    assert wire.message_length(whole) == len(whole) and "sealed" not in wire.peek_header(whole)
    with pytest.raises(ValueError):
        build_request(loaded, cases, ["x = 1\n"], output_budget=1 << 20, hold_back_from=0)
