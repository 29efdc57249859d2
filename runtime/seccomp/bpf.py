"""Classic BPF for seccomp: the instruction format, encoding and decoding.

libseccomp writes the filters (runtime.seccomp.compiler); this module only reads and writes
``struct sock_filter`` arrays, for the ENOSYS stub put in front of them and for tests.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# Opcodes (include/uapi/linux/filter.h): class | size/op | source.
LD_W_ABS = 0x20  # A = *(u32 *)(seccomp_data + k)
ALU_AND_K = 0x54  # A &= k
JA = 0x05  # pc += k
JEQ_K = 0x15
JGT_K = 0x25
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

MAX_INSNS = 4096  # BPF_MAXINSNS


class SockFilter(NamedTuple):
    """One ``struct sock_filter``; ``jt``/``jf`` are forward offsets from the next one."""

    code: int
    jt: int
    jf: int
    k: int


_INSN = struct.Struct("=HBBI")
INSN_SIZE = _INSN.size


def encode(prog: list[SockFilter] | tuple[SockFilter, ...]) -> bytes:
    """The bytes of a ``struct sock_filter[]`` (native byte order, as the kernel reads it)."""
    return b"".join(_INSN.pack(*insn) for insn in prog)


def decode(data: bytes) -> tuple[SockFilter, ...]:
    """Inverse of ``encode``; ``data`` must be whole instructions."""
    return tuple(SockFilter(*t) for t in _INSN.iter_unpack(data))
