"""The one place that calls libc through ctypes.

Python 3.11 has no os.setns/os.unshare/mount/pivot_root; every such call in the project goes
through this module so errno handling and argument types are settled once. Each wrapper raises
OSError with the errno and a message naming what was being done.
"""

from __future__ import annotations

import ctypes
import os


def _load_libc() -> ctypes.CDLL:
    # glibc's soname; find_library runs `ldconfig -p` (a subprocess, and ctypes.util imports
    # tempfile and random), so it is only the fallback (musl).
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library
        return ctypes.CDLL(find_library("c") or "libc.so", use_errno=True)


_libc = _load_libc()

# clone(2) / unshare(2) / setns(2) namespace flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# umount2(2) flags
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.syscall.restype = ctypes.c_long


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    """mount(2). Raises OSError naming source, target and type."""
    d = _b(data)
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, d),
           f"mount {source!r} on {target!r} (type {fstype!r}, flags {flags:#x})")


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), f"umount {target!r}")


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread (call it only in a single-threaded child)."""
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): move the calling thread into the namespace open at fd."""
    _check(_libc.setns(fd, nstype), f"setns(fd {fd}, {nstype:#x})")


SYS_setresuid = 117  # x86_64


def thread_seteuid(euid: int) -> None:
    """setresuid(-1, euid, -1) for the calling thread only: the raw syscall, where glibc's
    seteuid would change every thread of the process. Leaving euid 0 clears the thread's
    effective capabilities; returning to 0 restores them (real and saved uid stay 0)."""
    _check(_libc.syscall(ctypes.c_long(SYS_setresuid), ctypes.c_long(-1), ctypes.c_long(euid),
                         ctypes.c_long(-1)), f"setresuid(-1, {euid}, -1)")


SYS_pivot_root = 155  # x86_64


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2)."""
    _check(_libc.syscall(SYS_pivot_root, _b(new_root), _b(put_old)),
           f"pivot_root({new_root!r}, {put_old!r})")


def sethostname(name: str) -> None:
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), f"sethostname({name!r})")


def setdomainname(name: str) -> None:
    b = name.encode()
    _check(_libc.setdomainname(b, len(b)), f"setdomainname({name!r})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) with integer arguments."""
    f = _libc.prctl
    f.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _check(f(option, arg2, arg3, arg4, arg5), f"prctl({option})")


PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

PR_SET_KEEPCAPS = 8

# capget(2)/capset(2) with _LINUX_CAPABILITY_VERSION_3 (two 32-bit words per set).
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """capget(2): (effective, permitted, inheritable) masks of pid (0 = the calling thread)."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(hdr), data), f"capget(pid {pid})")
    return tuple(data[0].__getattribute__(k) | data[1].__getattribute__(k) << 32  # type: ignore
                 for k in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) on the calling thread with 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = effective >> (32 * i) & 0xFFFFFFFF
        data[i].permitted = permitted >> (32 * i) & 0xFFFFFFFF
        data[i].inheritable = inheritable >> (32 * i) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data),
           f"capset(eff {effective:#x}, perm {permitted:#x}, inh {inheritable:#x})")


# personality(2) domains
PER_LINUX = 0x0000
PER_LINUX32 = 0x0008


def personality(persona: int) -> int:
    """personality(2); returns the previous persona."""
    _libc.personality.argtypes = [ctypes.c_ulong]
    return _check(_libc.personality(persona), f"personality({persona:#x})")


# seccomp(2) (include/uapi/linux/seccomp.h)
SYS_seccomp = 317  # x86_64
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) with ``program`` the bytes of a
    ``struct sock_filter[]``. Needs no_new_privs or CAP_SYS_ADMIN.

    Raises OSError; with SECCOMP_FILTER_FLAG_TSYNC, a thread that could not be synchronised
    is reported as ESRCH naming its tid.
    """
    prog = _SockFprog(len(program) // 8, program)
    ret = _libc.syscall(ctypes.c_long(SYS_seccomp), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                        ctypes.c_long(flags), ctypes.byref(prog))
    _check(ret, f"seccomp(SET_MODE_FILTER, flags {flags:#x}, {len(program) // 8} insns)")
    if ret > 0:
        raise OSError(3, f"seccomp TSYNC: thread {ret} could not be synchronised")


# bpf(2) (include/uapi/linux/bpf.h): just what the cgroup v2 device filter needs.
SYS_bpf = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    ret = _libc.syscall(ctypes.c_long(SYS_bpf), ctypes.c_long(cmd), attr,
                        ctypes.c_long(len(attr)))
    return _check(ret, what)


def bpf_prog_load(prog_type: int, insns: bytes, license: str = "Apache",
                  expected_attach_type: int = 0) -> int:
    """BPF_PROG_LOAD an eBPF program (``insns``: the bytes of ``struct bpf_insn[]``); returns
    the program fd (O_CLOEXEC). Raises OSError carrying the verifier's log."""
    import struct  # local: this module's header is shared by every helper (append-only)

    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(128)  # union bpf_attr, zero beyond the fields we set
    struct.pack_into("=IIQQIIQII16sII", attr, 0, prog_type, len(insns) // 8,
                     ctypes.addressof(code), ctypes.addressof(lic), 1, len(log),
                     ctypes.addressof(log), 0, 0, b"crid_dev", 0, expected_attach_type)
    try:
        return _bpf(BPF_PROG_LOAD, attr, f"bpf(PROG_LOAD, type {prog_type})")
    except OSError as e:
        verifier = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"{e.strerror}; verifier: {verifier[-400:]}") from None


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """BPF_PROG_ATTACH ``prog_fd`` to the cgroup open at ``target_fd``."""
    import struct

    attr = ctypes.create_string_buffer(128)
    struct.pack_into("=IIII", attr, 0, target_fd, prog_fd, attach_type, flags)
    _bpf(BPF_PROG_ATTACH, attr, f"bpf(PROG_ATTACH, type {attach_type})")


# ioprio_set(2) (include/uapi/linux/ioprio.h)
SYS_ioprio_set = 251  # x86_64
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}


def ioprio_set(io_class: int, priority: int) -> None:
    """ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority) on the calling process."""
    value = io_class << IOPRIO_CLASS_SHIFT | priority
    _check(_libc.syscall(ctypes.c_long(SYS_ioprio_set), ctypes.c_long(IOPRIO_WHO_PROCESS),
                         ctypes.c_long(0), ctypes.c_long(value)),
           f"ioprio_set(class {io_class}, priority {priority})")


# inotify(7): crid learns about container exits from exit files appearing in one directory.
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_IGNORED = 0x00008000
IN_Q_OVERFLOW = 0x00004000
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


def inotify_init1(flags: int = IN_CLOEXEC | IN_NONBLOCK) -> int:
    """inotify_init1(2): returns the new inotify fd."""
    return _check(_libc.inotify_init1(flags), "inotify_init1")


def inotify_add_watch(fd: int, path: str, mask: int) -> int:
    """inotify_add_watch(2): returns the watch descriptor."""
    return _check(_libc.inotify_add_watch(fd, _b(path), mask), f"inotify_add_watch({path!r})")


def inotify_rm_watch(fd: int, wd: int) -> None:
    """inotify_rm_watch(2)."""
    _check(_libc.inotify_rm_watch(fd, wd), f"inotify_rm_watch({wd})")


SYS_tgkill = 234  # x86_64


def tgkill(tgid: int, tid: int, sig: int) -> None:
    """tgkill(2): send sig to one thread of a process."""
    _check(_libc.syscall(SYS_tgkill, tgid, tid, sig), f"tgkill({tgid}, {tid}, {sig})")


SYS_openat2 = 437  # the same number on every architecture
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2) (Linux ≥ 5.6): returns the new fd. ENOSYS on older kernels."""
    how = _OpenHow(flags, mode, resolve)
    return _check(_libc.syscall(SYS_openat2, dirfd, _b(path), ctypes.byref(how),
                                ctypes.c_size_t(ctypes.sizeof(how))),
                  f"openat2({path!r})")


# The monitor's one prctl, with its argument types set once, here (in the zygote, before it
# forks): ``prctl`` above sets them on every call, and a monitor pays a private copy of every
# page it touches after the fork.
_prctl_subreaper = _libc["prctl"]
_prctl_subreaper.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                             ctypes.c_ulong]


def set_child_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to the caller."""
    _check(_prctl_subreaper(36, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


# The new mount API (Linux ≥ 5.2; mount_setattr ≥ 5.12). Since 5.x every architecture shares
# one table for new syscalls (asm-generic/unistd.h), so these numbers hold on x86_64 and aarch64.
SYS_open_tree = 428
SYS_move_mount = 429
SYS_mount_setattr = 442
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_SYMLINKS = 0x10
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def open_tree(dirfd: int, path: str, flags: int) -> int:
    """open_tree(2): an O_PATH fd of the mount at path; with OPEN_TREE_CLONE a detached copy
    (AT_RECURSIVE: of the whole tree), which mount_setattr may idmap. Returns the fd."""
    return _check(_libc.syscall(ctypes.c_long(SYS_open_tree), ctypes.c_int(dirfd), _b(path),
                                ctypes.c_uint(flags)), f"open_tree({path!r}, {flags:#x})")


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str,
               flags: int) -> None:
    """move_mount(2): attach (or move) the mount at from_dirfd/from_path onto to_path."""
    _check(_libc.syscall(ctypes.c_long(SYS_move_mount), ctypes.c_int(from_dirfd),
                         _b(from_path), ctypes.c_int(to_dirfd), _b(to_path),
                         ctypes.c_uint(flags)),
           f"move_mount({from_path or from_dirfd!r} -> {to_path!r})")


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    """mount_setattr(2) (Linux ≥ 5.12): change the mount at dirfd/path (AT_RECURSIVE: and
    every mount below it). ENOSYS on older kernels."""
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _check(_libc.syscall(ctypes.c_long(SYS_mount_setattr), ctypes.c_int(dirfd), _b(path),
                         ctypes.c_uint(flags), ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr))),
           f"mount_setattr({path or dirfd!r}, set {attr_set:#x}, clear {attr_clr:#x})")


# libseccomp (Debian's libseccomp2): compiles seccomp profiles into BPF as runc, crun and youki
# do. Loaded on first use: most CLI calls (state, kill, delete) never compile a filter.
_seccomp_lib: ctypes.CDLL | None = None
NR_SCMP_ERROR = -1  # __NR_SCMP_ERROR: a name libseccomp does not know


class ScmpArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp``: argument ``arg`` compared with ``op`` (enum scmp_compare)."""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _ScmpVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def _libseccomp() -> ctypes.CDLL:
    global _seccomp_lib
    if _seccomp_lib is None:
        try:
            lib = ctypes.CDLL("libseccomp.so.2")
        except OSError as e:
            raise OSError(2, f"loading libseccomp.so.2 (Debian package libseccomp2): {e}") from e
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.restype = None
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
        lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p  # malloc'd: freed here
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(ScmpArgCmp)]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_api_get.restype = ctypes.c_uint
        lib.seccomp_version.restype = ctypes.POINTER(_ScmpVersion)
        _seccomp_lib = lib
    return _seccomp_lib


def _scmp_check(ret: int, what: str) -> int:
    # libseccomp returns -errno and leaves errno alone.
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


def seccomp_version() -> str:
    """libseccomp's version, e.g. ``2.5.4``."""
    v = _libseccomp().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def seccomp_api_get() -> int:
    """The API level libseccomp found this kernel to support (seccomp_api_get(3))."""
    return int(_libseccomp().seccomp_api_get())


def seccomp_arch_resolve_name(name: str) -> int | None:
    """The audit arch token of a libseccomp arch name (``x86_64``, ``aarch64``); None if
    unknown."""
    token = int(_libseccomp().seccomp_arch_resolve_name(name.encode()))
    return token or None


def seccomp_syscall_resolve_name(name: str, arch: int = 0) -> int | None:
    """The syscall number of ``name`` on ``arch`` (0: the native one); negative numbers are
    libseccomp's pseudo-syscalls (a call other arches of the filter have). None: unknown."""
    lib = _libseccomp()
    nr = (lib.seccomp_syscall_resolve_name_arch(arch, name.encode()) if arch
          else lib.seccomp_syscall_resolve_name(name.encode()))
    return None if nr == NR_SCMP_ERROR else int(nr)


def seccomp_syscall_resolve_num(nr: int, arch: int = 0) -> str | None:
    """The name of syscall ``nr`` on ``arch`` (0: native); None if libseccomp knows none."""
    ptr = _libseccomp().seccomp_syscall_resolve_num_arch(arch, nr)
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        _libc.free(ctypes.c_void_p(ptr))


class SeccompContext:
    """A libseccomp filter under construction (``scmp_filter_ctx``); a context manager that
    releases it. Each method raises OSError with libseccomp's errno and what was asked."""

    def __init__(self, default_action: int) -> None:
        self._lib = _libseccomp()
        self._ctx = self._lib.seccomp_init(default_action)
        if not self._ctx:
            raise OSError(22, f"seccomp_init(default action {default_action:#x}) failed")

    def __enter__(self) -> SeccompContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._ctx:
            self._lib.seccomp_release(self._ctx)
            self._ctx = None

    def attr_set(self, attr: int, value: int) -> None:
        _scmp_check(self._lib.seccomp_attr_set(self._ctx, attr, value),
                    f"seccomp_attr_set({attr}, {value:#x})")

    def arch_add(self, token: int) -> None:
        ret = self._lib.seccomp_arch_add(self._ctx, token)
        if ret != -17:  # EEXIST: the native arch, always present
            _scmp_check(ret, f"seccomp_arch_add({token:#x})")

    def rule_add(self, action: int, nr: int, conds: list[ScmpArgCmp]) -> None:
        arr = (ScmpArgCmp * len(conds))(*conds)
        _scmp_check(self._lib.seccomp_rule_add_array(self._ctx, action, nr, len(conds), arr),
                    f"seccomp_rule_add(syscall {nr}, action {action:#x}, {len(conds)} args)")

    def export_bpf(self) -> bytes:
        """The BPF program (``struct sock_filter[]`` bytes), through a memfd."""
        fd = os.memfd_create("crid-seccomp", os.MFD_CLOEXEC)
        try:
            _scmp_check(self._lib.seccomp_export_bpf(self._ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
