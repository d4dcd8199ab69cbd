"""Check a function from a notebook: `check("nnx-module-basics", module_basics_forward)` in Jupyter or Colab.

The function's source is sent to the server with what it needs from the notebook (the modules it uses, the
helper functions and classes it calls, simple constants), graded like a Submit, and the report comes back as
an object that Jupyter shows as HTML.

    from gradax.client import check, login
    login("https://gradax.example.edu", "ada")          # once; or `gradax login` in a terminal
    check("nnx-module-basics", module_basics_forward)   # the cell's last line: the report shows below
"""

from __future__ import annotations

import builtins
import getpass
import html
import inspect
import linecache
import textwrap
import types
from collections.abc import Callable
from typing import Any

from gradax import config
from gradax.http import ClientError, Server

__all__ = ["CheckResult", "check", "login", "module_source"]

_session: Server | None = None
_CONSTANTS = (int, float, complex, str, bytes, bool, type(None))


def login(server: str, username: str, password: str | None = None, *, save: bool = True) -> None:
    """Log in for `check` (the password is asked for when not given); `save` keeps the token like `gradax login`."""
    global _session
    client = Server(server)
    token = client.login(username, password if password is not None else getpass.getpass(f"Password for {username}: "))
    _session = client
    if save:
        config.save(config.Credentials(server=client.base, username=username, token=token))


def _server(server: str | None) -> Server:
    if _session is not None and (server is None or Server(server).base == _session.base):
        return _session
    saved = config.load()
    if saved is not None and (server is None or Server(server).base == saved.server):
        return Server(saved.server, saved.token)
    raise ClientError("not logged in: call gradax.client.login(SERVER, USERNAME) or run `gradax login` first")


# -- the function's source, with what it needs from the notebook ------------------------------------------------

def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _class_source(cls: type) -> str:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        pass
    # In a notebook the class's module (__main__) has no file: find the cell through one of its methods.
    for member in vars(cls).values():
        fn = getattr(member, "__func__", member)
        code = getattr(fn, "__code__", None)
        if code is None:
            continue
        lines = linecache.getlines(code.co_filename)
        for start in range(code.co_firstlineno - 1, -1, -1):
            if lines[start].lstrip().startswith(f"class {cls.__name__}"):
                return "".join(inspect.getblock(lines[start:]))
    raise OSError(f"cannot find the source of class {cls.__name__}; define it in a cell or a file")


def _source(obj: Any) -> str:
    return textwrap.dedent(_class_source(obj) if isinstance(obj, type) else inspect.getsource(obj))


def _names_used(obj: Any) -> set[str]:
    if isinstance(obj, type):
        names: set[str] = {b.__name__ for b in obj.__bases__}
        for member in vars(obj).values():
            fn = getattr(member, "__func__", member)
            if isinstance(fn, types.FunctionType):
                names |= _code_names(fn.__code__)
        return names
    return _code_names(obj.__code__)


def module_source(fn: Callable[..., Any], name: str | None = None) -> str:
    """A self-contained module defining `fn` as `name`: imports for the modules it uses, the source of the
    notebook functions and classes it calls (recursively), and simple constants."""
    home = fn.__module__
    namespace = fn.__globals__
    imports: list[str] = []
    constants: list[str] = []
    definitions: list[str] = []
    seen: set[int] = set()

    def visit(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for ref in sorted(_names_used(obj)):
            if ref not in namespace or (hasattr(builtins, ref) and namespace.get(ref) is getattr(builtins, ref)):
                continue
            value = namespace[ref]
            if isinstance(value, types.ModuleType):
                line = f"import {value.__name__}" if value.__name__ == ref else f"import {value.__name__} as {ref}"
                if line not in imports:
                    imports.append(line)
            elif isinstance(value, types.FunctionType | type) and getattr(value, "__module__", None) == home:
                visit(value)
            elif getattr(value, "__module__", None) and "<" not in getattr(value, "__qualname__", "<"):
                qual = value.__qualname__
                line = (f"from {value.__module__} import {qual}" if qual == ref
                        else f"from {value.__module__} import {qual} as {ref}")
                if "." not in qual and line not in imports:
                    imports.append(line)
            elif isinstance(value, _CONSTANTS) or (isinstance(value, tuple)
                                                   and all(isinstance(v, _CONSTANTS) for v in value)):
                line = f"{ref} = {value!r}"
                if line not in constants:
                    constants.append(line)
        definitions.append(_source(obj))

    visit(fn)
    parts = ["\n".join(imports), "\n".join(constants), "\n\n".join(definitions)]
    if name and name != fn.__name__:
        parts.append(f"{name} = {fn.__name__}")
    return "\n\n".join(p for p in parts if p) + "\n"


# -- the report ----------------------------------------------------------------------------------------------------

VERDICTS = {
    "accepted": "Accepted", "wrong_answer": "Wrong answer", "runtime_error": "Runtime error",
    "time_limit_exceeded": "Time limit exceeded", "memory_limit_exceeded": "Memory limit exceeded",
    "output_limit_exceeded": "Output limit exceeded", "syntax_error": "Syntax error",
    "invalid_submission": "Invalid submission", "internal_error": "Grader error",
}


class CheckResult:
    """A graded submission; Jupyter shows it as an HTML report, a terminal as text."""

    def __init__(self, submission: dict[str, Any], url: str):
        self.submission = submission
        self.report: dict[str, Any] = submission.get("report") or {}
        self.verdict: str | None = submission.get("verdict")
        self.url = url

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    def __repr__(self) -> str:
        r = self.report
        lines = [f"{VERDICTS.get(self.verdict or '', self.verdict)}: {r.get('passed', 0)}/{r.get('total', 0)} tests"]
        if r.get("message"):
            lines.append(str(r["message"]))
        for t in r.get("tests") or []:
            if t.get("status") != "passed":
                hidden = "" if t.get("public") else " (hidden)"
                lines.append(f"  {t['name']}{hidden}: {t['status']}: {t.get('message')}")
        if r.get("diagnosis"):
            lines.append(f"Likely mistake: {r['diagnosis']}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        r = self.report
        esc = html.escape
        good = self.accepted
        colour = "#137a3a" if good else "#b42318"
        rows = []
        for t in r.get("tests") or []:
            details = []
            if t.get("message") and t.get("status") != "passed":
                details.append(f"<div>{esc(str(t['message']))}</div>")
            if t.get("expected") is not None:
                details.append(f"<pre>expected: {esc(str(t['expected']))}\ngot:      {esc(str(t.get('got')))}</pre>")
            if t.get("traceback") and t.get("public"):
                details.append(f"<pre>{esc(str(t['traceback']))}</pre>")
            status_colour = "#137a3a" if t.get("status") == "passed" else "#b42318"
            rows.append(f"<tr><td>{esc(str(t['name']))}{'' if t.get('public') else ' (hidden)'}</td>"
                        f"<td style='color:{status_colour}'>{esc(str(t.get('status')))}</td>"
                        f"<td>{''.join(details)}</td></tr>")
        parts = [
            "<div class='gradax-report'>",
            f"<h3 style='color:{colour};margin:0.2em 0'>{esc(VERDICTS.get(self.verdict or '', str(self.verdict)))}"
            f" <span style='color:#5d6778;font-weight:normal'>{r.get('passed', 0)}/{r.get('total', 0)} tests passed"
            "</span></h3>",
        ]
        if r.get("message"):
            parts.append(f"<p style='white-space:pre-wrap'>{esc(str(r['message']))}</p>")
        if r.get("diagnosis"):
            parts.append("<div style='background:#fff7e0;border-left:4px solid #7a5200;padding:0.4em 0.7em'>"
                         f"<strong>Likely mistake:</strong> {esc(str(r['diagnosis']))}</div>")
        if rows:
            parts.append("<table><thead><tr><th>test</th><th>status</th><th>details</th></tr></thead><tbody>"
                         + "".join(rows) + "</tbody></table>")
        if r.get("stdout"):
            parts.append(f"<details><summary>Printed output</summary><pre>{esc(str(r['stdout']))}</pre></details>")
        parts.append(f"<p><a href='{esc(self.url)}' target='_blank'>Open the problem page</a></p></div>")
        return "".join(parts)


def check(problem_id: str, fn: Callable[..., Any], *, server: str | None = None, run: bool = False,
          function: str | None = None) -> CheckResult:
    """Submit `fn` (with what it uses from the notebook) for `problem_id` and return the graded report.

    `run=True` runs the public tests only (the Run button). `function` names the problem's function when `fn`
    has another name (by default the server's expected name is looked up)."""
    client = _server(server)
    if function is None:
        function = str(client.request("GET", f"/problems/{problem_id}")["function"])
    code = module_source(fn, function)
    submission = client.submit(problem_id, code, mode="run" if run else "submit")
    return CheckResult(submission, f"{client.base}/problems/{problem_id}")
