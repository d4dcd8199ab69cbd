"""Liveness (/healthz), readiness (/readyz) and Prometheus metrics (/metrics), outside /api/v1.

Liveness says only that the process answers (a failing liveness probe restarts the container). Readiness
says whether this process should get traffic: database reachable and migrated, problems loaded, broker
reachable when grading goes through the queue.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text

from app.api.deps import BankDep, BrokerProbeDep, EngineDep
from app.grading.celery_app import BrokerProbe
from app.observability import schema_state
from graders.problem import ProblemBank

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
def read_liveness() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _readiness(engine: Engine, bank: ProblemBank, probe: BrokerProbe | None) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
        current, head = schema_state(engine)
        checks["migrations"] = {"ok": current == head, "current": current, "head": head}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    count = len(bank.problems)
    checks["problems"] = {"ok": count > 0, "loaded": count, "errors": len(bank.errors)}
    if probe is not None:
        error = probe.ping()
        checks["broker"] = {"ok": error is None, **({"error": error} if error else {})}
    return all(c.get("ok") for c in checks.values()), checks


@router.get("/readyz", include_in_schema=False)
async def read_readiness(engine: EngineDep, bank: BankDep, probe: BrokerProbeDep) -> Response:
    """200 when ready to serve, else 503 with the failing checks."""
    ready, checks = await run_in_threadpool(_readiness, engine, bank, probe)
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def read_metrics() -> Response:
    """Prometheus text format."""
    body = await run_in_threadpool(generate_latest)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
