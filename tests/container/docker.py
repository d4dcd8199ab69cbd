"""A Docker engine for the container tests: the running one, or a `dockerd` started (and stopped) here.

Nothing is pulled from a registry: the base image `debian:bookworm-slim` is built with mmdebstrap from
Debian's packages when the engine does not have it (the same tag users pull from Docker Hub), and gradax's
image is built from the repository's Dockerfile, unchanged. The engine keeps its build cache between runs
(its default data root), so a re-run rebuilds only the layers whose inputs changed.

dockerd is started as this machine allows it: no iptables rules and no bridge, so containers use
`--network host`. It picks its storage driver itself: overlay2 where the kernel and filesystem allow it
(here: ext4), else vfs, which works anywhere but copies the whole image for every layer (slow, disk-hungry).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_IMAGE = "debian:bookworm-slim"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
# What Docker Hub's `-slim` images leave out (debuerreotype's slimification): manuals, docs and
# translations. Kept in the image's dpkg configuration, so later installs leave them out too.
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)


class DockerUnavailable(Exception):
    """No Docker engine and none can be started (or a base image cannot be made)."""


def _env() -> dict[str, str]:
    # The classic builder: it needs no buildx plugin and no frontend image from a registry, and both
    # Debian's docker.io client and newer clients have it.
    return {**os.environ, "DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def docker(*args: str, timeout: float = 120, check: bool = True) -> Result:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=_env())
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return result


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return docker("version", "--format", "{{.Server.Version}}", timeout=20, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


class Engine:
    """The Docker engine the tests use; `stop()` stops dockerd only if `start()` started it."""

    def __init__(self, log_dir: Path):
        self.log_path = log_dir / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Engine:
        if engine_answers():
            return self
        if shutil.which("docker") is None or shutil.which("dockerd") is None:
            raise DockerUnavailable("docker/dockerd not found (apt-get install docker.io)")
        if os.geteuid() != 0:
            raise DockerUnavailable("no Docker engine answers, and starting dockerd needs root")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--iptables=false", "--bridge=none"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 120
        while not engine_answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise DockerUnavailable("dockerd did not start:\n" + self.log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def image_id(ref: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_base_image() -> bool:
    """Make `debian:bookworm-slim` from Debian's packages if the engine lacks it. True if it was built here."""
    if image_id(BASE_IMAGE) is not None:
        return False
    if shutil.which("mmdebstrap") is None:
        raise DockerUnavailable(f"{BASE_IMAGE} is missing and mmdebstrap is not installed (apt-get install mmdebstrap)")
    with tempfile.TemporaryDirectory(prefix="gradax-base-") as tmp:
        tarball = Path(tmp) / "base.tar"
        argv = ["mmdebstrap", "--variant=minbase", "--quiet"]
        argv += [f"--dpkgopt={opt}" for opt in SLIM_DPKG_OPTIONS]
        argv += ["bookworm", str(tarball)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise DockerUnavailable(f"mmdebstrap failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        docker("import", "--change", 'CMD ["bash"]', str(tarball), BASE_IMAGE, timeout=600)
    return True


@dataclass
class Build:
    tag: str
    seconds: float
    size_bytes: int
    log: str


def build_image(context: Path, tag: str, timeout: float = 3600) -> Build:
    """`docker build` of the repository's Dockerfile, unchanged; the image this tag named before is removed."""
    previous = image_id(tag)
    started = time.monotonic()
    # --network host: with --bridge=none a build container has no other network (pip needs PyPI).
    argv = ["build", "--network", "host", "--tag", tag]
    # This machine's local CAs (Debian's place for them), e.g. a TLS-inspecting proxy's, for pip in the
    # build stages; none on an ordinary host.
    local_cas = sorted(LOCAL_CA_DIR.glob("*.crt")) if LOCAL_CA_DIR.is_dir() else []
    if local_cas:
        argv += ["--build-arg", "EXTRA_CA_CERTS=" + "\n".join(p.read_text().strip() for p in local_cas)]
    result = docker(*argv, str(context), timeout=timeout, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise AssertionError(f"docker build failed ({result.returncode}):\n"
                             f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    current = image_id(tag)
    if previous and previous != current:
        # The replaced image and its layers (vfs keeps a full copy per layer); the build cache of layers
        # still in use stays.
        docker("image", "rm", previous, check=False)
    size = int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    return Build(tag, seconds, size, result.stdout)


class Container:
    """A detached container started by the tests and removed (with its anonymous volumes) at the end."""

    def __init__(self, name: str, image: str, *, args: list[str], env: dict[str, str], command: list[str]):
        self.name = name
        argv = ["run", "--detach", "--name", name, "--network", "host"]
        for key, value in env.items():
            argv += ["--env", f"{key}={value}"]
        docker("rm", "--force", "--volumes", name, check=False)
        docker(*argv, *args, image, *command, timeout=300)

    def inspect(self) -> dict[str, object]:
        data = json.loads(docker("inspect", self.name).stdout)
        assert isinstance(data, list) and data
        return dict(data[0])

    def host_pid(self) -> int:
        state = self.inspect()["State"]
        assert isinstance(state, dict)
        return int(state["Pid"])

    def running(self) -> bool:
        state = self.inspect()["State"]
        return isinstance(state, dict) and bool(state.get("Running"))

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str, user: str | None = None, timeout: float = 120) -> Result:
        argv = ["exec", *(["--user", user] if user else []), self.name, *command]
        return docker(*argv, timeout=timeout, check=False)

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, timeout=120, check=False)
