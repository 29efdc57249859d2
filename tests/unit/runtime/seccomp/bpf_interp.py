"""A classic-BPF interpreter for the instructions libseccomp and the ENOSYS stub emit (oracle)."""

from __future__ import annotations

import struct

from runtime.seccomp import bpf


def seccomp_data(nr: int, arch: int, args: tuple[int, ...] = ()) -> bytes:
    """struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (little-endian)."""
    full = (list(args) + [0] * 6)[:6]
    return struct.pack("<iIQ6Q", nr, arch, 0, *full)


def run(prog: list[bpf.SockFilter] | tuple[bpf.SockFilter, ...], data: bytes) -> int:
    """Execute ``prog`` on ``data`` and return the value of the RET instruction reached."""
    a = 0
    pc = 0
    steps = 0
    while True:
        steps += 1
        assert steps <= len(prog), "BPF program loops"  # forward-only jumps: cannot happen
        code, jt, jf, k = prog[pc]
        pc += 1
        if code == bpf.LD_W_ABS:
            assert k % 4 == 0 and k + 4 <= len(data), f"bad load offset {k}"
            a = struct.unpack_from("<I", data, k)[0]
        elif code == bpf.ALU_AND_K:
            a &= k
        elif code == bpf.JA:
            pc += k
        elif code in (bpf.JEQ_K, bpf.JGT_K, bpf.JGE_K, bpf.JSET_K):
            taken = {bpf.JEQ_K: a == k, bpf.JGT_K: a > k, bpf.JGE_K: a >= k,
                     bpf.JSET_K: bool(a & k)}[code]
            pc += jt if taken else jf
        elif code == bpf.RET_K:
            return k
        else:
            raise AssertionError(f"unknown opcode {code:#x} at {pc - 1}")
        assert pc < len(prog), "fell off the end of the program"
