"""Compile a ``SeccompProfile`` into a classic BPF program with libseccomp, as runc does.

libseccomp (Debian's libseccomp2, through ``runtime.linux.libc``) resolves syscall names for every
architecture of the filter and writes the program; ``seccomp_export_bpf`` hands it back as
bytes so the container init only has to load it with seccomp(2). Semantics are libseccomp's
and runc's: names libseccomp does not know are skipped (one profile serves every kernel),
rules whose action is the default are skipped (libseccomp refuses them), an unconditional rule
for a syscall overrides its conditional ones, and calls of an architecture not in the filter
get libseccomp's bad-arch action (SCMP_ACT_KILL).

In front of libseccomp's program goes runc's ENOSYS stub (``enosys_stub``).
"""

from __future__ import annotations

from runtime.linux import libc
from runtime.records import dataclass
from runtime.seccomp import bpf
from runtime.seccomp.arch import arch_token
from runtime.seccomp.enosys import enosys_stub
from runtime.seccomp.errors import SeccompError
from runtime.seccomp.profile import ArgCondition, SeccompProfile, SyscallRule

# enum scmp_compare (seccomp.h)
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_OPTIMIZE = 8
_TREE_ABOVE = 32  # runc: libseccomp's binary-tree dispatch for longer rule sets


@dataclass(frozen=True)
class CompiledFilter:
    """A loadable filter: the bytes of the BPF program and the SECCOMP_FILTER_FLAG_* bits
    (given to seccomp(2) when loading; they are not part of the program)."""

    encoded: bytes
    flags: int

    def encode(self) -> bytes:
        return self.encoded

    @property
    def program(self) -> tuple[bpf.SockFilter, ...]:
        """The instructions (decoded on each call: for tests and inspection)."""
        return bpf.decode(self.encoded)

    @classmethod
    def from_bytes(cls, data: bytes, flags: int) -> CompiledFilter:
        """The filter whose ``encode()`` gave ``data``. Raises SeccompError on a torn program."""
        if not data or len(data) % bpf.INSN_SIZE:
            raise SeccompError(f"a BPF program of {len(data)} bytes is not whole instructions")
        return cls(data, flags)


def compile_filter(profile: SeccompProfile) -> CompiledFilter:
    """Compile ``profile`` (see the module docstring for its semantics).

    Raises:
        SeccompError: libseccomp is missing or refused a rule (the message names the
            syscall), or the program exceeds the kernel's 4096-instruction limit.
    """
    try:
        with libc.SeccompContext(profile.default_action.value) as ctx:
            ctx.attr_set(SCMP_FLTATR_CTL_NNP, 0)  # the init sets no_new_privs itself
            for arch in profile.architectures:
                ctx.arch_add(arch_token(arch))
            if len(profile.rules) > _TREE_ABOVE:
                ctx.attr_set(SCMP_FLTATR_CTL_OPTIMIZE, 2)
            for rule in profile.rules:
                _add_rule(ctx, rule, profile.default_action.value)
            program = ctx.export_bpf()
    except OSError as e:
        raise SeccompError(f"compiling seccomp filter with libseccomp: {e}") from e
    full = bpf.encode(enosys_stub(profile)) + program
    if len(full) // bpf.INSN_SIZE > bpf.MAX_INSNS:
        raise SeccompError(f"seccomp filter has {len(full) // bpf.INSN_SIZE} BPF instructions, "
                           f"the kernel's limit is {bpf.MAX_INSNS}")
    return CompiledFilter(full, profile.flags)


def _add_rule(ctx: libc.SeccompContext, rule: SyscallRule, default: int) -> None:
    action = rule.action.value
    if action == default:
        return  # libseccomp refuses it (EACCES); the default applies anyway, as in runc
    conds = [_cmp(c) for c in rule.args]
    for name in rule.names:
        nr = libc.seccomp_syscall_resolve_name(name)
        if nr is None:
            continue  # unknown to this libseccomp: skipped, as runc does
        try:
            ctx.rule_add(action, nr, conds)
        except OSError as e:
            raise SeccompError(f"seccomp rule for {name}: {e}") from e


def _cmp(c: ArgCondition) -> libc.ScmpArgCmp:
    # OCI's MASKED_EQ has the mask in value and the datum in valueTwo, as libseccomp's
    # datum_a and datum_b.
    return libc.ScmpArgCmp(c.index, _OPS[c.op], c.value, c.value_two)
