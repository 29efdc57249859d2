from __future__ import annotations

import pytest

from crid.containers.users import UserDB, resolve_user
from crid.errors import NotFound

DB = UserDB.parse(
    passwd="root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n"
           "bad line\napp:x:1000:1000::/home/app:/bin/sh\n",
    group="root:x:0:\nwww:x:33:\nstaff:x:50:app,www\nvideo:x:44:app\napp:x:1000:\n")


def r(**kw):  # noqa: ANN201, ANN003
    base = dict(run_as_user=None, run_as_username="", run_as_group=None, image_user="")
    base.update(kw)
    return resolve_user(DB, **base)


def test_default_is_root() -> None:
    u = r()
    assert (u.uid, u.gid, u.username) == (0, 0, "root")


@pytest.mark.parametrize("image_user, want", [
    ("www", (33, 33, (33, 50))), ("1000", (1000, 1000, (1000, 50, 44))),
    ("1000:44", (1000, 44, (44, 50))), ("app:staff", (1000, 50, (50, 44))),
    ("4242", (4242, 0, (0,))), ("4242:7", (4242, 7, (7,))),
])
def test_image_user_forms(image_user: str, want: tuple) -> None:
    u = r(image_user=image_user)
    assert (u.uid, u.gid, u.additional_gids) == want


def test_request_wins_over_image_and_group_overrides() -> None:
    u = r(run_as_user=33, image_user="app", run_as_group=7)
    assert (u.uid, u.gid, u.username) == (33, 7, "www")
    u = r(run_as_username="app", run_as_user=33)
    assert u.uid == 1000


def test_supplemental_merge_and_strict() -> None:
    # The primary group first (containerd and CRI-O do the same; `id -G` shows it).
    assert r(image_user="app", supplemental=(9,)).additional_gids == (1000, 9, 50, 44)
    assert r(image_user="app", supplemental=(9,), strict=True).additional_gids == (1000, 9)


def test_unknown_names_are_not_found() -> None:
    with pytest.raises(NotFound, match="nobody"):
        r(run_as_username="nobody")
    with pytest.raises(NotFound, match="wheel"):
        r(image_user="app:wheel")
