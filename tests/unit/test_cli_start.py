"""Every `gradax` command loads the CLI's plugins (serve, user, worker, backup, lti, the student's commands) to build
its parser. Those entry points must not import the web app's ORM or jax: `gradax grade`, `check` and `prepare` would
pay for them at every start (SQLAlchemy and the models were ~0.23 s of a 0.45 s `gradax --help`)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "app.models", "app.main", "fastapi", "jax", "flax")


def test_building_the_cli_parser_imports_no_orm_web_app_or_jax() -> None:
    code = ("import json, sys\nfrom graders.cli import build_parser\nparser = build_parser()\n"
            f"print(json.dumps([sorted(parser._subparsers._group_actions[0].choices), "
            f"[m for m in {HEAVY!r} if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    commands, loaded = json.loads(out.stdout)
    assert {"grade", "check", "prepare", "serve", "user", "worker", "lti", "backup", "submit"} <= set(commands)
    assert loaded == []
