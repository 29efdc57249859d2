"""Classic BPF for seccomp: instruction encoding and a label-resolving assembler.

Code is written as a list of ``Label`` and ``Op`` items whose jumps name labels. Conditional
jumps only reach 255 instructions ahead (8-bit offsets); ``assemble`` rewrites the ones that
cannot into a short jump to a ``ja`` trampoline (32-bit offset), repeating until all fit.
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
_MAX_SHORT = 255


class SockFilter(NamedTuple):
    """One ``struct sock_filter``."""

    code: int
    jt: int
    jf: int
    k: int


class Label(NamedTuple):
    name: str


class Op(NamedTuple):
    """An instruction; ``jt``/``jf`` (conditional jumps) and ``target`` (ja) are label names,
    ``None`` meaning the next instruction."""

    code: int
    k: int = 0
    jt: str | None = None
    jf: str | None = None
    target: str | None = None


Item = Label | Op


def load(offset: int) -> Op:
    return Op(LD_W_ABS, offset)


def ret(value: int) -> Op:
    return Op(RET_K, value)


def jump(code: int, k: int, jt: str | None, jf: str | None) -> Op:
    return Op(code, k, jt, jf)


def goto(label: str) -> Op:
    return Op(JA, target=label)


def _positions(items: list[Item]) -> dict[str, int]:
    pos: dict[str, int] = {}
    n = 0
    for it in items:
        if isinstance(it, Label):
            pos[it.name] = n
        else:
            n += 1
    return pos


def _relax_once(items: list[Item], counter: list[int]) -> tuple[list[Item], bool]:
    """Route every conditional jump that is too far through trampolines; True if any was."""
    pos = _positions(items)
    out: list[Item] = []
    changed = False
    n = 0
    for it in items:
        if isinstance(it, Label):
            out.append(it)
            continue
        far = [lbl is not None and it.code != JA and pos[lbl] - n - 1 > _MAX_SHORT
               for lbl in (it.jt, it.jf)]
        n += 1
        if not any(far):
            out.append(it)
            continue
        changed = True
        counter[0] += 1
        tag = f".t{counter[0]}"
        after = f"{tag}.next"
        jt = f"{tag}.t" if far[0] else (it.jt or after)
        jf = f"{tag}.f" if far[1] else (it.jf or after)
        out.append(Op(it.code, it.k, jt, jf))
        if far[0]:
            out += [Label(f"{tag}.t"), goto(it.jt or after)]
        if far[1]:
            out += [Label(f"{tag}.f"), goto(it.jf or after)]
        out.append(Label(after))
    return out, changed


def assemble(items: list[Item]) -> list[SockFilter]:
    """Resolve labels into offsets.

    Raises:
        ValueError: a label is undefined or a jump goes backwards (BPF only jumps forward).
    """
    counter = [0]
    changed = True
    while changed:
        items, changed = _relax_once(items, counter)
    pos = _positions(items)
    prog: list[SockFilter] = []
    for it in items:
        if isinstance(it, Label):
            continue
        n = len(prog)

        def off(label: str | None, n: int = n) -> int:
            if label is None:
                return 0
            if label not in pos:
                raise ValueError(f"undefined BPF label {label!r}")
            d = pos[label] - n - 1
            if d < 0:
                raise ValueError(f"backward BPF jump to {label!r}")
            return d

        if it.code == JA:
            prog.append(SockFilter(JA, 0, 0, off(it.target)))
        else:
            prog.append(SockFilter(it.code, off(it.jt), off(it.jf), it.k))
    return prog


_INSN = struct.Struct("=HBBI")
INSN_SIZE = _INSN.size


def encode(prog: list[SockFilter]) -> bytes:
    """The bytes of a ``struct sock_filter[]`` (native byte order, as the kernel reads it)."""
    return b"".join(_INSN.pack(*insn) for insn in prog)
