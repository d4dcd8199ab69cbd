"""A seccomp filter for sandboxed runs: a classic BPF program the harness installs on itself.

A first layer under the namespaces: the syscalls a grading child never needs and that are the usual
kernel attack surface (debugging other processes, mounting, namespaces, keyrings, BPF, perf,
userfaultfd, io_uring, module loading, clock and reboot) fail with EPERM. `clone` with any namespace
flag fails with EPERM; `clone3` (whose flags sit behind a pointer the filter cannot read) fails with
ENOSYS, so the C library falls back to `clone`. `socket` and `socketpair` work only for the families
on an allow-list (unix, IPv4, IPv6); any other fails with EAFNOSUPPORT. 32-bit and x32 system calls kill
the process.

Written by hand (about 85 instructions) instead of through libseccomp, so no extra dependency. Only
x86_64 is described; elsewhere `build_filter` returns None and the other layers stand alone.

The harness installs it first thing, as `nobody` with no_new_privs, before it imports anything else
or reads the submission, so every thread JAX starts later inherits it. (bwrap's own `--seccomp` would
apply it before the fixed shell that mounts the inode-capped /tmp, and `mount` is on the list.)
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
# seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian low word first).
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME.
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80

X86_64_CLONE = 56
X86_64_CLONE3 = 435
X86_64_SOCKET = 41
X86_64_SOCKETPAIR = 53
# What Python, jax and a submission need inside an empty network namespace: unix sockets (socketpair,
# multiprocessing) and IPv4/IPv6 (loopback only there). Everything else (vsock to the hypervisor, packet,
# netlink, the kernel crypto API, bluetooth, ...) is kernel attack surface no grading needs. glibc copes
# without netlink (getaddrinfo assumes both IP versions; if_nameindex fails).
ALLOWED_SOCKET_FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10}
X86_64_DENIED: dict[str, int] = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "unshare": 272, "setns": 308,
    "keyctl": 250, "add_key": 248, "request_key": 249,
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "create_module": 174,
    "kexec_load": 246, "kexec_file_load": 320, "reboot": 169,
    "clock_settime": 227, "clock_adjtime": 305, "settimeofday": 164, "adjtimex": 159,
    "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179, "quotactl_fd": 443,
    "sethostname": 170, "setdomainname": 171, "syslog": 103, "vhangup": 153,
    "iopl": 172, "ioperm": 173, "modify_ldt": 154, "personality": 135, "uselib": 134,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "fanotify_init": 300, "lookup_dcookie": 212,
    "nfsservctl": 180, "memfd_secret": 447, "migrate_pages": 256, "move_pages": 279,
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


class _Assembler:
    """Classic BPF with symbolic jump targets: `jump(code, k, if_true, if_false)` names labels, resolved to
    the relative offsets the kernel wants when the program is built (jumps only go forward)."""

    def __init__(self) -> None:
        self.insns: list[tuple[int, str | None, str | None, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int) -> None:
        self.insns.append((code, None, None, k))

    def jump(self, code: int, k: int, if_true: str | None, if_false: str | None) -> None:
        self.insns.append((code, if_true, if_false, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def build(self) -> bytes:
        out = []
        for pc, (code, jt, jf, k) in enumerate(self.insns):
            out.append(_insn(code, self._offset(pc, jt), self._offset(pc, jf), k))
        return b"".join(out)

    def _offset(self, pc: int, target: str | None) -> int:
        if target is None:
            return 0
        delta = self.labels[target] - pc - 1
        if not 0 <= delta < 256:
            raise ValueError(f"jump to {target} out of range")
        return delta


def build_filter(machine: str | None = None) -> bytes | None:
    """The compiled filter for this machine, or None where no syscall table is described."""
    if (machine or platform.machine()) not in ("x86_64", "amd64"):
        return None
    a = _Assembler()
    # Foreign architectures and the x32 ABI: kill (their numbers mean other calls).
    a.op(BPF_LD_W_ABS, OFFSET_ARCH)
    a.jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, None, "kill")
    a.op(BPF_LD_W_ABS, OFFSET_NR)
    a.jump(BPF_JGE_K, X32_SYSCALL_BIT, "kill", None)
    for nr in sorted(set(X86_64_DENIED.values())):
        a.jump(BPF_JEQ_K, nr, "eperm", None)
    a.jump(BPF_JEQ_K, X86_64_CLONE3, "enosys", None)
    a.jump(BPF_JEQ_K, X86_64_CLONE, "clone", None)
    a.jump(BPF_JEQ_K, X86_64_SOCKET, "family", None)
    a.jump(BPF_JEQ_K, X86_64_SOCKETPAIR, "family", None)
    a.op(BPF_RET_K, SECCOMP_RET_ALLOW)
    # clone with any namespace flag: EPERM (threads and plain forks pass).
    a.label("clone")
    a.op(BPF_LD_W_ABS, OFFSET_ARG0_LOW)
    a.jump(BPF_JSET_K, CLONE_NAMESPACE_FLAGS, "eperm", None)
    a.op(BPF_RET_K, SECCOMP_RET_ALLOW)
    # socket / socketpair: the address family (an int: the low word of the first argument) must be on the
    # allow-list; any other fails as the kernel would for a family it does not have.
    a.label("family")
    a.op(BPF_LD_W_ABS, OFFSET_ARG0_LOW)
    for family in sorted(ALLOWED_SOCKET_FAMILIES.values()):
        a.jump(BPF_JEQ_K, family, "allow", None)
    a.op(BPF_RET_K, SECCOMP_RET_ERRNO | errno.EAFNOSUPPORT)
    a.label("allow")
    a.op(BPF_RET_K, SECCOMP_RET_ALLOW)
    a.label("eperm")
    a.op(BPF_RET_K, SECCOMP_RET_ERRNO | errno.EPERM)
    a.label("enosys")
    a.op(BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS)
    a.label("kill")
    a.op(BPF_RET_K, SECCOMP_RET_KILL_PROCESS)
    return a.build()


PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """Install `program` on the calling thread (and every thread it creates later); raise OSError if refused."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p).value)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")
