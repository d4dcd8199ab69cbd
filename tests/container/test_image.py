"""The container image, built from the repository's Dockerfile and run the way docs/scale.md says: a web
container and a worker container (grading in the sandbox inside it) against real PostgreSQL and Redis.

The image build is in the session fixture `image` (tests/container/conftest.py); its time and size are
written to test-artifacts/container-image.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from container import docker as dk
from container.conftest import ROOT, WEB_UID, Deployment, ImageBuild, http

pytestmark = [pytest.mark.container, pytest.mark.slow]

API = "/api/v1"
PROBLEM = "nnx-module-basics"
CORRECT = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()
# A known mistake of the problem (the kernel is not scaled), with the diagnosis the report must give.
_MISTAKE = {m["id"]: m for m in yaml.safe_load((ROOT / "problems" / f"{PROBLEM}.yaml").read_text())["known_mistakes"]}
WRONG, WRONG_DIAGNOSIS = _MISTAKE["no-scaling"]["code"], _MISTAKE["no-scaling"]["message"]
# What the image's /srv/gradax holds: exactly what .dockerignore lets in (no .venv, .gradax, .git, caches,
# test-artifacts) plus the bytecode compiled at build time.
IMAGE_TREE = {"pyproject.toml", "README.md", "requirements.lock", "graders", "app", "client", "problems",
              "reference_solutions", "courses"}
SEP = "----gradax-test-part----"


def _proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def test_image_holds_only_the_pinned_context_and_runs_as_gradax(image: ImageBuild) -> None:
    # One container for the four looks inside: with the vfs storage driver every `docker run` copies the whole image
    # (~1.1 GB), 2-3 s of a core each.
    versions = "import importlib.metadata as m; print(m.version('jax'), m.version('flax'), m.version('fastapi'))"
    script = f"set -e; ls -A /srv/gradax; echo {SEP}; id -u; echo {SEP}; python -c \"{versions}\"; echo {SEP}; " \
             "gradax prepare"
    out = dk.docker("run", "--rm", "--network", "none", image.tag, "sh", "-c", script, timeout=300).stdout
    parts = out.split(f"{SEP}\n")
    assert len(parts) == 4, out
    listing, who, pins, summary = parts
    files = set(listing.split())
    assert files == IMAGE_TREE, f"unexpected files in the image: {sorted(files ^ IMAGE_TREE)}"
    assert who.strip() == str(WEB_UID)
    # The lock is what is installed: a few of its pins, checked inside the image.
    lock = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins.split() == [lock["jax"], lock["flax"], lock["fastapi"]]
    assert image.build.size_bytes < 2_500_000_000, f"image is {image.build.size_bytes / 1e6:.0f} MB"
    # The bank was prepared at build time (Dockerfile: RUN gradax prepare): a new container finds every problem
    # prepared and computes nothing before its first submission.
    bank = len(list((ROOT / "problems").glob("*.yaml")))
    assert f"{bank} problems: 0 prepared, {bank} already prepared" in summary, summary


def _compose() -> list[str] | None:
    if dk.docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


def test_compose_file_is_valid_and_asks_for_a_secret(engine: dk.Engine) -> None:
    compose = _compose()
    if compose is None:
        message = "neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if k != "GRADAX_SECRET_KEY"}
    run = [*compose, "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml")]
    refused = subprocess.run([*run, "config"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert refused.returncode != 0 and "GRADAX_SECRET_KEY" in refused.stdout + refused.stderr
    proc = subprocess.run([*run, "config", "--format", "json"] if compose[0] == "docker" else [*run, "config"],
                          capture_output=True, text=True, env={**env, "GRADAX_SECRET_KEY": "s" * 48}, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    config: dict[str, Any] = yaml.safe_load(proc.stdout)
    services = config["services"]
    assert set(services) == {"app", "worker", "postgres", "redis"}
    worker = services["worker"]
    assert worker["user"] == "root" and not worker.get("privileged")
    assert set(worker["cap_add"]) == {"SYS_ADMIN", "NET_ADMIN"}
    assert set(worker["security_opt"]) == {"seccomp=unconfined", "apparmor=unconfined"}
    assert services["app"].get("user") in (None, "gradax")  # the image's non-root user
    assert worker["environment"]["GRADAX_SECRET_KEY"] == "s" * 48


def _register(url: str, username: str) -> dict[str, str]:
    password = "correct horse battery"
    status, text = http("POST", url + f"{API}/auth/register", body={"username": username, "password": password})
    assert status == 201, text
    status, text = http("POST", url + f"{API}/auth/token", form={"username": username, "password": password})
    assert status == 200, text
    return {"Authorization": f"Bearer {json.loads(text)['access_token']}"}


def _grade(deployment: Deployment, headers: dict[str, str], code: str, timeout: float = 600) -> dict[str, Any]:
    status, text = http("POST", deployment.url + f"{API}/submissions", body={"problem_id": PROBLEM, "code": code},
                        headers=headers)
    assert status == 202, text
    attempt = json.loads(text)["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, text = http("GET", deployment.url + f"{API}/submissions/{attempt}?wait=10", headers=headers,
                            timeout=30)
        assert status == 200, text
        body: dict[str, Any] = json.loads(text)
        if body["status"] == "done":
            return body
        assert deployment.worker.running(), deployment.worker.logs()[-5000:]
    raise AssertionError(f"attempt {attempt} not graded in {timeout} s; worker log:\n"
                         f"{deployment.worker.logs()[-5000:]}")


def test_web_container_is_ready_and_not_root(deployment: Deployment) -> None:
    status, text = http("GET", deployment.url + "/readyz")
    assert status == 200, text
    checks = json.loads(text)["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"] and checks["broker"]["ok"]
    assert checks["problems"]["loaded"] > 0
    # The web server's process, seen from the host: uid 10001 and no capabilities at all.
    status_fields = _proc_status(deployment.web.host_pid())
    assert status_fields["Uid"].split() == [str(WEB_UID)] * 4
    assert int(status_fields["CapEff"], 16) == 0
    assert "gradax" in Path(f"/proc/{deployment.web.host_pid()}/cmdline").read_text()


def test_worker_container_grades_in_the_sandbox_through_the_http_api(deployment: Deployment) -> None:
    headers = _register(deployment.url, "container-student")
    right = _grade(deployment, headers, CORRECT)
    report = right["report"]
    assert right["verdict"] == "accepted", json.dumps(right)[:3000]
    assert report["passed"] == report["total"] > 0
    wrong = _grade(deployment, headers, WRONG)
    assert wrong["verdict"] == "wrong_answer", json.dumps(wrong)[:3000]
    assert wrong["report"]["passed"] < wrong["report"]["total"]
    assert wrong["report"]["diagnosis"] == WRONG_DIAGNOSIS
    # The worker container graded them (the web container in celery mode only queues): its own metrics.
    status, metrics = http("GET", deployment.worker_metrics_url)
    assert status == 200
    verdicts = {tuple(sorted(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(metrics) for sample in family.samples
                if sample.name == "gradax_verdicts_total"}
    counted = {dict(labels)["verdict"]: value for labels, value in verdicts.items()}
    assert counted.get("accepted") == 1 and counted.get("wrong_answer") == 1, verdicts
    status, web_metrics = http("GET", deployment.url + "/metrics")
    assert status == 200
    assert 'gradax_queue_depth{status="queued"} 0.0' in web_metrics
    assert 'gradax_queue_depth{status="running"} 0.0' in web_metrics
    assert "gradax_broker_queue_length" in web_metrics


def test_submission_in_the_worker_container_reaches_no_network(deployment: Deployment) -> None:
    """The worker container shares the host's network (--network host): the sandbox's own network namespace
    is what keeps a submission away from PostgreSQL and Redis on 127.0.0.1."""
    headers = _register(deployment.url, "container-prober")
    port = int(deployment.web.inspect()["Config"]["Cmd"][-1])  # type: ignore[index]
    probe = CORRECT + (
        "\n\nimport socket\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
    )
    graded = _grade(deployment, headers, probe)
    assert graded["verdict"] != "accepted", json.dumps(graded)[:3000]
    assert graded["verdict"] != "internal_error", json.dumps(graded)[:3000]
