"""What a grading child may send on its result channel, and in which order. The parent believes nothing else.

The submission runs in the harness's own process, so it can find the result pipe and write on it. Every
message is therefore checked twice before the parent uses it:

1. its header must be exactly one of the event models below (pydantic, `extra="forbid"`, strict types:
   no "1" for 1, no 1.0 for 1, no true for 1; bounded strings; finite numbers; indexes in range);
2. the events must come in the one order the harness writes them (`ChannelRules`):

       ready, then for each program p = 0..P-1:
           load(p), and if it loaded: start(p, 0), test(p, 0), ..., start(p, T-1), test(p, T-1)
       then done

   so each test is reported once, after its own start, and nothing comes after `done`.

The first violation ends the run: `ResultChannel.feed` raises `ChannelViolation` (a `wire.WireError`)
with a short description, and the engine reports `runtime_error` charged to the submission, never
`internal_error` (which would be retried). Bytes that are not even well-formed messages are refused one
layer down, by `graders/wire.py`.

To add an event kind (e.g. a description of a model's state after a test):
- define a model deriving from `Event` with `event: Literal["<name>"]` and strict, bounded fields;
- add it to the `ChildEvent` union;
- say in `ChannelRules` where in the order it may appear (one branch in `accept`), and give it a
  `describe()` line;
- add its cases to `tests/unit/test_child_events.py`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, model_validator

from graders import dtypes, wire
from graders.probe_schema import ProbeError, Probes, check_probe_arrays

# The harness clips what it sends to these sizes (graders/child/harness.py); anything longer did not come from it.
MAX_MESSAGE = 4000
MAX_TRACEBACK = 8000
MAX_NAME = 200
MAX_SOURCE_LINE = 500
MAX_TREE_DEPTH = 33  # levels, the leaf included: the harness refuses more than 32 containers
MAX_LEAVES = 10_000
MAX_INDEX = 1_000_000
MAX_DURATION_MS = 24 * 3600 * 1000.0

Index = Annotated[int, Field(ge=0, le=MAX_INDEX)]
Line = Annotated[int, Field(ge=0, le=10_000_000)]
Duration = Annotated[float, Field(ge=0.0, le=MAX_DURATION_MS, allow_inf_nan=False)]
Text = Annotated[str, StringConstraints(max_length=MAX_MESSAGE)]
Traceback = Annotated[str, StringConstraints(max_length=MAX_TRACEBACK)]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME)]
SourceLine = Annotated[str, StringConstraints(max_length=MAX_SOURCE_LINE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# ------------------------------------------------------------------------------------------- result trees
# How a returned pytree is described (graders/child/harness.py `to_tree`): leaves point at the message's arrays
# in depth-first order.


class Leaf(_Strict):
    t: Literal["leaf"]
    i: Index
    # The leaf's own dtype when numpy cannot carry it (bfloat16 travels as float32): a known name only.
    d: Annotated[str, StringConstraints(max_length=40)] | None = None

    @model_validator(mode="after")
    def _known_dtype(self) -> Leaf:
        if self.d is not None and self.d not in dtypes.EXTENDED:
            raise ValueError(f"unknown carried dtype {self.d[:40]!r}")
        return self


class Sequence(_Strict):
    t: Literal["tuple", "list"]
    c: Annotated[list[Tree], Field(max_length=MAX_LEAVES)]


class Mapping(_Strict):
    t: Literal["dict"]
    k: Annotated[list[Annotated[str, StringConstraints(max_length=MAX_NAME)]], Field(max_length=MAX_LEAVES)]
    c: Annotated[list[Tree], Field(max_length=MAX_LEAVES)]

    @model_validator(mode="after")
    def _keys_match_children(self) -> Mapping:
        if len(self.k) != len(self.c):
            raise ValueError(f"{len(self.k)} keys for {len(self.c)} values")
        if len(set(self.k)) != len(self.k):
            raise ValueError("duplicate keys")
        return self


Tree = Annotated[Leaf | Sequence | Mapping, Field(discriminator="t")]
Sequence.model_rebuild()
Mapping.model_rebuild()


def tree_leaves(tree: Leaf | Sequence | Mapping) -> list[int]:
    """Leaf indexes in depth-first order (iterative: a tree is at most MAX_TREE_DEPTH deep, but still)."""
    out: list[int] = []
    stack: list[tuple[Leaf | Sequence | Mapping, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_TREE_DEPTH:
            raise ValueError(f"the result tree is nested deeper than {MAX_TREE_DEPTH} levels")
        if isinstance(node, Leaf):
            out.append(node.i)
        else:
            stack.extend((child, depth + 1) for child in reversed(node.c))
    return out


# ------------------------------------------------------------------------------------------------ events


class Event(_Strict):
    """Base of every event model; `event` names the kind."""

    event: str

    def describe(self) -> str:
        return f"a '{self.event}' event"


class Ready(Event):
    """The child is up (cold: libraries imported; warm: request read) and about to load the program."""

    event: Literal["ready"]
    pid: Annotated[int, Field(ge=0, le=2**31)]
    warm: bool = False


class _ProgramEvent(Event):
    program: Index


class _LoadEvent(_ProgramEvent):
    event: Literal["load"]

    def describe(self) -> str:
        return f"the 'load' of program {self.program}"


class LoadOk(_LoadEvent):
    status: Literal["ok"]


class LoadSyntaxError(_LoadEvent):
    status: Literal["syntax_error"]
    message: Text
    line: Line | None = None
    offset: Line | None = None
    text: SourceLine = ""


class LoadInvalid(_LoadEvent):
    status: Literal["invalid"]
    message: Text


class LoadError(_LoadEvent):
    status: Literal["error"]
    error_type: Name
    message: Text
    traceback: Traceback
    line: Line | None


Load = Annotated[LoadOk | LoadSyntaxError | LoadInvalid | LoadError, Field(discriminator="status")]


class Start(_ProgramEvent):
    event: Literal["start"]
    index: Index

    def describe(self) -> str:
        return f"the 'start' of test {self.index}"


class _TestEvent(_ProgramEvent):
    event: Literal["test"]
    index: Index
    duration_ms: Duration
    # What jax spent tracing, lowering and compiling during the call (the submission's own jits); informational.
    compile_ms: Duration | None = None

    def describe(self) -> str:
        return f"the result of test {self.index}"


class TestOk(_TestEvent):
    status: Literal["ok"]
    tree: Tree
    # The model's state and the transform checks' raw results (graders/child/model_probe.py), when the request
    # asked for them; their arrays follow the outputs' in the same message (graders/probe_schema.py).
    probes: Probes | None = None


class TestError(_TestEvent):
    status: Literal["error"]
    error_type: Name
    message: Text
    traceback: Traceback
    line: Line | None


class TestRejected(_TestEvent):
    """The returned value could not be sent: not numeric (`bad_output`) or over the output limit."""

    status: Literal["bad_output", "output_limit"]
    message: Text


TestResult = Annotated[TestOk | TestError | TestRejected, Field(discriminator="status")]


class Done(Event):
    event: Literal["done"]

    def describe(self) -> str:
        return "'done'"


ChildEvent = Annotated[Ready | Load | Start | TestResult | Done, Field(discriminator="event")]
_EVENT = TypeAdapter(ChildEvent)


# ------------------------------------------------------------------------------------------------ channel


class ChannelViolation(wire.WireError):
    """A well-framed message that is not a valid event, or an event out of order."""


@dataclass(frozen=True)
class ChildMessage:
    """One validated event, its arrays (only a `test` with status ok has any), and when it arrived."""

    event: Event
    arrays: tuple[np.ndarray, ...] = ()
    at: float = field(default_factory=time.monotonic)
    # The run's CPU seconds when the reader thread took it off the pipe (the `ready` event): the baseline the
    # time limit counts from, read as the event arrives rather than when the watcher gets to it.
    cpu_at: float | None = None

    @property
    def kind(self) -> str:
        return self.event.event


def validate_event(header: dict[str, Any], arrays: list[np.ndarray]) -> Event:
    """The header as an event model, with its arrays accounted for; ChannelViolation if it is not one."""
    try:
        event: Event = _EVENT.validate_python(header)
    except ValidationError as exc:
        raise ChannelViolation(_describe_errors(header, exc)) from None
    if isinstance(event, TestOk):
        try:
            leaves = tree_leaves(event.tree)
        except ValueError as exc:
            raise ChannelViolation(f"the result of test {event.index}: {exc}") from None
        # The outputs' arrays come first, in order; only a model description may carry more after them.
        outputs = len(arrays) if event.probes is None else len(leaves)
        if leaves != list(range(outputs)) or outputs > len(arrays):
            raise ChannelViolation(f"the result of test {event.index} describes {len(leaves)} arrays "
                                   f"but carries {len(arrays)}, or numbers them out of order")
        if event.probes is not None:
            try:
                check_probe_arrays(event.probes, first=outputs, count=len(arrays))
            except ProbeError as exc:
                raise ChannelViolation(f"the result of test {event.index}: {exc}") from None
    elif arrays:
        raise ChannelViolation(f"{event.describe()} carries {len(arrays)} arrays; it may carry none")
    return event


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_errors(header: dict[str, Any], exc: ValidationError) -> str:
    kind = header.get("event")
    what = f"a '{_clip(kind, 20)}' event" if isinstance(kind, str) else "a message"
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        # The first element of `loc` is the union tag pydantic chose; the rest is the field path.
        loc = [str(part) for part in err["loc"]]
        path = ".".join(_clip(p, 40) for p in loc[1:] if not p.startswith("function-"))
        if len(loc) > 1 and loc[0] in ("ready", "load", "start", "test", "done") and loc[1] in (
                "ok", "syntax_error", "invalid", "error", "bad_output", "output_limit"):
            path = ".".join(_clip(p, 40) for p in loc[2:])
        msg = err["msg"]
        if err["type"] == "union_tag_not_found":
            msg = f"has no '{err.get('ctx', {}).get('discriminator', '?').strip(chr(39))}' field"
        problems.append(f"{path + ': ' if path else ''}{_clip(msg, 120)}")
    return _clip(f"{what} that is not valid ({'; '.join(problems)})", 400)


class ChannelRules:
    """The order events must follow for a request of `programs` programs and `tests` tests each."""

    def __init__(self, programs: int, tests: int):
        self.programs = programs
        self.tests = tests
        # What may come next: ("ready",), ("load", p), ("start", p, i), ("test", p, i), ("done",), ("closed",)
        self.next: tuple[Any, ...] = ("ready",)

    def expected(self) -> str:
        state = self.next
        if state[0] == "ready":
            return "'ready'"
        if state[0] == "load":
            return f"the 'load' of program {state[1]}"
        if state[0] == "start":
            return f"the 'start' of test {state[2]}"
        if state[0] == "test":
            return f"the result of test {state[2]}"
        if state[0] == "done":
            return "'done'"
        return "nothing (the run had ended)"

    def accept(self, event: Event) -> None:
        """Move past `event`, or raise ChannelViolation if it is not what must come next."""
        state = self.next
        ok = False
        if state[0] == "ready" and isinstance(event, Ready):
            self.next, ok = self._after_ready(), True
        elif state[0] == "load" and isinstance(event, LoadOk | LoadSyntaxError | LoadInvalid | LoadError):
            if event.program == state[1]:
                loaded = isinstance(event, LoadOk) and self.tests > 0
                self.next, ok = (("start", state[1], 0) if loaded else self._after_program(state[1])), True
        elif state[0] == "start" and isinstance(event, Start):
            if (event.program, event.index) == state[1:]:
                self.next, ok = ("test", state[1], state[2]), True
        elif state[0] == "test" and isinstance(event, TestOk | TestError | TestRejected):
            if (event.program, event.index) == state[1:]:
                p, i = state[1], state[2]
                self.next, ok = (("start", p, i + 1) if i + 1 < self.tests else self._after_program(p)), True
        elif state[0] == "done" and isinstance(event, Done):
            self.next, ok = ("closed",), True
        if not ok:
            raise ChannelViolation(f"expected {self.expected()}, got {event.describe()}"
                                   + (f" of program {getattr(event, 'program', 0)}"
                                      if self.programs > 1 and hasattr(event, "program") else ""))

    def _after_ready(self) -> tuple[Any, ...]:
        return ("load", 0) if self.programs > 0 else ("done",)

    def _after_program(self, p: int) -> tuple[Any, ...]:
        return ("load", p + 1) if p + 1 < self.programs else ("done",)


class ResultChannel:
    """Bytes from one child in, validated events out, in one linear pass (see the module docstring)."""

    def __init__(self, *, programs: int, tests: int, budget: int):
        # Each event is one message; the rules stop the run at the first one too many, this only bounds
        # the work before that.
        messages = 3 + programs * (1 + 2 * tests)
        self.decoder = wire.StreamDecoder(caps=wire.Caps(total_bytes=budget, messages=messages + 1))
        self.rules = ChannelRules(programs, tests)

    @classmethod
    def for_request(cls, header: dict[str, Any], budget: int) -> ResultChannel:
        """The channel of a child serving the request of `header` (trusted: built by graders/request.py)."""
        tests = len(header["tests"]) + int(header.get("sealed", 0))  # the held-back tests follow the first ones
        return cls(programs=len(header["programs"]), tests=tests, budget=budget)

    def feed(self, data: bytes) -> list[ChildMessage]:
        out: list[ChildMessage] = []
        error: wire.WireError | None = None
        try:
            messages = self.decoder.feed(data)
        except wire.WireError as exc:
            messages, error = exc.messages, exc
        now = time.monotonic()
        try:
            for message in messages:
                event = validate_event(message.header, message.arrays)
                self.rules.accept(event)
                out.append(ChildMessage(event, tuple(message.arrays), now))
        except ChannelViolation as violation:
            violation.messages = list(out)
            raise violation from None
        if error is not None:
            error.messages = list(out)
            raise error
        return out
