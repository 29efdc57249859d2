"""Resolving a container's user against the image's /etc/passwd and /etc/group.

Pure functions over the files' text, so they are tested without an image; the caller reads the
files from the container's root filesystem (never following links out of it).
"""

from __future__ import annotations

from dataclasses import dataclass

from crid.errors import InvalidArgument, NotFound

MAX_ID = 2**32 - 2


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class UserDB:
    users: tuple[PasswdEntry, ...] = ()
    groups: tuple[GroupEntry, ...] = ()

    @classmethod
    def parse(cls, passwd: str = "", group: str = "") -> UserDB:
        users = []
        for f in _rows(passwd, 7):
            if f[2].isdigit() and f[3].isdigit():
                users.append(PasswdEntry(f[0], int(f[2]), int(f[3]), f[5]))
        groups = []
        for f in _rows(group, 4):
            if f[2].isdigit():
                groups.append(GroupEntry(f[0], int(f[2]), tuple(m for m in f[3].split(",") if m)))
        return cls(tuple(users), tuple(groups))

    def user(self, key: str | int) -> PasswdEntry | None:
        for u in self.users:
            if (u.uid == key) if isinstance(key, int) else (u.name == key):
                return u
        return None

    def group(self, key: str | int) -> GroupEntry | None:
        for g in self.groups:
            if (g.gid == key) if isinstance(key, int) else (g.name == key):
                return g
        return None


def _rows(text: str, width: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split(":")
        if len(fields) >= width:
            rows.append(fields)
    return rows


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    username: str
    home: str


def _id(text: str, what: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_ID:
        raise InvalidArgument(f"{what} {value} is out of range")
    return value


def resolve_user(db: UserDB, *, run_as_user: int | None, run_as_username: str,
                 run_as_group: int | None, image_user: str,
                 supplemental: tuple[int, ...] = (), strict: bool = False) -> ResolvedUser:
    """The uid, gid and groups a container runs with, by the kubelet's rules.

    run_as_username wins over run_as_user, which wins over the image's User ("name", "uid",
    "name:group", "uid:gid"). run_as_group overrides the primary group. With the Merge policy the
    user's groups from /etc/group are added to `supplemental`; with Strict they are not.

    Raises:
        NotFound: a user or group name the image does not have.
        InvalidArgument: an id out of range.
    """
    if run_as_username:
        user_part, group_part = run_as_username, ""
    elif run_as_user is not None:
        user_part, group_part = str(_id(str(run_as_user), "run_as_user")), ""
    else:
        user_part, _, group_part = (image_user or "0").partition(":")
    entry = _lookup_user(db, user_part)
    uid = entry.uid if entry else _id(user_part, "uid")
    gid = entry.gid if entry else 0
    if group_part:
        gid = _lookup_gid(db, group_part)
    if run_as_group is not None:
        gid = _id(str(run_as_group), "run_as_group")
    name = entry.name if entry else ""
    groups = list(supplemental)
    if not strict and name:
        groups += [g.gid for g in db.groups if name in g.members]
    # The primary group comes first, as containerd and CRI-O give it: `id -G` inside the
    # container lists it, which the kubelet's supplemental-groups checks expect.
    extra = tuple(dict.fromkeys([gid, *groups]))
    return ResolvedUser(uid, gid, extra, name, entry.home if entry else "/")


def _lookup_user(db: UserDB, text: str) -> PasswdEntry | None:
    if text.isdigit():
        return db.user(_id(text, "uid"))
    entry = db.user(text)
    if entry is None:
        raise NotFound(f"user {text!r} is not in the image's /etc/passwd")
    return entry


def _lookup_gid(db: UserDB, text: str) -> int:
    if text.isdigit():
        return _id(text, "gid")
    group = db.group(text)
    if group is None:
        raise NotFound(f"group {text!r} is not in the image's /etc/group")
    return group.gid
