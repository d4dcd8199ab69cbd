"""The byte protocol between the grader and a child process.

A message is a JSON header followed by zero or more arrays in `.npy` format:

    message := b"GXM1" u32:header_len header_json u32:n_arrays (u64:len npy_bytes)*

The parent reads what a grading child sends as hostile input (the submission runs in the harness's own
process and can write to the result pipe). So the decoder:

- consumes each byte once, in one linear pass, whatever the chunking (a message trickled 8 bytes at a time
  costs the same as one written at once: no re-scan of an incomplete message on every read);
- checks every declared length against its cap (`Caps`: header size, arrays per message, messages, total
  bytes) *before* it allocates or waits for anything;
- refuses JSON nested deeper than `Caps.json_depth` before parsing it (`json` recurses), duplicate keys,
  and the non-standard constants NaN and Infinity;
- parses the `.npy` header itself and accepts only plain numeric dtypes (bool, int, uint, float) whose
  declared shape accounts for exactly the bytes that follow; nothing is ever unpickled.

What the headers must contain, and in which order messages may come, is `graders/child_events.py`.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

MAGIC = b"GXM1"
MAX_HEADER = 256 * 1024
# The harness refuses results with more leaves (graders/child/harness.py MAX_LEAVES); requests carry a few arrays
# per test. Well above both, far below anything that costs the parent.
MAX_ARRAYS = 16_384
# The harness nests a returned pytree at most 32 containers deep (graders/child/harness.py MAX_DEPTH); each
# container is two JSON levels ({"t": ..., "c": [...]}), and the event around the tree adds three.
MAX_JSON_DEPTH = 80
MAX_MESSAGES = 100_000
NUMERIC_KINDS = "biuf"
# ml_dtypes that numpy cannot carry: name -> (kind, significand bits). A leaf of one travels as float32 with
# its name beside it (graders/child/harness.py); the parent accepts no other name beside a carried leaf.
EXTENDED: dict[str, tuple[str, int]] = {
    "bfloat16": ("f", 8), "float8_e4m3fn": ("f", 4), "float8_e4m3fnuz": ("f", 4), "float8_e4m3b11fnuz": ("f", 4),
    "float8_e5m2": ("f", 3), "float8_e5m2fnuz": ("f", 3), "float8_e3m4": ("f", 5), "float8_e4m3": ("f", 4),
    "float8_e8m0fnu": ("f", 1), "float4_e2m1fn": ("f", 2), "float6_e2m3fn": ("f", 4), "float6_e3m2fn": ("f", 3),
    "int4": ("i", 0), "uint4": ("u", 0), "int2": ("i", 0), "uint2": ("u", 0),
}
_PREFIX = struct.Struct("<4sI")
_COUNT = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NPY_HEADER_MAX = 10_000


class WireError(Exception):
    """The byte stream is not a well-formed message (truncated, oversized, too deep or not numeric).

    `messages`: the well-formed messages that came before the error in the same chunk. They happened (a
    `ready` among them means the submission's code was running), so the reader still delivers them.
    """

    messages: list[Any]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.messages = []


class BudgetExceeded(WireError):
    """The stream carries more bytes than the reader allowed."""


@dataclass(frozen=True)
class Caps:
    """What one stream may carry at most; every declared length is checked against these first."""

    total_bytes: int = 16 * 1024 * 1024
    header_bytes: int = MAX_HEADER
    arrays_per_message: int = MAX_ARRAYS
    messages: int = MAX_MESSAGES
    json_depth: int = MAX_JSON_DEPTH


@dataclass
class Message:
    header: dict[str, Any]
    arrays: list[np.ndarray] = field(default_factory=list)


def encode_array(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def encode(header: dict[str, Any], arrays: list[np.ndarray] | None = None) -> bytes:
    arrays = arrays or []
    # Text the submission controls (its exception messages, class names, dict keys) may hold lone surrogates,
    # which are not text: each is sent as "?" (the same length, so a clipped field stays within its cap), not as
    # a "\\ud800" escape the reader would decode back into a string no validator accepts.
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
    parts = [MAGIC, struct.pack("<I", len(head)), head, struct.pack("<I", len(arrays))]
    for arr in arrays:
        data = encode_array(arr)
        parts.append(struct.pack("<Q", len(data)))
        parts.append(data)
    return b"".join(parts)


def write_message(stream: BinaryIO, header: dict[str, Any], arrays: list[np.ndarray] | None = None) -> None:
    stream.write(encode(header, arrays))
    stream.flush()


def decode_array(data: bytes) -> np.ndarray:
    """A plain numeric ndarray from `.npy` bytes whose declared shape and dtype fit the bytes exactly."""
    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream, max_header_size=_NPY_HEADER_MAX)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream, max_header_size=_NPY_HEADER_MAX)
        else:
            raise ValueError(f"npy version {version}")
    except Exception as exc:  # ValueError for most garbage; the header parser may raise others
        raise WireError(f"not a plain numeric array ({type(exc).__name__})") from exc
    if not isinstance(dtype, np.dtype) or dtype.fields is not None or dtype.subdtype is not None:
        raise WireError("not a plain numeric array")
    if dtype.kind not in NUMERIC_KINDS or dtype.itemsize == 0:
        raise WireError(f"dtype {dtype} is not numeric")
    if not all(isinstance(d, int) and d >= 0 for d in shape) or len(shape) > 64:
        raise WireError("not a plain numeric array (bad shape)")
    body = memoryview(data)[stream.tell():]
    count = 1
    for d in shape:
        count *= d
    if count * dtype.itemsize != len(body):
        raise WireError(f"array of shape {tuple(shape)} and dtype {dtype} does not match its {len(body)} bytes")
    flat = np.frombuffer(body, dtype=dtype, count=count)
    arr = flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)
    # A fresh C-ordered copy the parent owns: no view into a buffer the decoder reuses.
    return np.array(arr, dtype=dtype, order="C", copy=True)


def json_depth(text: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, in linear time and without recursion."""
    skeleton = _JSON_STRING.sub(b"", text)
    if not skeleton:
        return 0
    codes = np.frombuffer(skeleton, dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(codes, (ord("]"), ord("}"))).astype(np.int64))
    return int(np.cumsum(steps).max(initial=0))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_header(text: bytes, caps: Caps) -> dict[str, Any]:
    depth = json_depth(text)
    if depth > caps.json_depth:
        raise WireError(f"header nested {depth} levels deep; at most {caps.json_depth} are allowed")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise WireError(f"header is not JSON ({type(exc).__name__})") from exc
    if not isinstance(header, dict):
        raise WireError("header is not an object")
    return header


class StreamDecoder:
    """Decode messages as bytes arrive: a state machine that looks at each byte once.

    State: which field comes next and how many bytes it needs; only the bytes of the current field are
    buffered. A field's declared size is checked against `caps` as soon as it is known.
    """

    def __init__(self, budget: int | None = None, caps: Caps | None = None):
        caps = caps or Caps()
        if budget is not None:
            caps = Caps(budget, caps.header_bytes, caps.arrays_per_message, caps.messages, caps.json_depth)
        self.caps = caps
        self.total = 0  # bytes received
        self.consumed = 0  # bytes taken into fields
        self.count = 0  # messages decoded so far
        self._message_start = 0
        self._field = "prefix"
        self._need = _PREFIX.size
        self._buf = bytearray()  # the bytes of the current field only
        self._have = 0
        self._header: dict[str, Any] = {}
        self._arrays: list[np.ndarray] = []
        self._left = 0  # arrays still to come in the current message

    @property
    def budget(self) -> int:
        return self.caps.total_bytes

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message (0 at a message boundary)."""
        return self.consumed - self._message_start

    @property
    def at_boundary(self) -> bool:
        return self._field == "prefix" and self._have == 0

    def feed(self, data: bytes) -> list[Message]:
        messages: list[Message] = []
        try:
            self.total += len(data)
            if self.total > self.caps.total_bytes:
                raise BudgetExceeded(f"more than {self.caps.total_bytes} bytes of results")
            view = memoryview(data)
            pos = 0
            while pos < len(view):
                take = min(self._need - self._have, len(view) - pos)
                self._buf += view[pos : pos + take]
                self._have += take
                self.consumed += take
                pos += take
                if self._have == self._need:
                    value = bytes(self._buf)
                    self._buf, self._have = bytearray(), 0
                    done = self._complete(value)
                    if done is not None:
                        messages.append(done)
        except WireError as exc:
            exc.messages = messages + exc.messages
            raise
        return messages

    def _expect(self, name: str, size: int) -> None:
        self._field, self._need = name, size

    def _complete(self, value: bytes) -> Message | None:
        """One field is complete: check it, move to the next field; return a message when one is whole."""
        caps = self.caps
        if self._field == "prefix":
            magic, hlen = _PREFIX.unpack(value)
            if magic != MAGIC:
                raise WireError("bad message marker")
            if hlen > caps.header_bytes:
                raise WireError(f"header of {hlen} bytes; at most {caps.header_bytes} are allowed")
            if hlen == 0:
                raise WireError("empty header")
            self._check_budget(hlen + _COUNT.size)
            self._expect("header", hlen)
            return None
        if self._field == "header":
            self._header = decode_header(value, caps)
            self._expect("count", _COUNT.size)
            return None
        if self._field == "count":
            (count,) = _COUNT.unpack(value)
            if count > caps.arrays_per_message:
                raise WireError(f"message declares {count} arrays; at most {caps.arrays_per_message} are allowed")
            self._check_budget(count * _LENGTH.size)
            self._arrays, self._left = [], count
            return self._next_array()
        if self._field == "length":
            (alen,) = _LENGTH.unpack(value)
            self._check_budget(alen)
            if alen == 0:
                raise WireError("empty array")
            self._expect("array", alen)
            return None
        if self._field == "array":
            self._arrays.append(decode_array(value))
            self._left -= 1
            return self._next_array()
        raise AssertionError(self._field)

    def _next_array(self) -> Message | None:
        if self._left > 0:
            self._expect("length", _LENGTH.size)
            return None
        self.count += 1
        if self.count > self.caps.messages:
            raise WireError(f"more than {self.caps.messages} messages")
        message = Message(self._header, self._arrays)
        self._header, self._arrays = {}, []
        self._message_start = self.consumed
        self._expect("prefix", _PREFIX.size)
        return message

    def _check_budget(self, declared: int) -> None:
        """A declared size that cannot fit in what is left of the budget is refused before it is awaited."""
        if self.consumed + declared > self.caps.total_bytes:
            raise BudgetExceeded(f"a message declares more than the {self.caps.total_bytes} bytes of results allowed")


def decode_all(data: bytes, caps: Caps | None = None) -> list[Message]:
    """Decode a complete buffer of messages; raise WireError on any malformed or missing byte."""
    caps = caps or Caps(total_bytes=max(len(data), 1))
    decoder = StreamDecoder(caps=caps)
    messages = decoder.feed(data)
    if not decoder.at_boundary:
        raise WireError("truncated message")
    return messages


def peek_header(data: bytes) -> dict[str, Any]:
    """The header of the first message in `data`, without decoding its arrays (for trusted requests)."""
    if len(data) < _PREFIX.size:
        raise WireError("truncated message")
    magic, hlen = _PREFIX.unpack_from(data)
    if magic != MAGIC or len(data) < _PREFIX.size + hlen:
        raise WireError("not a message")
    return decode_header(data[_PREFIX.size : _PREFIX.size + hlen], Caps(header_bytes=len(data)))


def _frame(take: Callable[[int], bytes | memoryview]) -> list[bytes | memoryview]:
    """One message's parts, taken in order from its framing (prefix, header, count, each array's length and body):
    `take(n)` returns the next n bytes or raises WireError. Never asks for a byte past the message."""
    prefix = take(_PREFIX.size)
    magic, hlen = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise WireError("not a message")
    head = take(hlen)
    count_bytes = take(_COUNT.size)
    (count,) = _COUNT.unpack(count_bytes)
    parts = [prefix, head, count_bytes]
    for _ in range(count):
        length = take(_LENGTH.size)
        parts += [length, take(_LENGTH.unpack(length)[0])]
    return parts


def message_length(data: bytes) -> int:
    """The byte length of the first message in `data` (a trusted request of several messages), from its framing."""
    view, at = memoryview(data), 0

    def take(n: int) -> memoryview:
        nonlocal at
        if len(view) < at + n:
            raise WireError("truncated message")
        at += n
        return view[at - n:at]

    _frame(take)
    return at


def read_one(fd: int) -> Message:
    """Exactly one message from the blocking file descriptor `fd`, reading no byte past it (the next message may
    be sent only once this one was answered). For trusted requests: its lengths are not capped."""

    def take(n: int) -> bytes:
        parts: list[bytes] = []
        while n > 0:
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise WireError("truncated message")
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    data = b"".join(_frame(take))
    return decode_all(data, Caps(total_bytes=len(data), header_bytes=len(data)))[0]


def read_capped(stream: IO[bytes], budget: int) -> tuple[bytes, int]:
    """Read a stream to its end, keeping at most `budget` bytes; return them and the total seen.

    The reader keeps draining after the budget so the writer never blocks on a full pipe.
    """
    chunks: list[bytes] = []
    kept = 0
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        total += len(chunk)
        if kept < budget:
            part = chunk[: budget - kept]
            chunks.append(part)
            kept += len(part)
    return b"".join(chunks), total
