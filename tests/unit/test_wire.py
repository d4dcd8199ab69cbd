"""The result protocol rejects anything that is not a well-formed message of plain numeric arrays."""

from __future__ import annotations

import io
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from graders import wire


class Trap:
    """Unpickling this creates a file: proof that something ran pickle.loads on child bytes."""

    path = ""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (Trap.path,))  # type: ignore[return-value]


@pytest.fixture
def trap(tmp_path: Path) -> Path:
    Trap.path = str(tmp_path / "unpickled")
    return tmp_path / "unpickled"


def _npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _message(header: bytes, payloads: list[bytes]) -> bytes:
    parts = [wire.MAGIC, struct.pack("<I", len(header)), header, struct.pack("<I", len(payloads))]
    for p in payloads:
        parts += [struct.pack("<Q", len(p)), p]
    return b"".join(parts)


def test_round_trip_keeps_header_dtypes_and_values() -> None:
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([True, False]), np.int64(7) * np.ones(())]
    data = wire.encode({"event": "test", "index": 1}, arrays) + wire.encode({"event": "done"})
    messages = wire.decode_all(data)
    assert [m.header for m in messages] == [{"event": "test", "index": 1}, {"event": "done"}]
    for got, want in zip(messages[0].arrays, arrays, strict=True):
        assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cut", [1, 4, 7, 10, 20, -9, -1])
def test_truncated_message_is_rejected(cut: int) -> None:
    data = wire.encode({"event": "test"}, [np.zeros(4, np.float32)])
    with pytest.raises(wire.WireError):
        wire.decode_all(data[:cut])


def test_array_length_larger_than_the_data_is_rejected_without_allocating() -> None:
    data = _message(b'{"event":"x"}', []) [:-4] + struct.pack("<I", 1) + struct.pack("<Q", 2**62)
    with pytest.raises(wire.BudgetExceeded, match="declares more than"):
        wire.decode_all(data)
    with pytest.raises(wire.BudgetExceeded, match="declares more than"):
        wire.StreamDecoder(1 << 20).feed(data)


def test_oversized_header_is_rejected_before_reading_it() -> None:
    data = wire.MAGIC + struct.pack("<I", wire.MAX_HEADER + 1) + b"{}"
    with pytest.raises(wire.WireError, match="at most 262144"):
        wire.decode_all(data)
    with pytest.raises(wire.WireError, match="at most 262144"):
        wire.StreamDecoder(10**9).feed(data)


@pytest.mark.parametrize("header", [b"not json", b"[1, 2]", b'"text"'])
def test_header_must_be_a_json_object(header: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_all(_message(header, []))


def test_bad_marker_is_rejected() -> None:
    with pytest.raises(wire.WireError, match="marker"):
        wire.decode_all(b'{"verdict": "accepted"}')
    with pytest.raises(wire.WireError, match="marker"):
        wire.StreamDecoder(1024).feed(b'{"verdict": "accepted"}\n')


def test_object_dtype_payload_is_rejected_and_never_unpickled(trap: Path) -> None:
    payload = _npy(np.array([Trap(), 1.0], dtype=object), allow_pickle=True)
    with pytest.raises(wire.WireError):
        wire.decode_all(_message(b'{"event":"test"}', [payload]))
    assert not trap.exists()


def test_raw_pickle_payload_is_rejected_and_never_unpickled(trap: Path) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_all(_message(b'{"event":"test"}', [pickle.dumps(Trap())]))
    with pytest.raises(wire.WireError):
        wire.decode_all(pickle.dumps(Trap()))
    assert not trap.exists()


@pytest.mark.parametrize("arr", [np.array(["accepted"]), np.array([b"x"]), np.zeros(2, dtype=[("a", "f4")]),
                                 np.array([1 + 2j]), np.array(["2020-01-01"], dtype="datetime64[D]")])
def test_non_numeric_dtypes_are_rejected(arr: np.ndarray) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_all(_message(b'{"event":"test"}', [_npy(arr)]))


def test_stream_decoder_handles_byte_by_byte_delivery() -> None:
    data = wire.encode({"event": "test"}, [np.arange(5.0)]) + wire.encode({"event": "done"})
    decoder = wire.StreamDecoder(len(data))
    messages = []
    for i in range(len(data)):
        messages += decoder.feed(data[i : i + 1])
    assert [m.header["event"] for m in messages] == ["test", "done"]
    np.testing.assert_array_equal(messages[0].arrays[0], np.arange(5.0))
    assert decoder.pending == 0


def test_stream_decoder_enforces_its_byte_budget() -> None:
    decoder = wire.StreamDecoder(1000)
    data = wire.encode({"event": "test"}, [np.zeros(1000, np.float32)])
    with pytest.raises(wire.BudgetExceeded):
        decoder.feed(data)


def test_read_capped_keeps_the_budget_and_counts_everything() -> None:
    data, total = wire.read_capped(io.BytesIO(b"x" * 200_000), 8192)
    assert data == b"x" * 8192
    assert total == 200_000


FAKE_REPORT = b'{"verdict": "accepted"}\n'


def test_messages_before_garbage_in_the_same_chunk_are_kept() -> None:
    """`ready` then a submission's junk in one read: the error carries the message that came first."""
    with pytest.raises(wire.WireError) as raised:
        wire.StreamDecoder(1 << 20).feed(wire.encode({"event": "ready"}) + FAKE_REPORT)
    assert [m.header for m in raised.value.messages] == [{"event": "ready"}]


def test_the_result_reader_delivers_ready_before_the_garbage() -> None:
    import os
    import queue

    from graders.child_events import ResultChannel
    from graders.supervision import _results_reader

    read_end, write_end = os.pipe()
    os.write(write_end, wire.encode({"event": "ready", "pid": 7}) + FAKE_REPORT * 3)
    os.close(write_end)
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    _results_reader(read_end, ResultChannel(programs=1, tests=1, budget=1 << 20), events)
    kinds = [events.get_nowait()[0] for _ in range(events.qsize())]
    assert kinds == ["message", "garbage"]


def test_the_time_limit_counts_from_the_cpu_read_when_ready_arrived() -> None:
    """The reader thread reads the run's CPU as `ready` comes off the pipe; the watcher counts from that, not
    from when it got to the event (a loaded parent got to a short run's `ready` after the run: CI measured a
    run's CPU time as 0.0)."""
    import os
    import queue

    from graders.child_events import ResultChannel
    from graders.supervision import ChildOutcome, RunMeter, SandboxLimits, _results_reader, watch_events

    read_end, write_end = os.pipe()
    os.write(write_end, wire.encode({"event": "ready", "pid": 7}))
    os.close(write_end)
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    cpu_now = [0.25]  # the run's CPU seconds: 0.25 when ready arrives
    _results_reader(read_end, ResultChannel(programs=1, tests=1, budget=1 << 20), events, cpu=lambda: cpu_now[0])
    cpu_now[0] = 0.75  # the run went on before the watcher read the event
    outcome = ChildOutcome()
    watch_events(events, SandboxLimits(time_s=5), RunMeter(lambda: cpu_now[0], dict), outcome, startup_s=5)
    assert outcome.cpu_at_ready == 0.25
    assert outcome.run_cpu_s == pytest.approx(0.5)


# ---------------------------------------------------------------------------------- hostile framing (row 32)
# Each of these ran in the trusted parent before: a RecursionError that killed the reader thread, or a
# quadratic re-scan of an incomplete message on every read. Each must now be refused at once, cheaply.


def _cpu(fn: object) -> float:
    """CPU seconds this thread spends in fn (load on the machine does not change it)."""
    start = time.thread_time()
    fn()  # type: ignore[operator]
    return time.thread_time() - start


def test_100000_deep_json_header_is_refused_before_parsing() -> None:
    header = b"[" * 100_000 + b"]" * 100_000
    data = _message(header, [])

    def decode() -> None:
        with pytest.raises(wire.WireError, match="nested 100000 levels deep"):
            wire.StreamDecoder(1 << 20).feed(data)

    assert _cpu(decode) < 0.5
    # Brackets inside strings do not count; escaped quotes do not end a string.
    assert wire.json_depth(b'{"a": "[[[[\\"[[[[", "b": [[1]]}') == 3
    deep_ok = b'{"t":' * 40 + b"1" + b"}" * 40
    assert wire.decode_all(_message(deep_ok, []))[0].header["t"]["t"]


def test_header_declaring_4_gib_is_refused_before_reading_it() -> None:
    with pytest.raises(wire.WireError, match="header of 4294967295 bytes"):
        wire.StreamDecoder(1 << 30).feed(wire.MAGIC + struct.pack("<I", 2**32 - 1))


def test_2_32_arrays_trickled_8_bytes_at_a_time_are_refused_at_the_count() -> None:
    head = b'{"event":"test"}'
    prefix = wire.MAGIC + struct.pack("<I", len(head)) + head + struct.pack("<I", 2**32 - 1)
    decoder = wire.StreamDecoder(16 << 20)
    with pytest.raises(wire.WireError, match="declares 4294967295 arrays"):
        for i in range(0, len(prefix), 8):
            decoder.feed(prefix[i : i + 8])


def test_decoding_is_linear_however_the_bytes_are_chunked() -> None:
    """A message of 2000 arrays trickled 8 bytes at a time (36 000 reads) stays cheap: the decoder never
    looks at a byte twice. The old one re-scanned the incomplete message on every read, which is
    quadratic: tens of CPU-seconds here."""
    arrays = [np.full(3, i, np.float32) for i in range(2000)]
    data = wire.encode({"event": "test"}, arrays)
    whole = _cpu(lambda: wire.StreamDecoder(len(data)).feed(data))
    out: list[wire.Message] = []

    def trickle() -> None:
        decoder = wire.StreamDecoder(len(data))
        for i in range(0, len(data), 8):
            out.extend(decoder.feed(data[i : i + 8]))

    trickled = _cpu(trickle)
    assert len(out) == 1 and len(out[0].arrays) == 2000
    assert trickled < 2.0, (whole, trickled)
    one_more = _message(b'{"event":"test"}', [_npy(np.zeros(1))] * (wire.MAX_ARRAYS + 1))
    with pytest.raises(wire.WireError, match="at most 16384"):
        wire.decode_all(one_more)


def test_messages_are_capped() -> None:
    data = wire.encode({"event": "start"}) * 4
    with pytest.raises(wire.WireError, match="more than 3 messages"):
        wire.StreamDecoder(caps=wire.Caps(messages=3)).feed(data)


@pytest.mark.parametrize("header", [b'{"a": 1, "a": 2}', b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}',
                                    b'{"a": 1' , b"\xff\xfe{}", b"{}" + b" " * 3 + b"x"])
def test_header_json_is_strict(header: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_all(_message(header, []))


@pytest.mark.parametrize("mutate", [
    lambda d: d.replace(b"'shape': (3,)", b"'shape': (300000000000,)"),  # declares far more than it carries
    lambda d: d.replace(b"'shape': (3,)", b"'shape': (2,)"),  # fewer elements than bytes
    lambda d: d.replace(b"'shape': (3,)", b"'shape': (-3,)"),
    lambda d: d[:-1],
    lambda d: d.replace(b"'descr': '<f4'", b"'descr': [('a', '<f4')]"),
    lambda d: d.replace(b"'descr': '<f4'", b"'descr': ('<f4', (3,))"),
])
def test_array_header_must_match_its_bytes(mutate: object) -> None:
    good = _npy(np.zeros(3, np.float32))
    assert wire.decode_array(good).shape == (3,)
    bad = mutate(good)  # type: ignore[operator]
    with pytest.raises(wire.WireError):
        wire.decode_array(bad)


def test_fortran_ordered_and_big_endian_arrays_keep_their_values() -> None:
    a = np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3))
    got = wire.decode_array(_npy(a))
    np.testing.assert_array_equal(got, a)
    assert got.flags.c_contiguous and got.flags.owndata
