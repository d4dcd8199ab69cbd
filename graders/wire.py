"""The byte protocol between the grader and a child process.

A message is a JSON header followed by zero or more arrays in `.npy` format. Arrays are read with
`allow_pickle=False` and only numeric dtypes are accepted, so nothing the child sends can run code in
the reader. Every length is checked against a budget before anything is allocated.

    message := b"GXM1" u32:header_len header_json u32:n_arrays (u64:len npy_bytes)*
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

import numpy as np

MAGIC = b"GXM1"
MAX_HEADER = 256 * 1024
NUMERIC_KINDS = "biuf"


class WireError(Exception):
    """The byte stream is not a well-formed message (truncated, oversized or not numeric).

    `messages`: the well-formed messages that came before the error in the same chunk. They happened (a
    `ready` among them means the submission's code was running), so the reader still delivers them.
    """

    messages: list[Message]

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.messages = []


class BudgetExceeded(WireError):
    """The stream carries more bytes than the reader allowed."""


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
    head = json.dumps(header, separators=(",", ":")).encode()
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
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # ValueError for object arrays, anything for garbage
        raise WireError(f"not a plain numeric array ({type(exc).__name__})") from exc
    if not isinstance(arr, np.ndarray) or type(arr) is not np.ndarray:
        raise WireError("not a plain numeric array")
    if arr.dtype.kind not in NUMERIC_KINDS or arr.dtype.fields is not None:
        raise WireError(f"dtype {arr.dtype} is not numeric")
    return arr


def decode_all(data: bytes) -> list[Message]:
    """Decode a complete buffer of messages; raise WireError on any malformed byte."""
    out: list[Message] = []
    view = memoryview(data)
    pos = 0

    def take(n: int) -> memoryview:
        nonlocal pos
        if n < 0 or pos + n > len(view):
            raise WireError("truncated message")
        chunk = view[pos : pos + n]
        pos += n
        return chunk

    while pos < len(view):
        if bytes(take(4)) != MAGIC:
            raise WireError("bad message marker")
        (hlen,) = struct.unpack("<I", take(4))
        if hlen > MAX_HEADER:
            raise WireError("header too large")
        try:
            header = json.loads(bytes(take(hlen)))
        except ValueError as exc:
            raise WireError("header is not JSON") from exc
        if not isinstance(header, dict):
            raise WireError("header is not an object")
        (count,) = struct.unpack("<I", take(4))
        arrays = []
        for _ in range(count):
            (alen,) = struct.unpack("<Q", take(8))
            arrays.append(decode_array(bytes(take(alen))))
        out.append(Message(header, arrays))
    return out


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


class StreamDecoder:
    """Decode messages as bytes arrive, within a total byte budget."""

    def __init__(self, budget: int):
        self.budget = budget
        self.total = 0
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self.total += len(data)
        if self.total > self.budget:
            raise BudgetExceeded(f"more than {self.budget} bytes of results")
        self.buffer += data
        messages: list[Message] = []
        try:
            while True:
                end = self._complete_length()
                if end is None:
                    break
                messages += decode_all(bytes(self.buffer[:end]))
                del self.buffer[:end]
        except WireError as exc:
            exc.messages = messages + exc.messages
            raise
        return messages

    def _complete_length(self) -> int | None:
        """Length of the first complete message in the buffer, or None if it is incomplete."""
        buf = self.buffer
        if len(buf) < 8:
            return None
        if bytes(buf[:4]) != MAGIC:
            raise WireError("bad message marker")
        (hlen,) = struct.unpack_from("<I", buf, 4)
        if hlen > MAX_HEADER:
            raise WireError("header too large")
        pos = 8 + hlen
        if len(buf) < pos + 4:
            return None
        (count,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        for _ in range(count):
            if len(buf) < pos + 8:
                return None
            (alen,) = struct.unpack_from("<Q", buf, pos)
            pos += 8 + alen
            if len(buf) < pos:
                return None
        return pos

    @property
    def pending(self) -> int:
        return len(self.buffer)
