"""The code that runs inside a grading child: load a program, call it on each test, ship the outputs.

It runs next to untrusted code, so it decides nothing: it never sees expected outputs and never
judges. It only converts what the function returned into plain numeric arrays and writes them to the
result pipe (fd 3) the parent created. Comparison happens in the parent.

Run as `python -m graders.child.harness`: reads one request message on stdin, writes messages on fd 3.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import linecache
import numbers
import os
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, NoReturn

import numpy as np

from graders import wire
from graders.child import model_probe, seccomp

RESULT_FD = 3
MAX_DEPTH = 32
MAX_LEAVES = 10_000
MAX_NAME = 200
SUBMISSION_FILENAME = "submission.py"
SUBMISSION_MODULE = "submission"


class OutputRejected(Exception):
    """The returned value cannot be sent as plain numeric arrays."""

    def __init__(self, message: str, kind: str = "bad_output"):
        super().__init__(message)
        self.kind = kind


def _from_jax(value: Any) -> bool:
    """Whether the value's type is defined in jax or jaxlib (its arrays, whatever their concrete class)."""
    return type(value).__module__.split(".")[0] in ("jax", "jaxlib")


def declared_nbytes(value: Any) -> int | None:
    """Bytes a leaf will take once converted, from its declared shape and dtype, without converting it.

    jax and numpy arrays (and broadcast views) declare both; checking them first lets a 20000x20000
    result be refused before numpy copies 1.6 GB. Anything else is measured after conversion.
    """
    if not isinstance(value, np.ndarray | np.generic) and not _from_jax(value):
        return None
    try:
        shape = tuple(int(d) for d in value.shape)
        itemsize = int(np.dtype(value.dtype).itemsize)
    except Exception:
        return None
    return int(np.prod(shape, dtype=np.float64)) * itemsize


def _leaf_to_array(value: Any, path: str = "") -> tuple[np.ndarray, str | None]:
    """The leaf as a plain numpy array, and its own dtype's name when the pipe carries it as another.

    numpy has no bfloat16 (nor the float8 and int4 families): those travel as float32, and their name
    travels beside them so the parent's dtype stage can say "bfloat16, expected float32".
    `path` is where the leaf sits in the result ("[0]", "['loss']"; empty for the result itself): a rejection
    of one item of a list says which, not that the function returned that item.
    """
    at = f" at result{path}" if path else ""
    if isinstance(value, str | bytes):
        raise OutputRejected(f"returned {_a_type(value)}{at}; only numbers and arrays are graded")
    if value is None:
        raise OutputRejected(f"returned None{at}; " + ("only numbers and arrays are graded" if path
                                                       else "did you forget a `return`?"))
    try:
        arr = np.asarray(value)
    except Exception as exc:
        reason = _safe_str(exc) or type(exc).__name__
        raise OutputRejected(f"returned {_a_type(value)}{at} that is not array-like: {reason}") from exc
    carried_as: str | None = None
    if arr.dtype.kind == "V" or arr.dtype.name in wire.EXTENDED:
        carried_as = arr.dtype.name if arr.dtype.name in wire.EXTENDED else None
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in wire.NUMERIC_KINDS:
        if arr.dtype.kind == "O" and arr.ndim == 0 and type(value) is int:  # numpy keeps ints past 64 bits as objects
            raise OutputRejected(f"returned an int{at} too large for a 64-bit integer; numbers are graded as int64 "
                                 "or float (convert it with `float(...)`)")
        if arr.dtype.kind == "O" and arr.ndim == 0:  # not an array at all: numpy could only wrap the object
            raise OutputRejected(f"returned {_a_type(value)}{at}; only numbers and arrays are graded"
                                 f"{_what_to_return_instead(value)}")
        raise OutputRejected(
            f"returned {_a_type(value)}{at} of dtype {arr.dtype}; only bool, int and float arrays are graded"
        )
    # A fresh base-class array: subclasses and their overridden methods never leave this process.
    return np.array(arr, dtype=arr.dtype, copy=True, subok=False, order="C"), carried_as


def _a_type(value: Any) -> str:
    """The value's type as a student knows it, with its article: "a jax.Array", "an int", "a generator"."""
    if _from_jax(value) and hasattr(value, "dtype"):
        import jax

        # A jax.Array whatever its concrete class; jax's other objects with a dtype by their own names.
        name = "jax.Array" if isinstance(value, jax.Array) else f"jax.{type(value).__name__}"
    elif isinstance(value, np.ndarray):
        name = "numpy.ndarray"
    else:
        name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _what_to_return_instead(value: Any) -> str:
    """For an object returned where a value was meant: what the student most likely meant to return. Decided on
    type(value) alone, which no submission's class can override (unlike `__class__`)."""
    kind = type(value)
    if issubclass(kind, numbers.Number):  # a Fraction, a Decimal: numbers numpy keeps as objects
        return " (convert it with `float(...)`)"
    if issubclass(kind, types.CoroutineType):
        return " (an `async def` function returns a coroutine: define it with plain `def`)"
    if issubclass(kind, types.GeneratorType | types.AsyncGeneratorType):
        return " (a function with `yield` returns a generator: `return` the value instead)"
    nnx = sys.modules.get("flax.nnx")
    module_type = getattr(nnx, "Module", None) if nnx is not None else None
    if isinstance(module_type, type) and issubclass(kind, module_type):
        return " (return what the module computes, e.g. `model(x)`, not the module itself)"
    if callable(value):  # a function, method or class returned uncalled (callable() looks at the type only)
        return " (call it and return what it returns)"
    return ""


def to_tree(value: Any, leaves: list[np.ndarray], budget: list[int], depth: int = 0,
            path: str = "") -> dict[str, Any]:
    """Describe a returned pytree as JSON and collect its leaves as plain arrays."""
    if depth > MAX_DEPTH:
        raise OutputRejected(f"returned a structure nested more than {MAX_DEPTH} levels deep (or one that contains "
                             "itself)")
    if isinstance(value, tuple | list):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {"t": kind, "c": [to_tree(v, leaves, budget, depth + 1, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        keys = list(value.keys())
        if not all(isinstance(k, str) for k in keys):
            raise OutputRejected("returned a dict with a key that is not a string; only string keys are graded")
        return {"t": "dict", "k": keys,
                "c": [to_tree(value[k], leaves, budget, depth + 1, f"{path}[{_key(k)}]") for k in keys]}
    if len(leaves) >= MAX_LEAVES:
        raise OutputRejected(f"returned more than {MAX_LEAVES:,} arrays and numbers")
    declared = declared_nbytes(value)
    if declared is not None and declared > budget[0]:
        raise OutputRejected(f"returned an array of {declared:,} bytes", kind="output_limit")
    arr, carried_as = _leaf_to_array(value, path)
    budget[0] -= arr.nbytes
    if budget[0] < 0:
        raise OutputRejected("returned more bytes than this problem's output limit", kind="output_limit")
    leaves.append(arr)
    if carried_as is not None:
        return {"t": "leaf", "i": len(leaves) - 1, "d": carried_as}
    return {"t": "leaf", "i": len(leaves) - 1}


def _key(key: str) -> str:
    """A dict key as a path step, clipped: the key is the submission's, and a message has a length cap."""
    return repr(key) if len(key) <= 40 else repr(key[:40]) + "..."


def user_traceback(exc: BaseException) -> str:
    """The traceback of an exception, keeping only frames of the submitted file."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == SUBMISSION_FILENAME]
    lines = ["Traceback (most recent call last, your code only):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)[-8000:]


def _safe_str(exc: BaseException) -> str:
    """str(exc), or a stand-in when the exception's own __str__ raises (submitted classes may do that)."""
    try:
        return str(exc)
    except BaseException:
        return f"<{type(exc).__name__} whose message could not be read>"


def _error_fields(exc: BaseException) -> dict[str, Any]:
    """An exception as the event fields the parent accepts (graders/child_events.py clips nothing: it refuses)."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == SUBMISSION_FILENAME]
        tb = user_traceback(exc)
    except BaseException:
        frames, tb = [], ""
    return {
        "error_type": type(exc).__name__[:MAX_NAME],
        "message": _safe_str(exc)[:4000],
        "traceback": tb[-8000:],
        "line": frames[-1].lineno if frames else None,
    }


def signature_problem(fn: Any, n_args: int) -> str | None:
    """Why `fn` cannot be called with `n_args` positional arguments, or None if it can (or cannot tell)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*range(n_args))
    except TypeError as exc:
        return f"`{getattr(fn, '__name__', 'the function')}{sig}` cannot be called with {n_args} arguments ({exc})"
    return None


def load_program(code: str, function: str, module_name: str = "submission",
                 n_args: int | None = None) -> tuple[dict[str, Any], Any]:
    """Compile and execute a program; return a load event and the function (or None)."""
    try:
        compiled = compile(code, SUBMISSION_FILENAME, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return {"status": "syntax_error", "message": f"{exc.msg}"[:4000], "line": exc.lineno, "offset": exc.offset,
                "text": (exc.text or "").rstrip("\n")[:500]}, None
    except (ValueError, MemoryError, RecursionError) as exc:
        return {"status": "syntax_error", "message": str(exc)[:500], "line": None}, None
    linecache.cache[SUBMISSION_FILENAME] = (len(code), None, code.splitlines(True), SUBMISSION_FILENAME)
    module = types.ModuleType(module_name)
    module.__file__ = SUBMISSION_FILENAME
    sys.modules[module_name] = module
    try:
        exec(compiled, module.__dict__)
    except BaseException as exc:  # the program may raise anything, SystemExit included
        return {"status": "error", **_error_fields(exc)}, None
    fn = module.__dict__.get(function)
    if fn is None:
        return {"status": "invalid", "message": f"no function named `{function}` is defined"}, None
    if not callable(fn):
        return {"status": "invalid", "message": f"`{function}` is {_a_type(fn)}, not a function"[:4000]}, None
    if n_args is not None:
        problem = signature_problem(fn, n_args)
        if problem is not None:
            return {"status": "invalid", "message": problem[:4000]}, None
    return {"status": "ok"}, fn


def _build_args(test: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    import jax.numpy as jnp

    args: list[Any] = []
    for arg in test["args"]:
        if "s" in arg:
            args.append(float(arg["s"]))
        else:
            arr = arrays[arg["a"]]
            dtype = arg.get("dtype", str(arr.dtype))
            args.append(jnp.asarray(arr, dtype=dtype))
    return args


# What jax reports spending on tracing, lowering and compiling (jax.monitoring events, each naming the function):
# summed for the functions the submission defines while its function runs, so a report can say how much of its
# time was the compilation of its own jitted (or transformed) functions.
COMPILE_EVENTS = frozenset(("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                            "/jax/core/compile/backend_compile_duration"))
# A control-flow primitive applied outside any jit (`lax.scan`, `fori_loop`, `lax.map`, `nnx.scan`: "scan";
# `while_loop`: "while"; `cond`, `switch`: "cond") is compiled as a program of its own, named after the primitive,
# around the body the call passed in: the submission's function, compiled anew for every new closure (nnx-scan-layers'
# reference: 70 ms of every call). Eager primitives of the library are named after themselves ("add", "sin") and come
# from the replayed profile; these three never do, as their program holds the body.
EAGER_CONTROL_FLOW = frozenset(("scan", "while", "cond"))
_own_names: set[str] = set()
_own_compile_seconds = [0.0]
_compile_listener: list[Any] = []


def own_compile_seconds() -> float:
    """Seconds jax spent compiling functions named like one the submission defines, and control flow applied
    eagerly (`EAGER_CONTROL_FLOW`), since the first call."""
    if not _compile_listener:
        from jax import monitoring

        def listen(event: str, duration_secs: float, **kwargs: str | int) -> None:
            name = str(kwargs.get("fun_name", ""))
            if name.startswith("jit(") and name.endswith(")"):
                name = name[4:-1]
            if event in COMPILE_EVENTS and (name in _own_names or name in EAGER_CONTROL_FLOW):
                _own_compile_seconds[0] += duration_secs

        monitoring.register_event_duration_secs_listener(listen)
        _compile_listener.append(listen)
    return _own_compile_seconds[0]


def _defined_names(namespace: dict[str, Any]) -> set[str]:
    """Every function name in the submission's code, nested ones included (from its code objects)."""
    names: set[str] = set()
    todo: list[types.CodeType] = []
    for value in list(namespace.values()):
        try:
            if isinstance(value, type) and value.__module__ == SUBMISSION_MODULE:
                todo += [f.__code__ for f in vars(value).values() if isinstance(f, types.FunctionType)]
                continue
            function = inspect.unwrap(value) if hasattr(value, "__wrapped__") else value  # jax.jit, nnx.jit
            if isinstance(function, types.FunctionType) and function.__module__ == SUBMISSION_MODULE:
                todo.append(function.__code__)
        except Exception:  # the submission's objects may be anything; this only names its compile time
            continue
    while todo:
        code = todo.pop()
        names.add(code.co_name)
        todo += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return names


def run_test(fn: Any, test: dict[str, Any], arrays: list[np.ndarray], output_budget: int,
             probes: dict[str, Any] | None = None, program: dict[str, Any] | None = None
             ) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Call the function on one test; with `probes`, also describe the model and run the checks asked
    (graders/child/model_probe.py), whose arrays follow the outputs' in the same message."""
    args = _build_args(test, arrays)
    session = model_probe.Session(probes, program) if probes else None
    module = sys.modules.get(SUBMISSION_MODULE)
    if module is not None and not _own_names:
        _own_names.update(_defined_names(vars(module)))
    compiled_before = own_compile_seconds()
    start = time.perf_counter()
    try:
        with session.around_call() if session is not None else contextlib.nullcontext():
            result = _finished(fn(*args))
    except BaseException as exc:
        return {"status": "error", "duration_ms": _ms(start), **_compile_ms(compiled_before, _ms(start)),
                **_error_fields(exc)}, []
    duration = _ms(start)
    compiled = _compile_ms(compiled_before, duration)
    leaves: list[np.ndarray] = []
    budget = [output_budget]
    try:
        tree = to_tree(result, leaves, budget)
    except OutputRejected as exc:
        message = str(exc)
        if exc.kind == "output_limit":
            message += f"; the output limit is {output_budget:,} bytes"
        return {"status": exc.kind, "duration_ms": duration, **compiled, "message": message[:4000]}, []
    except BaseException as exc:  # __array__ of a returned object may raise anything
        return {"status": "bad_output", "duration_ms": duration, **compiled,
                "message": f"returned a result that could not be converted to arrays: {type(exc).__name__}: "
                           f"{_safe_str(exc)}"[:2000]}, []
    header: dict[str, Any] = {"status": "ok", "duration_ms": duration, **compiled, "tree": tree}
    if session is not None and probes is not None:
        probe_start, probe_cpu = time.perf_counter(), time.process_time()
        results = session.results(fn, args, list(probes.get("arg_names", [])), leaves, budget, to_tree)
        # Wall time, and CPU time (unlike the wall, not inflated by other processes on a loaded machine).
        header["probes"] = {**results, "duration_ms": _ms(probe_start),
                            "cpu_ms": round((time.process_time() - probe_cpu) * 1000, 3)}
    return header, leaves


def _finished(result: Any) -> Any:
    """`result` once the computations behind its arrays have finished (their errors are the submission's). A result
    jax cannot walk (a list that contains itself: a RecursionError inside jax, surfaced as a SystemError) is passed
    on as it is, for `to_tree` to say what is wrong with it: it is not an error the submission's code raised."""
    import jax

    try:
        leaves = jax.tree_util.tree_leaves(result)
    except Exception:
        return result
    jax.block_until_ready(leaves)
    return result


def _compile_ms(before: float, duration_ms: float) -> dict[str, float]:
    """The call's own compile time, when it compiled anything (nested traces may overlap: capped at the call's)."""
    spent = round((own_compile_seconds() - before) * 1000, 3)
    return {"compile_ms": min(spent, duration_ms)} if spent > 0 else {}


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def serve(request: wire.Message, out: BinaryIO, after_program: Callable[[int], None] | None = None,
          held_back: Callable[[], wire.Message] | None = None) -> None:
    """Run every program of a request on every test, writing one message per event. `after_program` (trusted
    callers only: graders/compile_profile.py records the reference's profile) is called after each program.

    A request that holds tests back (`"sealed"`: how many; graders/request.py) gets their inputs from
    `held_back()` once the tests it carries are reported: what was printed so far is flushed first, so the parent
    can tell it from what is printed once the hidden inputs are here."""
    header = request.header
    budget = int(header.get("output_budget", 16 * 1024 * 1024))
    probes = header.get("probes") or None
    if probes:
        model_probe.prepare(probes)
    n_args = len(header["tests"][0]["args"]) if header["tests"] else None
    for p_index, program in enumerate(header["programs"]):
        load, fn = load_program(program["code"], header["function"], n_args=n_args)
        wire.write_message(out, {"event": "load", "program": p_index, **load})
        if fn is not None:
            namespace = getattr(sys.modules.get("submission"), "__dict__", {})  # where a `build` function lives
            t_index = 0
            for tests, arrays, last_shown in _batches(request, held_back):
                for i, test in enumerate(tests):
                    wire.write_message(out, {"event": "start", "program": p_index, "index": t_index})
                    result, leaves = run_test(fn, test, arrays, budget, probes, namespace)
                    if last_shown and i == len(tests) - 1:
                        _flush_prints()
                    wire.write_message(out, {"event": "test", "program": p_index, "index": t_index, **result},
                                       leaves)
                    t_index += 1
        if after_program is not None:
            after_program(p_index)
    wire.write_message(out, {"event": "done"})


def _batches(request: wire.Message, held_back: Callable[[], wire.Message] | None
             ) -> Iterator[tuple[list[dict[str, Any]], list[np.ndarray], bool]]:
    """Each message's tests with the arrays they index, and whether its tests are the last ones shown before hidden
    ones: the request's own, then (when it holds tests back) those `held_back()` reads, only once these are run."""
    sealed = int(request.header.get("sealed", 0))
    yield request.header["tests"], request.arrays, bool(sealed)
    if sealed:
        if held_back is None:
            raise RuntimeError("the request holds tests back and nothing can send them")
        more = held_back()
        yield more.header["tests"], more.arrays, False


def _flush_prints() -> None:
    """Push what was printed into the pipes now (Python buffers a pipe's writes), so it reaches the parent before the
    event that tells it the hidden inputs may follow. Only the interpreter's own streams: a stream the program put
    in their place runs its code (a flush that never returns), and what it holds back only counts as printed later."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if type(stream) is io.TextIOWrapper:
                stream.flush()
        except BaseException:
            pass


def import_libraries() -> None:
    """Import what every problem needs, so a fork of this process starts warm, and lower every program of this
    process into one shared MLIR context (graders/child/mlir_context.py). In every zygote, cold run and trusted
    process: without the collector while importing (graders/child/gc_pause.py)."""
    from graders.child.gc_pause import collection_paused

    with collection_paused():
        import flax.nnx  # noqa: F401
        import jax
        import jax.numpy  # noqa: F401
        import optax  # noqa: F401

    from graders.child import mlir_context

    mlir_context.share_contexts()


def read_request(stream: BinaryIO) -> wire.Message:
    """The request's first message (the only one unless it holds tests back: `read_held_back` reads the rest)."""
    # The request is trusted (the parent built it); its header carries the programs' code, so no header cap.
    return wire.read_one(stream.fileno())


# The harness's exit status when the held-back tests cannot be read: the program read, closed or replaced the
# channel they come on (it found the descriptor). Nothing of gradax failed; the run ends between two tests.
HELD_BACK_LOST = 72


def detach_stdin() -> int:
    """Move the request channel off fd 0 and give the program an empty stdin: `input()` (or `breakpoint()`, or a
    read of `sys.stdin`) left in a submission ends at once with EOFError instead of blocking until the wall-clock
    limit, and cannot take the bytes of the tests still to come. The channel's new descriptor is not inherited by
    a process the program starts (PEP 446)."""
    channel = os.dup(0)
    try:
        null = os.open(os.devnull, os.O_RDONLY)
    except OSError:  # no /dev/null in this sandbox: no stdin at all rather than the channel
        os.close(0)
        return channel
    os.dup2(null, 0)  # fd 0 is still open here, so `null` is another descriptor
    os.close(null)
    return channel


def read_held_back(channel: int) -> wire.Message:
    """The held-back tests, from the channel the request came on (`detach_stdin`)."""
    try:
        return wire.read_one(channel)
    except Exception:  # a truncated or garbled message, a closed descriptor
        # Said before any hidden input is in this process: fixed text, nothing the program chose.
        os.write(2, b"gradax harness: the tests that follow could not be read: the program read, closed or "
                    b"replaced the channel they arrive on\n")
        os._exit(HELD_BACK_LOST)


def apply_seccomp() -> None:
    """In the sandbox, install the syscall filter before anything else runs; refuse to go on without it."""
    if os.environ.pop("GRADAX_SECCOMP", "") != "1":
        return
    program = seccomp.build_filter()
    if program is None:
        print("gradax harness: no seccomp filter for this machine; continuing without one", file=sys.stderr)
        return
    try:
        seccomp.install(program)
    except OSError as exc:
        print(f"gradax harness: cannot install the seccomp filter: {exc}", file=sys.stderr)
        os._exit(70)


def main() -> None:
    apply_seccomp()
    fd = int(os.environ.pop("GRADAX_RESULT_FD", RESULT_FD))
    out = os.fdopen(fd, "wb", buffering=0)
    cache_dir = os.environ.pop("GRADAX_JAX_CACHE_DIR", "")
    import_libraries()
    if cache_dir:  # the replay cache, read-only (graders/sandbox.py run_harness): as in a warm child
        from graders.child import profile_replay

        profile_replay.use_read_only_cache(cache_dir)
    wire.write_message(out, {"event": "ready", "pid": os.getpid()})
    serve_and_exit(read_request(sys.stdin.buffer), out)


def serve_and_exit(request: wire.Message, out: BinaryIO,
                   after_program: Callable[[int], None] | None = None) -> NoReturn:
    """Run the request, close the result pipe, flush what was printed, and leave at once (cold and warm). The request
    was read from stdin; the program gets an empty one (`detach_stdin`)."""
    channel = detach_stdin()
    serve(request, out, after_program, held_back=lambda: read_held_back(channel))
    out.close()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    # Closed before exiting: the parent's log readers reach the end of both pipes now, not once the kernel has
    # torn the process down (~30 ms for a jax process), so the warm pool need not wait for that exit.
    for fd in (1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    # Skip interpreter teardown: a submission's atexit hooks and threads must not change the outcome.
    os._exit(0)


if __name__ == "__main__":
    main()
