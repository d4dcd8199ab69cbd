"""`gradax login / pull / test / submit`: practise from your own editor.

Registered as commands of the full `gradax` console script (entry point group `gradax.commands`) and, for the
client-only install, the `gradax` script of the `gradax-client` distribution (`main` below). Exit codes are those
of `gradax grade`: 0 accepted, 1 graded and not accepted, 2 could not grade (or could not do what was asked).
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradax import config
from gradax.http import ClientError, Server

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_UNGRADABLE = 0, 1, 2


def fail(command: str, message: str) -> int:
    print(f"gradax {command}: {message}", file=sys.stderr)
    return EXIT_UNGRADABLE


def exit_code_for(verdict: str | None) -> int:
    if verdict == "accepted":
        return EXIT_ACCEPTED
    if verdict in (None, "internal_error"):
        return EXIT_UNGRADABLE
    return EXIT_REJECTED


def print_report(report: dict[str, Any]) -> None:
    """The report as `gradax grade` prints it (graders.cli.print_human)."""
    from graders.cli import print_human
    from graders.report import Report

    print_human(Report.model_validate(report))


# -- files written by `gradax pull` -------------------------------------------------------------------------------

def tests_path(folder: Path, problem_id: str) -> Path:
    return folder / f"{problem_id}.tests.json"


def statement_markdown(detail: dict[str, Any], examples: list[dict[str, Any]]) -> str:
    lines = [f"# {detail['title']}", "", "```python", detail["signature"], "```", "", detail["statement"].rstrip(), "",
             "## Public examples", ""]
    for ex in examples:
        lines += [f"### {ex['name']}", ""]
        if ex.get("description"):
            lines += [ex["description"], ""]
        lines += ["```python", ex["snippet"].rstrip(), "```", ""]
        if ex.get("expected_text") is not None:
            lines += ["Expected output:", "", "```", ex["expected_text"], "```", ""]
    lines += [f"Submit also runs {detail['hidden_tests']} hidden tests. "
              f"Tolerance: rtol {detail['tolerance']['rtol']}, atol {detail['tolerance']['atol']}.", ""]
    return "\n".join(lines)


def public_tests_file(detail: dict[str, Any], examples: list[dict[str, Any]], server: str) -> dict[str, Any]:
    """What `gradax test` needs: the problem's signature, tolerance, and each public test's inputs and expected
    output. Only what the problem page shows anyone: no hidden test, no reference code."""
    tests = []
    for ex in examples:
        args = {a["name"]: (a["value"] if a["kind"] == "scalar" else a["values"]) for a in ex["args"]}
        tests.append({"name": ex["name"], "description": ex.get("description", ""), "args": args,
                      "expected": ex.get("expected")})
    problem = {
        "id": detail["id"], "title": detail["title"], "track": detail["track"], "difficulty": detail["difficulty"],
        "statement": "", "function": detail["function"], "returns": detail.get("returns", ""),
        "args": [{k: a[k] for k in ("name", "kind", "dtype", "shape", "description") if a.get(k) is not None}
                 for a in detail["args"]],
        "starter_code": detail["starter_code"], "tolerance": detail["tolerance"],
        "tests": {"public": [{"name": t["name"], "description": t["description"], "args": t["args"]}
                             for t in tests]},
    }
    return {"format": 1, "server": server, "problem": problem, "expected": [t["expected"] for t in tests]}


# -- commands -----------------------------------------------------------------------------------------------------

def cmd_login(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.username} on {args.server}: ")
    server = Server(args.server)
    try:
        token = server.login(args.username, password)
    except ClientError as exc:
        if exc.status == 401:
            return fail("login", f"wrong username or password for {server.base}")
        return fail("login", str(exc))
    path = config.save(config.Credentials(server=server.base, username=args.username, token=token))
    print(f"Logged in to {server.base} as {args.username}; the token is saved in {path} (readable by you only).")
    return EXIT_ACCEPTED


def _server(command: str, explicit: str | None) -> Server | int:
    saved = config.load()
    if explicit:
        token = saved.token if saved and saved.server == Server(explicit).base else None
        return Server(explicit, token)
    if saved is None:
        return fail(command, "not logged in: run `gradax login SERVER --username NAME` first")
    return Server(saved.server, saved.token)


def cmd_pull(args: argparse.Namespace) -> int:
    server = _server("pull", args.server)
    if isinstance(server, int):
        return server
    folder = Path.cwd()
    try:
        detail = server.request("GET", f"/problems/{args.problem_id}")
        examples = server.request("GET", f"/problems/{args.problem_id}/examples", timeout=600)
    except ClientError as exc:
        return fail("pull", str(exc))
    written = []
    statement = folder / f"{args.problem_id}.md"
    statement.write_text(statement_markdown(detail, examples), encoding="utf-8")
    written.append(statement)
    tests = tests_path(folder, args.problem_id)
    tests.write_text(json.dumps(public_tests_file(detail, examples, server.base), indent=1), encoding="utf-8")
    written.append(tests)
    starter = folder / f"{args.problem_id}.py"
    if starter.exists() and not args.force:
        print(f"kept {starter.name} (it exists; --force replaces it with the starter code)")
    else:
        starter.write_text(detail["starter_code"], encoding="utf-8")
        written.append(starter)
    for path in written:
        print(f"wrote {path.name}")
    print(f"Next: edit {starter.name}, then `gradax test {args.problem_id} {starter.name}` (public tests, offline) "
          f"and `gradax submit {args.problem_id} {starter.name}`.")
    return EXIT_ACCEPTED


def cmd_test(args: argparse.Namespace) -> int:
    folder = Path.cwd()
    path = tests_path(folder, args.problem_id)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return fail("test", f"no {path.name} here: run `gradax pull {args.problem_id}` in this folder first")
    except (OSError, ValueError) as exc:
        return fail("test", f"cannot read {path.name}: {exc}")
    try:
        code = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        return fail("test", f"cannot read {args.file}: {exc.strerror}")
    except UnicodeDecodeError:
        return fail("test", f"{args.file} is not UTF-8 text")
    if importlib.util.find_spec("jax") is None or importlib.util.find_spec("flax") is None:
        return fail("test", "running your code needs jax and flax in this Python (pip install jax flax)")
    from graders.local import grade_public, output_from_json, public_problem

    if any(e is None for e in saved["expected"]):
        return fail("test", "the server could not compute every expected output; pull again later")
    problem = public_problem(saved["problem"])
    report = grade_public(problem, [output_from_json(e) for e in saved["expected"]], code)
    if args.json:
        print(json.dumps(report.to_json_dict(), indent=2))
    else:
        print_report(report.to_json_dict())
        print("(public tests only, run here without the sandbox; `gradax submit` runs every test)")
    return exit_code_for(report.verdict.value)


def cmd_submit(args: argparse.Namespace) -> int:
    server = _server("submit", args.server)
    if isinstance(server, int):
        return server
    try:
        code = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        return fail("submit", f"cannot read {args.file}: {exc.strerror}")
    except UnicodeDecodeError:
        return fail("submit", f"{args.file} is not UTF-8 text")
    try:
        sub = server.submit(args.problem_id, code, mode="run" if args.run else "submit")
    except ClientError as exc:
        return fail("submit", str(exc))
    report = sub.get("report") or {}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
        print(f"{server.base}/problems/{args.problem_id} shows this attempt (#{sub['id']}) too.")
    return exit_code_for(sub.get("verdict"))


# -- registration -------------------------------------------------------------------------------------------------

def register_login(sub: Any) -> None:
    p = sub.add_parser("login", help="log in to a gradax server and keep the token in your config directory")
    p.add_argument("server", help="e.g. https://gradax.example.edu")
    p.add_argument("--username", required=True)
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(func=cmd_login)


def register_pull(sub: Any) -> None:
    p = sub.add_parser("pull", help="write a problem's statement, starter code and public tests into this folder")
    p.add_argument("problem_id")
    p.add_argument("--server", help="another server than the one you logged in to")
    p.add_argument("--force", action="store_true", help="replace PROBLEM.py with the starter code")
    p.set_defaults(func=cmd_pull)


def register_test(sub: Any) -> None:
    p = sub.add_parser("test", help="run the public tests on FILE here, offline, as Run does")
    p.add_argument("problem_id")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the report as JSON and nothing else")
    p.set_defaults(func=cmd_test)


def register_submit(sub: Any) -> None:
    p = sub.add_parser("submit", help="submit FILE to the server and print the report")
    p.add_argument("problem_id")
    p.add_argument("file")
    p.add_argument("--run", action="store_true", help="public tests only (the Run button)")
    p.add_argument("--server", help="another server than the one you logged in to")
    p.add_argument("--json", action="store_true", help="print the report as JSON and nothing else")
    p.set_defaults(func=cmd_submit)


COMMANDS = (register_login, register_pull, register_test, register_submit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradax", description="Practise gradax problems from your own editor.")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """The client-only `gradax` (gradax-client): the four student commands."""
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
