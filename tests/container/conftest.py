"""Container fixtures: a Docker engine, the base image, gradax's image built from the repository, and a
scaled-out deployment (web container + worker container) against PostgreSQL and Redis started here.

In CI (`CI=true`) a missing engine fails the run loudly; on a developer machine the tests skip with the
reason (`make test` installs docker.io and mmdebstrap as root).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from service.servers import PostgresServer, RedisServer, ServerUnavailable, free_port

from container import docker as dk

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
IMAGE = "gradax:test"
WEB_UID = 10001  # the Dockerfile's `gradax` user


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unavailable: {exc}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dk.Engine]:
    try:
        eng = dk.Engine(tmp_path_factory.mktemp("docker")).start()
    except dk.DockerUnavailable as exc:
        _unavailable("Docker", exc)
    yield eng
    eng.stop()


@dataclass
class ImageBuild:
    tag: str
    base_built: bool
    build: dk.Build


@pytest.fixture(scope="session")
def image(engine: dk.Engine) -> ImageBuild:
    """The base image (made with mmdebstrap if missing), then gradax's image; the figures go to
    test-artifacts/container-image.json."""
    try:
        base_built = dk.ensure_base_image()
    except dk.DockerUnavailable as exc:
        _unavailable("base image", exc)
    build = dk.build_image(ROOT, IMAGE)
    ARTIFACTS.mkdir(exist_ok=True)
    figures = {"tag": IMAGE, "build_seconds": round(build.seconds, 1), "size_bytes": build.size_bytes,
               "size_mb": round(build.size_bytes / 1e6), "base_image_built": base_built,
               "layers_from_cache": build.log.count("Using cache"), "load": os.getloadavg()}
    (ARTIFACTS / "container-image.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\ngradax image: {figures}")
    return ImageBuild(IMAGE, base_built, build)


def http(method: str, url: str, *, body: dict[str, object] | None = None, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def worker_cgroup_args() -> list[str]:
    """What the worker container needs to make its runs' cgroups on this host (docs/scale.md, "Sandbox").

    cgroup v1 (this build machine): the four controllers the sandbox uses, bind-mounted writable. Docker's
    own /sys/fs/cgroup mount is read-only for any container that is not --privileged.
    """
    root = Path("/sys/fs/cgroup")
    if (root / "memory" / "cgroup.procs").exists():
        args = []
        for controller in ("memory", "pids", "cpuacct", "freezer"):
            source = (root / controller).resolve()
            args += ["--volume", f"{source}:/sys/fs/cgroup/{controller}:rw"]
        return args
    # cgroup v2: the host's hierarchy, writable, in the host's cgroup namespace (so /proc/self/cgroup
    # names the worker's own group in it); gradax makes <own group>/gradax for the runs.
    return ["--cgroupns", "host", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]


# The smallest set that grades here (each one left out was tried: docs/scale.md, "Sandbox"): bwrap runs
# as root without a user namespace, so it needs CAP_SYS_ADMIN for the namespaces and mounts and
# CAP_NET_ADMIN to bring up loopback in the new network namespace; Docker's seccomp profile refuses
# pivot_root.
WORKER_PRIVILEGES = ["--user", "root", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
                     "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"]


@dataclass
class Deployment:
    url: str
    web: dk.Container
    worker: dk.Container
    worker_metrics_url: str
    image: ImageBuild


def _wait_http(url: str, container: dk.Container, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            status, text = http("GET", url, timeout=5)
            if status == 200:
                return
            last = f"{status} {text[:500]}"
        except OSError as exc:
            last = str(exc)
        if not container.running():
            break
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready ({last}); {container.name} log:\n{container.logs()[-5000:]}")


def _wait_log(container: dk.Container, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in container.logs():
            return
        if not container.running():
            break
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not in {container.name}'s log:\n{container.logs()[-5000:]}")


@pytest.fixture(scope="session")
def deployment(image: ImageBuild) -> Iterator[Deployment]:
    """gradax scaled out as docs/scale.md describes: the web container (celery mode, non-root) and one
    worker container, both from the image, on PostgreSQL and Redis started by the test."""
    try:
        postgres = PostgresServer().start()
    except ServerUnavailable as exc:
        _unavailable("PostgreSQL", exc)
    try:
        redis = RedisServer().start()
    except ServerUnavailable as exc:
        postgres.stop()
        _unavailable("Redis", exc)
    web: dk.Container | None = None
    worker: dk.Container | None = None
    try:
        web_port, metrics_port = free_port(), free_port()
        env = {
            "GRADAX_ENVIRONMENT": "production",
            "GRADAX_SECRET_KEY": secrets.token_urlsafe(48),
            "GRADAX_DATABASE_URL": postgres.create_database("gradax_container"),
            "GRADAX_REDIS_URL": redis.url,
            "GRADAX_GRADING_BACKEND": "celery",
            "GRADAX_LOG_LEVEL": "INFO",
        }
        suffix = f"{os.getpid()}"
        web = dk.Container(f"gradax-test-web-{suffix}", image.tag, args=[], env=env,
                           command=["gradax", "serve", "--host", "127.0.0.1", "--port", str(web_port)])
        url = f"http://127.0.0.1:{web_port}"
        _wait_http(url + "/readyz", web, timeout=180)  # the web migrates the database: workers come after
        worker = dk.Container(f"gradax-test-worker-{suffix}", image.tag, args=WORKER_PRIVILEGES + worker_cgroup_args(),
                              env=env, command=["gradax", "worker", "--name", "container-worker",
                                                "--metrics-port", str(metrics_port), "--metrics-host", "127.0.0.1"])
        _wait_log(worker, "ready.", timeout=180)
        yield Deployment(url, web, worker, f"http://127.0.0.1:{metrics_port}/metrics", image)
    finally:
        for container in (worker, web):
            if container is not None:
                log = container.logs()
                ARTIFACTS.mkdir(exist_ok=True)
                (ARTIFACTS / f"container-{container.name.split('-')[2]}.log").write_text(log)
                container.remove()
        redis.cleanup()
        postgres.stop()
