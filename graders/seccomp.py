"""A seccomp deny-list for sandboxed runs: a classic BPF program the harness installs on itself.

A first layer under the namespaces: the syscalls a grading child never needs and that are the usual
kernel attack surface (debugging other processes, mounting, namespaces, keyrings, BPF, perf,
userfaultfd, io_uring, module loading, clock and reboot) fail with EPERM. `clone` with any namespace
flag fails with EPERM; `clone3` (whose flags sit behind a pointer the filter cannot read) fails with
ENOSYS, so the C library falls back to `clone`. 32-bit and x32 system calls kill the process.

Written by hand (about 75 instructions) instead of through libseccomp, so no extra dependency. Only
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


def build_filter(machine: str | None = None) -> bytes | None:
    """The compiled filter for this machine, or None where no syscall table is described."""
    if (machine or platform.machine()) not in ("x86_64", "amd64"):
        return None
    eperm = SECCOMP_RET_ERRNO | errno.EPERM
    enosys = SECCOMP_RET_ERRNO | errno.ENOSYS
    denied = sorted(set(X86_64_DENIED.values()))
    prog: list[bytes] = []
    # Foreign architectures and the x32 ABI: kill (their numbers mean other calls).
    prog.append(_insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH))
    prog.append(_insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH_X86_64))
    prog.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS))
    prog.append(_insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR))
    prog.append(_insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT))
    prog.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS))
    # Plain deny-list: each match jumps over the rest of the list and the 6 instructions of the tail
    # below, to the shared EPERM return at its end (+6).
    n = len(denied)
    for i, nr in enumerate(denied):
        prog.append(_insn(BPF_JEQ_K, (n - i - 1) + 6, 0, nr))
    # clone3 -> ENOSYS; clone with namespace flags -> EPERM; everything else allowed.
    prog.append(_insn(BPF_JEQ_K, 0, 1, X86_64_CLONE3))       # +0
    prog.append(_insn(BPF_RET_K, 0, 0, enosys))               # +1
    prog.append(_insn(BPF_JEQ_K, 0, 2, X86_64_CLONE))          # +2
    prog.append(_insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARG0_LOW))   # +3
    prog.append(_insn(BPF_JSET_K, 1, 0, CLONE_NAMESPACE_FLAGS))  # +4
    prog.append(_insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))    # +5
    prog.append(_insn(BPF_RET_K, 0, 0, eperm))                # +6
    return b"".join(prog)


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
