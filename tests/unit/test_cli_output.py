"""`gradax prepare` prints a line per problem from the threads that prepare them: each line must stay whole."""

from __future__ import annotations

import io
import sys
import threading
import time

import pytest

from graders.cli import line_printer


class SlowStream(io.StringIO):
    """A stdout slow enough that two threads printing at once interleave unless something orders them."""

    def write(self, text: str) -> int:
        time.sleep(0.002)
        return super().write(text)


def test_lines_printed_from_several_threads_stay_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = SlowStream()
    monkeypatch.setattr(sys, "stdout", stream)
    say = line_printer()
    lines = [f"prepared  problem-{i} ({i}.0 s)" for i in range(16)]
    together = threading.Barrier(len(lines))

    def one(line: str) -> None:
        together.wait()
        say(line)

    threads = [threading.Thread(target=one, args=(line,)) for line in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(stream.getvalue().splitlines()) == sorted(lines)
