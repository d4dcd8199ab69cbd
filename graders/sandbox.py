"""Run the grading harness in a child process, contained by bubblewrap and cgroups.

Layers, outermost first:
- a per-run cgroup (graders/cgroup.py: v1 memory, pids, cpuacct, freezer, or one v2 group) joined
  before `exec`, so every descendant is limited, accounted and killable even after `setsid` and double
  forks;
- rlimits: no core files, capped file size and open files;
- bubblewrap: new PID, network, IPC, UTS and cgroup namespaces, a root made only of read-only binds
  of the system, the Python installation, the virtualenv and the child code (graders/child/ and
  graders/wire.py, nothing else of gradax), a private size-capped tmpfs at /tmp, cleared environment,
  `--die-with-parent`, `--new-session`;
- `setpriv`: the program runs as `nobody` with no capabilities and `no_new_privs`.

Time is enforced from outside: the parent judges the group's CPU time against the limit (so a busy
machine never turns a correct answer into a time limit), keeps a wall-clock backstop for runs that
sleep or wait, and kills the whole group (graders/supervision.py, the same loop as the warm pool's).
Results come back only as validated events (graders/child_events.py) on a pipe the parent created; every
byte from the child is hostile input, decoded in one linear pass with caps (graders/wire.py) by reader
threads that never die silently. stdout and stderr are drained and capped. The host never opens a path
the sandbox could have written.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from graders import cgroup
from graders.jax_env import jax_env
from graders.jax_env import trusted_env as trusted_process_env
from graders.supervision import ChildOutcome, ChildPipes, RunMeter, SandboxLimits, finish_group, supervise

GRADERS_DIR = Path(__file__).resolve().parent
SANDBOX_CODE_ROOT = "/opt/gradax"
# All of gradax the sandbox sees: the code that runs there (graders/child/) and the wire format it speaks,
# read-only. The parent side (problems, references, comparison, reports, settings) is never mounted.
SANDBOXED_CODE = ("__init__.py", "child", "wire.py")
VENV_MOUNT = f"{SANDBOX_CODE_ROOT}/venv"
# Where a sandbox sees the replay cache (read-only): warm children and, for a prepared problem, cold runs.
JAX_CACHE_MOUNT = "/opt/gradax-jax-cache"
NOBODY = 65534
_HARNESS_BOOT = (
    f"import sys; sys.path.insert(0, {SANDBOX_CODE_ROOT!r}); "
    "import graders.child.harness as h; h.main()"
)


class SandboxError(Exception):
    """The sandbox could not be started: grading must fail closed."""


def _ancestors(path: Path) -> list[str]:
    parts = []
    for parent in reversed(path.parents):
        if str(parent) != "/":
            parts.append(str(parent))
    return parts


def replay_cache_mount(jax_cache_dir: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The replay cache as a sandbox (a cold harness, the zygote) sees it: bound read-only at `JAX_CACHE_MOUNT`,
    and named by GRADAX_JAX_CACHE_DIR, which the process pops before it configures jax with it. The bind and
    the environment of `bwrap_argv`."""
    return [(str(jax_cache_dir), JAX_CACHE_MOUNT)], {"GRADAX_JAX_CACHE_DIR": JAX_CACHE_MOUNT}


def bwrap_argv(limits: SandboxLimits, result_fd: int, command: Sequence[str],
               extra_ro_binds: Sequence[tuple[str, str]] = (), extra_env: Mapping[str, str] | None = None) -> list[str]:
    """The bubblewrap command line; only read-only binds of code, never project data."""
    bwrap = shutil.which("bwrap")
    setpriv = shutil.which("setpriv")
    shell = shutil.which("sh")
    if not bwrap:
        raise SandboxError("bubblewrap (bwrap) is not installed; install the Debian package 'bubblewrap'")
    mount = shutil.which("mount")
    if not setpriv or not shell or not mount:
        raise SandboxError("setpriv, mount or sh (util-linux, dash) is not installed")
    for tool in (setpriv, shell, mount):
        if not os.path.realpath(tool).startswith("/usr/"):
            raise SandboxError(f"{tool} is not under /usr, so it would not exist inside the sandbox")
    argv = [
        bwrap,
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--clearenv",
        "--hostname", "sandbox",
    ]
    # The system: /usr read-only, merged-/usr symlinks recreated.
    argv += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), f"/{link}"]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), f"/{link}"]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(etc):
            argv += ["--ro-bind", etc, etc]
    binds: list[tuple[str, str]] = []
    base = os.path.realpath(sys.base_prefix)
    if not base.startswith("/usr"):
        binds.append((base, base))
    if _in_venv():
        # The virtualenv gets a fixed place: a checkout under /tmp would otherwise be hidden by the
        # sandbox's own /tmp. A venv finds itself from its interpreter's path, so it can move.
        binds.append((sys.prefix, VENV_MOUNT))
    binds += [(str(GRADERS_DIR / name), f"{SANDBOX_CODE_ROOT}/graders/{name}") for name in SANDBOXED_CODE]
    binds += list(extra_ro_binds)
    made: set[str] = {"/usr", "/tmp"}
    for src, dest in sorted(set(binds), key=lambda b: b[1]):
        # bwrap creates missing parents with mode 0700, which `nobody` cannot traverse.
        for parent in _ancestors(Path(dest)):
            if parent not in made:
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += ["--ro-bind", src, dest]
        made.add(dest)
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--dir", "/tmp"]
    env = {
        "HOME": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **jax_env(),
        "TMPDIR": "/tmp", "GRADAX_RESULT_FD": str(result_fd), "PYTHONDONTWRITEBYTECODE": "1",
        "GRADAX_SECCOMP": "1",
        "PYTHONHASHSEED": "0",
        **(extra_env or {}),
    }
    for key, value in env.items():
        argv += ["--setenv", key, value]
    # bwrap's --tmpfs takes a size but no inode count, so a fixed root shell mounts the private /tmp
    # (size- and inode-capped) with the one capability it keeps, then setpriv drops to `nobody` with no
    # capabilities at all before anything of the submission runs.
    mount_tmp = (f"{shlex.quote(os.path.realpath(mount))} -t tmpfs "
                 "-o size=$1,nr_inodes=$2,mode=1777,nosuid,nodev gradax-tmp /tmp && cd /tmp && shift 2 && exec \"$@\"")
    argv += [
        "--cap-add", "CAP_SYS_ADMIN",
        "--", shell, "-c", mount_tmp, "gradax-mount-tmp",
        str(limits.tmpfs_mb * 1024 * 1024), str(limits.tmpfs_inodes),
        setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs",
        "--bounding-set=-all", "--inh-caps=-all",
    ]
    return argv + list(command)


def _in_venv() -> bool:
    return sys.prefix != sys.base_prefix and os.path.abspath(sys.executable).startswith(sys.prefix + os.sep)


def sandbox_python() -> str:
    """The path of this interpreter as seen inside the sandbox (the virtualenv is mounted at VENV_MOUNT)."""
    if not _in_venv():
        return sys.executable
    return f"{VENV_MOUNT}/{os.path.relpath(os.path.abspath(sys.executable), sys.prefix)}"


def harness_command(*, sandboxed: bool = True) -> list[str]:
    """The harness command line: the interpreter's sandbox path inside bwrap, its host path outside."""
    return [sandbox_python() if sandboxed else sys.executable, "-B", "-s", "-c", _HARNESS_BOOT]


def _limit_resources(limits: SandboxLimits, procs_files: list[str]) -> Callable[[], None]:
    def apply() -> None:
        # Runs in the forked child before exec: join the run's cgroups, then cap what rlimits cap.
        cgroup.join_self(procs_files)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        size = limits.file_size_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        cpu = int(limits.time_s + limits.startup_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    return apply


def run_harness(request: bytes, limits: SandboxLimits, *, sandboxed: bool = True,
                extra_ro_binds: Sequence[tuple[str, str]] = (), trusted_command: Sequence[str] | None = None,
                trusted_env: Mapping[str, str] | None = None, jax_cache_dir: Path | None = None) -> ChildOutcome:
    """Start a harness child, feed it `request`, and watch it until it finishes or is killed.

    Unsandboxed (trusted code only), `trusted_command` replaces the harness's command line (it must speak the
    harness's protocol) and `trusted_env` adds to its environment. Sandboxed, `jax_cache_dir` (the replay cache,
    when it exists) is bound read-only where the harness compiles through it, as a warm child does: a cold run
    of a prepared problem then loads the library programs its replay compiled instead of compiling them.
    """
    if sandboxed and (trusted_command is not None or trusted_env is not None):
        raise ValueError("a sandboxed run always runs the harness itself")
    outcome = ChildOutcome(sandboxed=sandboxed)
    group: cgroup.RunCgroup | None = None
    read_fd, write_fd = os.pipe()
    pass_fds = [write_fd]
    try:
        if sandboxed:
            group = cgroup.RunCgroup(limits.memory_mb * 1024 * 1024, limits.pids)
            binds, cache_env = list(extra_ro_binds), None
            if jax_cache_dir is not None and jax_cache_dir.is_dir():
                cache_binds, cache_env = replay_cache_mount(jax_cache_dir)
                binds += cache_binds
            argv = bwrap_argv(limits, write_fd, harness_command(), binds, cache_env)
            preexec = _limit_resources(limits, group.procs_files())
            env: dict[str, str] | None = {}
            cwd = "/"
        else:
            argv = list(trusted_command) if trusted_command is not None else harness_command(sandboxed=False)
            preexec = None
            env = trusted_process_env(GRADAX_RESULT_FD=str(write_fd), **(trusted_env or {}))
            cwd = "/tmp"
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=pass_fds, preexec_fn=preexec, env=env, cwd=cwd,
            start_new_session=not sandboxed,
        )
    except (cgroup.CgroupUnavailable, SandboxError, OSError, subprocess.SubprocessError) as exc:
        os.close(read_fd)
        for fd in pass_fds:
            os.close(fd)
        if group is not None:
            group.remove()
        outcome.start_error = f"the sandbox could not start: {exc}"
        return outcome
    for fd in pass_fds:
        os.close(fd)
    try:
        _watch(proc, request, read_fd, limits, group, outcome)
    finally:
        if group is not None:
            finish_group(group, outcome)
        elif proc.poll() is None:
            _kill_session(proc)
    return outcome


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def _watch(proc: subprocess.Popen[bytes], request: bytes, read_fd: int, limits: SandboxLimits,
           group: cgroup.RunCgroup | None, outcome: ChildOutcome) -> None:
    assert proc.stdin and proc.stdout and proc.stderr
    meter = RunMeter.of_group(group) if group is not None else RunMeter.of_process(proc.pid)
    pipes = ChildPipes(stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr, result_fd=read_fd,
                       request=request, limits=limits, cpu=meter.cpu,
                       memory_peak=group.memory_peak if group is not None else None)

    def exit_code(timeout: float | None) -> int | None:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill() -> None:
        if group is not None:
            group.kill_all()
        else:
            _kill_session(proc)

    supervise(pipes, meter, limits, outcome, startup_s=limits.startup_s, exit_code=exit_code, kill=kill)


def warn_unsandboxed() -> None:
    message = ("GRADAX_SANDBOX=none: submissions run WITHOUT a sandbox. Use this only for trusted code "
               "on your own machine, never on a server.")
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    print(f"WARNING: {message}", file=sys.stderr)
