"""Schema fuzzing: schemathesis generates requests from /openapi.json (valid and invalid); none may get a 5xx.

Runs against `create_app()` in-process (ASGI) with a fresh SQLite file and an authenticated student, so the
authenticated paths (submissions, drafts, hints) are fuzzed too, not only the 401s. The example count per
operation is bounded (GRADAX_FUZZ_EXAMPLES, default 25) to keep the run to a minute or two.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from app.core.config import Settings
from app.main import create_app

# Thousands of generated requests: tens of seconds on an idle machine, so not in `make test-fast`.
pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("GRADAX_FUZZ_EXAMPLES", "25"))
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'fuzz.db'}",
                              secret_key="fuzz-secret-" + "x" * 40, grading_workers=0, submit_rate=0,
                              max_backlog=0, argon2_time_cost=1, argon2_memory_kib=8192))
    with TestClient(app) as client:
        r = client.post("/api/v1/auth/register", json={"username": "fuzzer", "password": PASSWORD})
        assert r.status_code == 201, r.text
        token = client.post("/api/v1/auth/token", data={"username": "fuzzer", "password": PASSWORD}).json()
        yield app, {"Authorization": f"Bearer {token['access_token']}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_never_get_a_server_error(fuzz_app: tuple[object, dict[str, str]],
                                                  mode: GenerationMode) -> None:
    """Every operation of /openapi.json, with schema-valid (positive) and schema-violating (negative) data."""
    app, headers = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        if operation.path.endswith("/auth/logout"):
            continue  # it would end the fuzzer's own session and leave every later operation at 401 (test_auth)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            fuzz()
        except Unsatisfiable:  # negative mode on an operation without inputs: nothing to violate
            continue
        except Exception as exc:  # keep going: one report with every operation that failed
            failures[operation.label] = str(exc)[:2000]
    assert operations >= 10  # the whole API was fuzzed, not an empty schema
    details = "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert not failures, f"server errors in {sorted(failures)}:\n{details}"
