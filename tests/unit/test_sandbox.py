"""The sandbox itself: fail closed, the limits it sets (observed from inside), cleanup, the filter."""

from __future__ import annotations

import errno
import re
import shutil
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from graders import cgroup, wire
from graders.child import seccomp
from graders.sandbox import SandboxLimits, run_harness

ROOT = Path(__file__).resolve().parent.parent.parent
REFERENCE = ROOT / "reference_solutions" / "nnx_module_basics.py"
UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def request(code: str, output_budget: int = 1024 * 1024) -> bytes:
    """A harness request for `f(a)` called once with a = 1.0: no problem file needed."""
    header = {"function": "f", "programs": [{"code": code}], "tests": [{"name": "t", "args": [{"s": 1.0}]}],
              "output_budget": output_budget}
    return wire.encode(header)


def test_missing_bwrap_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name))
    outcome = run_harness(request("def f(a):\n    return a\n"), SandboxLimits())
    assert outcome.start_error and "bubblewrap" in outcome.start_error
    assert outcome.messages == []


def test_missing_cgroups_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup, "available", lambda: "cgroup v1 controller 'memory' is not mounted")
    outcome = run_harness(request("def f(a):\n    return a\n"), SandboxLimits())
    assert outcome.start_error and "not mounted" in outcome.start_error


@pytest.mark.slow  # computes the reference outputs (outside the sandbox) on a cold cache
def test_cli_without_bwrap_reports_internal_error(gradax: Any) -> None:
    result = gradax("grade", "nnx-module-basics", str(REFERENCE), "--json", env={"PATH": "/nonexistent"})
    report = result.json()
    assert report["verdict"] == "internal_error"
    assert "bubblewrap" in report["message"]
    assert result.returncode == 2


@pytest.mark.slow
def test_cli_sandbox_none_grades_and_warns(gradax: Any) -> None:
    result = gradax("grade", "nnx-module-basics", str(REFERENCE), "--json", env={"GRADAX_SANDBOX": "none"})
    assert result.json()["verdict"] == "accepted"
    assert "WITHOUT a sandbox" in result.stderr


PROBE = r'''
import os, resource, socket, ctypes

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split()[1]

def _socket_errno(family, kind):
    try:
        socket.socket(family, kind).close()
        return 0
    except OSError as exc:
        return exc.errno

def f(a):
    st = os.statvfs("/tmp")
    libc = ctypes.CDLL(None, use_errno=True)
    return {
        "uid": os.getuid(), "gid": os.getgid(),
        "caps_effective": int(status("CapEff"), 16), "caps_bounding": int(status("CapBnd"), 16),
        "no_new_privs": int(status("NoNewPrivs")), "seccomp_mode": int(status("Seccomp")),
        "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0], "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
        "tmp_bytes": st.f_blocks * st.f_frsize, "tmp_inodes": st.f_files,
        "host_env_seen": int(any("GRADAX_TEST" in k or "SECRET" in v for k, v in os.environ.items())),
        "pid": os.getpid(),
        "interfaces": len(open("/proc/net/dev").read().splitlines()) - 2,
        "netlink_errno": _socket_errno(socket.AF_NETLINK, socket.SOCK_RAW),
        "vsock_errno": _socket_errno(40, socket.SOCK_STREAM),
        "ptrace_errno": (libc.syscall(101, 0, 0, 0, 0), ctypes.get_errno())[1],
        "unshare_errno": (libc.unshare(0x10000000), ctypes.get_errno())[1],
        "problems_visible": int(os.path.exists("ROOT/problems") or os.path.exists("ROOT/reference_solutions")),
        "root_writable": int(os.access("/", os.W_OK) or os.access("/usr", os.W_OK)),
    }
'''


@pytest.mark.slow
def test_limits_seen_from_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    groups: list[cgroup.RunCgroup] = []
    real = cgroup.RunCgroup

    here = threading.get_ident()

    def recording(*args: Any, **kwargs: Any) -> cgroup.RunCgroup:
        made = real(*args, **kwargs)
        # Only this run's group (made in this thread): a warm pool another test in this worker left running makes
        # groups in its own threads, for ready children that wait in them (CI 2026-12-05 counted one of those).
        if threading.get_ident() == here:
            groups.append(made)
        return made

    monkeypatch.setattr(cgroup, "RunCgroup", recording)
    monkeypatch.setenv("GRADAX_TEST_SECRET", "SECRET-value")
    limits = SandboxLimits(time_s=60)
    outcome = run_harness(request(PROBE.replace("ROOT", str(ROOT))), limits)
    test = outcome.events("test")
    assert test and test[0].event.status == "ok", (outcome.messages, outcome.stderr[-2000:])
    keys = test[0].event.tree.k
    seen = {k: int(a) for k, a in zip(keys, test[0].arrays, strict=True)}
    assert seen["uid"] == seen["gid"] == 65534
    assert seen["caps_effective"] == seen["caps_bounding"] == 0
    assert seen["no_new_privs"] == 1
    assert seen["seccomp_mode"] == 2
    assert seen["fsize"] == limits.file_size_mb * 2**20 == 16 * 2**20
    assert seen["nofile"] == limits.open_files == 256
    assert seen["core"] == 0
    assert seen["tmp_bytes"] == limits.tmpfs_mb * 2**20 == 64 * 2**20
    assert seen["tmp_inodes"] == limits.tmpfs_inodes == 8192
    assert seen["host_env_seen"] == 0
    assert seen["pid"] < 10  # its own PID namespace
    assert seen["interfaces"] == 1  # loopback only: a network namespace of its own
    assert seen["ptrace_errno"] == seen["unshare_errno"] == 1  # EPERM from the seccomp filter
    assert seen["netlink_errno"] == seen["vsock_errno"] == errno.EAFNOSUPPORT  # socket families: an allow-list
    assert seen["problems_visible"] == 0
    assert seen["root_writable"] == 0
    assert len(groups) == 1 and all(not path.exists() for g in groups for path in g.directories())


@pytest.mark.slow
def test_default_memory_limit_stops_8_gib() -> None:
    code = "import numpy as np\ndef f(a):\n    return np.ones(2**30)[:2]\n"
    limits = SandboxLimits(time_s=60)
    assert limits.memory_mb == 2048
    outcome = run_harness(request(code), limits)
    assert outcome.memory_exceeded
    assert not outcome.timed_out
    assert outcome.memory_peak is not None and outcome.memory_peak <= 2048 * 2**20


@pytest.mark.slow
def test_result_pipe_is_capped_by_the_parent() -> None:
    # Writes well-formed framing straight to the result pipe, bypassing the harness' own budget check.
    code = ("import os, struct\nframe = b'GXM1' + struct.pack('<I', 2) + b'{}' + struct.pack('<IQ', 1, 2**40)\n"
            "fds = []\nfor fd in range(3, 64):\n    try:\n        os.write(fd, frame)\n        fds.append(fd)\n"
            "    except OSError:\n        pass\n"
            "while True:\n    for fd in fds:\n        os.write(fd, b'0' * 65536)\n")
    outcome = run_harness(request(code), SandboxLimits(time_s=30, result_bytes=4 * 2**20))
    assert outcome.result_overflow
    assert not outcome.timed_out


@pytest.mark.slow
def test_harness_refuses_oversized_results_before_converting() -> None:
    code = "import numpy as np\ndef f(a):\n    return np.broadcast_to(np.float64(1), (10**5, 10**5))\n"
    outcome = run_harness(request(code, output_budget=1024), SandboxLimits(time_s=30))
    test = outcome.events("test")
    assert test and test[0].event.status == "output_limit"
    assert outcome.memory_peak is not None and outcome.memory_peak < 512 * 2**20


def test_seccomp_filter_matches_the_kernel_headers() -> None:
    program = seccomp.build_filter("x86_64")
    assert program is not None and len(program) % 8 == 0 and len(program) // 8 < 256
    assert seccomp.build_filter("riscv64") is None
    if UNISTD.exists():
        numbers = dict(re.findall(r"#define __NR_(\w+) (\d+)", UNISTD.read_text()))
        wrong = {name: nr for name, nr in seccomp.X86_64_DENIED.items() if int(numbers[name]) != nr}
        assert wrong == {}
        assert int(numbers["clone"]) == seccomp.X86_64_CLONE and int(numbers["clone3"]) == seccomp.X86_64_CLONE3
        assert int(numbers["socket"]) == seccomp.X86_64_SOCKET
        assert int(numbers["socketpair"]) == seccomp.X86_64_SOCKETPAIR


def run_bpf(program: bytes, nr: int, arch: int = seccomp.AUDIT_ARCH_X86_64, arg0: int = 0) -> int:
    """Interpret the filter the way the kernel does, for one system call."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns = [struct.unpack_from("<HBBI", program, off) for off in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == seccomp.BPF_LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == seccomp.BPF_RET_K:
            return k
        elif code in (seccomp.BPF_JEQ_K, seccomp.BPF_JGE_K, seccomp.BPF_JSET_K):
            hit = {seccomp.BPF_JEQ_K: acc == k, seccomp.BPF_JGE_K: acc >= k, seccomp.BPF_JSET_K: bool(acc & k)}[code]
            pc += jt if hit else jf
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


def test_seccomp_filter_decisions() -> None:
    program = seccomp.build_filter("x86_64")
    assert program is not None
    eperm, enosys = seccomp.SECCOMP_RET_ERRNO | errno.EPERM, seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS
    for name, nr in seccomp.X86_64_DENIED.items():
        assert run_bpf(program, nr) == eperm, name
    # read, write, openat, mmap, futex, exit_group, execve, wait4: what Python and XLA need.
    for nr in (0, 1, 257, 9, 202, 231, 59, 61):
        assert run_bpf(program, nr) == seccomp.SECCOMP_RET_ALLOW, nr
    assert run_bpf(program, seccomp.X86_64_CLONE, arg0=0x003D0F00) == seccomp.SECCOMP_RET_ALLOW  # pthread_create
    assert run_bpf(program, seccomp.X86_64_CLONE, arg0=0x01200011) == seccomp.SECCOMP_RET_ALLOW  # fork
    assert run_bpf(program, seccomp.X86_64_CLONE, arg0=0x10000000 | 0x11) == eperm  # CLONE_NEWUSER
    assert run_bpf(program, seccomp.X86_64_CLONE, arg0=0x40000000) == eperm  # CLONE_NEWNET
    assert run_bpf(program, seccomp.X86_64_CLONE3) == enosys
    eafnosupport = seccomp.SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT
    for call in (seccomp.X86_64_SOCKET, seccomp.X86_64_SOCKETPAIR):
        for family in (1, 2, 10):  # unix, IPv4, IPv6
            assert run_bpf(program, call, arg0=family) == seccomp.SECCOMP_RET_ALLOW, (call, family)
            assert run_bpf(program, call, arg0=(1 << 32) | family) == seccomp.SECCOMP_RET_ALLOW  # int: low word
        for family in (16, 17, 38, 40, 31, 44, 0, 3, 255):  # netlink, packet, alg, vsock, bluetooth, xdp, ...
            assert run_bpf(program, call, arg0=family) == eafnosupport, (call, family)
    assert run_bpf(program, 0x40000000 | 1) == seccomp.SECCOMP_RET_KILL_PROCESS  # x32 ABI
    assert run_bpf(program, 1, arch=0x40000003) == seccomp.SECCOMP_RET_KILL_PROCESS  # i386


@pytest.mark.slow
def test_cpu_limit_counts_the_whole_group() -> None:
    # Two busy threads on a long wall limit: the group's CPU seconds stop the run, not the clock.
    code = ("import threading\ndef spin():\n    while True:\n        pass\n"
            "def f(a):\n    threading.Thread(target=spin, daemon=True).start()\n    spin()\n")
    outcome = run_harness(request(code), SandboxLimits(time_s=1, wall_s=60))
    assert outcome.cpu_exceeded
    assert not outcome.timed_out
    assert outcome.run_ms is not None and outcome.run_ms < 30_000


def test_interpreter_paths_inside_and_outside_the_sandbox() -> None:
    """A checkout under /tmp must still work: the sandbox mounts its own /tmp, so the virtualenv is
    mounted at a fixed path and only sandboxed commands use that path."""
    import sys

    from graders.sandbox import VENV_MOUNT, SandboxLimits, bwrap_argv, harness_command

    assert harness_command(sandboxed=False)[0] == sys.executable
    inside = harness_command()[0]
    argv = bwrap_argv(SandboxLimits(), 3, harness_command())
    binds = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--ro-bind"]
    if sys.prefix != sys.base_prefix:
        assert inside.startswith(VENV_MOUNT + "/")
        assert (sys.prefix, VENV_MOUNT) in binds
    assert not any(dest == "/tmp" or dest.startswith("/tmp/") for _, dest in binds)
