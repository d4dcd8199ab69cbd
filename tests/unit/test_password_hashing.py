"""Password hashing: the dummy hash that keeps an unknown user's log in as slow as a known one's is made at the
configured cost when an app is set up, not at import (each process importing the app paid ~0.2 CPU-s for it)."""

from __future__ import annotations

import json
import subprocess
import sys

from argon2 import PasswordHasher


def _run(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_importing_the_app_hashes_nothing() -> None:
    code = ("import json, argon2\ncalls = []\noriginal = argon2.PasswordHasher.hash\n"
            "argon2.PasswordHasher.hash = lambda self, *a, **k: calls.append(1) or original(self, *a, **k)\n"
            "import app.main\nfrom app.core import security\n"
            "print(json.dumps({'hashes': len(calls), 'dummy': security._dummy_hash}))")
    assert _run(code) == {"hashes": 0, "dummy": None}


def test_an_app_makes_the_dummy_hash_at_its_configured_cost_and_unknown_users_are_refused() -> None:
    code = ("import json\nfrom app.core import security\n"
            "security.configure_password_hashing(time_cost=1, memory_kib=8192)\n"
            "ready = security._dummy_hash\n"
            "print(json.dumps({'ready': ready, 'unknown': security.verify_password('pw', None),"
            " 'same': security._dummy_hash == ready}))")
    result = _run(code)
    assert result["unknown"] is False and result["same"] is True
    ready = str(result["ready"])
    assert ready.startswith("$argon2id$") and "m=8192,t=1," in ready
    assert not PasswordHasher(time_cost=1, memory_cost=8192).check_needs_rehash(ready)


def test_a_process_that_logs_no_one_in_makes_no_dummy_hash_until_a_log_in_needs_one() -> None:
    code = ("import json\nfrom app.core import security\n"
            "security.configure_password_hashing(time_cost=1, memory_kib=8192, logins=False)\n"
            "before = security._dummy_hash\nrefused = not security.verify_password('pw', None)\n"
            "print(json.dumps({'before': before, 'refused': refused, 'after': security._dummy_hash}))")
    result = _run(code)
    assert result["before"] is None and result["refused"] is True
    assert str(result["after"]).startswith("$argon2id$")
