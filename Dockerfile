# gradax: one image for the web app (`gradax serve`, the default command, as the non-root user `gradax`)
# and the grading workers (`gradax worker`, run as root: see "Sandbox" in docs/scale.md).
#
#   docker build -t gradax:0.1.0 .
#
# Built and run by tests/container/test_image.py (marker `container`), which also says what the worker
# container needs: `--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt
# apparmor=unconfined --user root` and a writable cgroup hierarchy. GRADAX_SANDBOX=none turns the
# sandbox off and is for trusted local use only: never set it on a worker.
#
# Stages: `deps` (a virtualenv with exactly requirements.lock: rebuilt only when the lock changes),
# `app` (gradax's own entry points, as a small overlay for that venv), `runtime` (Debian's Python 3.11,
# bubblewrap, the venv, the sources, problems and reference solutions; no compiler, no pip cache).

ARG BASE_IMAGE=debian:bookworm-slim

# ---- deps: the pinned dependencies ---------------------------------------------------------------------
FROM ${BASE_IMAGE} AS deps
# A build behind a TLS-inspecting proxy passes the proxy's CA certificate(s) as PEM text:
#   --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)"
# Only these build stages see it (pip trusts Debian's CA bundle plus these); the runtime image does not.
ARG EXTRA_CA_CERTS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" >> /etc/ssl/certs/ca-certificates.crt; fi \
 && python3.11 -m venv /opt/venv
# requirements.lock is the `pip freeze` of `pip install .`: every runtime dependency, transitive ones too,
# at an exact version; --no-deps so nothing outside it can come in. (tests/unit/test_lockfile.py keeps it
# in step with pyproject.toml.)
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --no-deps -r /tmp/requirements.lock

# ---- app: gradax installed editable (as in development: the engine finds problems/ beside graders/) ------
# Into a separate prefix, so the big venv layer above is not copied again when only gradax changes.
FROM deps AS app
WORKDIR /srv/gradax
COPY pyproject.toml README.md ./
COPY graders ./graders
COPY app ./app
RUN /opt/venv/bin/pip install --no-deps --prefix /opt/gradax-overlay -e .

# ---- runtime --------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# python3.11: the interpreter the venv was made with. bubblewrap: the sandbox (setpriv is in util-linux,
# which every Debian has). Debian stable only takes security fixes, so versions are not pinned here: a
# pinned Debian version disappears from the mirror at the next point release and the build breaks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 bubblewrap \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && groupadd --system --gid 10001 gradax \
 && useradd --system --uid 10001 --gid gradax --home-dir /var/lib/gradax --create-home --shell /usr/sbin/nologin gradax
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /opt/gradax-overlay/ /opt/venv/
WORKDIR /srv/gradax
COPY pyproject.toml README.md ./
COPY graders ./graders
COPY app ./app
COPY problems ./problems
COPY reference_solutions ./reference_solutions
RUN /opt/venv/bin/python -m compileall -q graders app \
 && /opt/venv/bin/gradax --help >/dev/null
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRADAX_DATA_DIR=/var/lib/gradax \
    GRADAX_PROBLEMS_DIR=/srv/gradax/problems \
    GRADAX_LOG_FORMAT=json
# gradax prepare (issue 16, being added): computes reference outputs and compile profiles once, at build
# time, so the first submission of each problem is as fast as the next. Switched on when the command is
# on main:
# RUN gradax prepare
USER gradax
VOLUME ["/var/lib/gradax"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gradax", "serve", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
