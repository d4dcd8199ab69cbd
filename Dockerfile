# syntax=docker/dockerfile:1
# gradax: one image for the web app (`gradax serve`) and the grading workers (`gradax worker`).
# See docs/scale.md ("Running at scale") for compose and what the grading sandbox needs from the host.
#
# Build:   docker build -t gradax:0.1.0 .
#
# The sandbox, honestly:
# - Grading runs submitted code under bubblewrap (user, PID, mount, network namespaces) and setpriv, and
#   limits it with cgroups (graders/cgroup.py): the v1 controllers memory, pids, cpuacct, freezer when
#   they are mounted, else cgroup v2 (memory, pids, cpu). It needs root in the container, namespaces the
#   default Docker seccomp/AppArmor profiles forbid, and a writable cgroup hierarchy. So the *worker*
#   container runs as root with `--privileged` (or at least `--cap-add SYS_ADMIN --security-opt
#   seccomp=unconfined --security-opt apparmor=unconfined` plus a writable /sys/fs/cgroup).
#   On a cgroup v2-only host (most current distributions and Docker Desktop) the worker needs a
#   delegated, writable v2 subtree: its own cgroup namespace (`--cgroupns=private`, Docker's default on
#   v2) with /sys/fs/cgroup writable (`--privileged` does that), and NOT the host's /sys/fs/cgroup
#   bind-mounted (that hierarchy is not the one /proc/self/cgroup describes; grading fails closed and
#   says so). gradax then makes <own cgroup>/gradax for the runs and moves itself to
#   <own cgroup>/gradax-host, so no other long-lived process may share its cgroup (compose's worker runs
#   `gradax worker` directly as PID 1, no shell).
#   Anything missing fails closed with `internal_error` and the reason. The v2 backend is verified only
#   against a fake cgroupfs in unit tests (the build machine is cgroup v1): check it on your host.
# - The *web* container never runs submitted code when GRADAX_GRADING_BACKEND=celery: it runs as the
#   unprivileged `gradax` user with Docker's default profiles.
# - GRADAX_SANDBOX=none turns the sandbox off and is for trusted local use only; never set it here.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# ---- builder: a virtualenv with the exact versions of requirements.lock, then gradax itself ----------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
# Dependencies first (their own layer: rebuilt only when the lock changes). requirements.lock is the
# `pip freeze` of `pip install .` (the runtime dependencies of pyproject.toml, transitive ones pinned too).
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements.lock
WORKDIR /srv/gradax
COPY pyproject.toml README.md ./
COPY graders ./graders
COPY app ./app
# Editable, as in development: the engine finds problems/ and reference_solutions/ beside graders/.
RUN /opt/venv/bin/pip install --no-deps -e . \
 && /opt/venv/bin/python -m compileall -q /srv/gradax/graders /srv/gradax/app

# ---- runtime: slim Python, the sandbox's system packages, a non-root user ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# bubblewrap: the sandbox; util-linux: setpriv. Versions pinned to Debian 12 (bookworm) as tested.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap=0.8.0-2+deb12u1 util-linux=2.38.1-5+deb12u3 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 gradax \
 && useradd --system --uid 10001 --gid gradax --home-dir /var/lib/gradax --create-home --shell /usr/sbin/nologin gradax
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv/gradax /srv/gradax
COPY problems /srv/gradax/problems
COPY reference_solutions /srv/gradax/reference_solutions
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRADAX_DATA_DIR=/var/lib/gradax \
    GRADAX_PROBLEMS_DIR=/srv/gradax/problems \
    GRADAX_LOG_FORMAT=json
WORKDIR /srv/gradax
USER gradax
VOLUME ["/var/lib/gradax"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gradax", "serve", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
