# gradax: one image for the web app (`gradax serve`, the default command, as the non-root user `gradax`)
# and the grading workers (`gradax worker`, run as root: see "Sandbox" in docs/scale.md).
#
#   docker build -t gradax:0.1.0 .
#
# Built and run by tests/container/test_image.py (marker `container`), which also shows what the worker
# container needs: `--user root --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt
# apparmor=unconfined` and a writable cgroup hierarchy. GRADAX_SANDBOX=none turns the sandbox off and is
# for trusted local use only: never set it on a worker.
#
# Stages: `python` (Debian's Python 3.11 and an empty venv), `deps` (the venv with exactly
# requirements.lock: rebuilt only when the lock changes), `app` (gradax's entry points as a small overlay
# for that venv, and the sources compiled), `runtime` (Python, bubblewrap, the venv, the sources; no
# compiler, no pip cache, no build tools). Few layers on purpose: every layer of a storage driver such as
# vfs is a full copy of the image.

ARG BASE_IMAGE=debian:bookworm-slim

# ---- python: the interpreter and an empty virtualenv at the path it keeps at run time ------------------
FROM ${BASE_IMAGE} AS python
# A build behind a TLS-inspecting proxy passes the proxy's CA certificate(s) as PEM text:
#   --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)"
# Only the build stages see it (pip trusts Debian's CA bundle plus these); the runtime image does not.
ARG EXTRA_CA_CERTS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" >> /etc/ssl/certs/ca-certificates.crt; fi \
 && python3.11 -m venv /opt/venv

# ---- deps: the pinned dependencies ---------------------------------------------------------------------
FROM python AS deps
# requirements.lock is the `pip freeze` of `pip install .`: every runtime dependency, transitive ones too,
# at an exact version; --no-deps so nothing outside it comes in (tests/unit/test_lockfile.py keeps it in
# step with pyproject.toml).
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements.lock

# ---- app: gradax installed editable (as in development: the engine finds problems/ beside graders/) ------
# Into its own prefix, so the big dependency layer is not copied again when only gradax changes.
FROM python AS app
WORKDIR /srv/gradax
# The build context is an allow-list (.dockerignore): sources, problems, reference solutions, courses.
COPY . .
RUN /opt/venv/bin/pip install --no-deps --prefix /opt/gradax-overlay -e . \
 && rm -rf gradax.egg-info build \
 && /opt/venv/bin/python -m compileall -q graders app

# ---- runtime --------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# python3.11: the interpreter the venv was made with. bubblewrap: the sandbox (setpriv and mount come
# with util-linux and mount, which every Debian has). Debian stable only takes security fixes, so versions
# are not pinned: a pinned Debian version leaves the mirror at the next point release and the build breaks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 bubblewrap \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gradax \
 && useradd --system --uid 10001 --gid gradax --home-dir /var/lib/gradax --create-home --shell /usr/sbin/nologin gradax
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/gradax-overlay/ /opt/venv/
COPY --from=app /srv/gradax /srv/gradax
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRADAX_DATA_DIR=/var/lib/gradax \
    GRADAX_PROBLEMS_DIR=/srv/gradax/problems \
    GRADAX_COURSES_DIR=/srv/gradax/courses \
    GRADAX_LOG_FORMAT=json
WORKDIR /srv/gradax
USER gradax
# The bank prepared at build time (reference and known-mistake outputs, compile profiles, the warm children's
# replay cache) into the data dir, as the user that serves it, before VOLUME: a new container's volume
# starts with it, so the first submission of each problem is graded at warm speed at once. Trusted
# processes only, no sandbox, so it runs in an unprivileged build. (The replay cache holds XLA CPU programs:
# build on the kind of machine that runs the image; elsewhere the server prepares again in the background.)
RUN gradax prepare
VOLUME ["/var/lib/gradax"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gradax", "serve", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
