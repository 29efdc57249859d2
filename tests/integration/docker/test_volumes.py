"""Named and anonymous volumes through the docker CLI and docker-py: create/ls/inspect/rm/
prune, `-v name:/path` and `--mount type=volume` (made on first mention, filled from the
image), the image's VOLUMEs, `rm -v` and `--rm`, and volumes across a daemon restart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
import pytest

from tests.integration.docker.conftest import DOCKER_CLI, DockerRig
from tests.rig.daemon import start_crid

SEEDED = "FROM busybox\nRUN mkdir -p /seed/sub && echo seeded > /seed/sub/f && " \
    "chown -R 1234:5678 /seed && chmod 0750 /seed\nVOLUME /seed\n"


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def _volumes(rig: DockerRig, *args: str) -> list[str]:
    return rig.cli("volume", "ls", "-q", *args).stdout.split()


def _inspect(rig: DockerRig, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(rig.cli("volume", "inspect", name).stdout)[0]


def _seeded_image(rig: DockerRig, tmp: Path) -> str:
    ctx = tmp / "seeded"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(SEEDED)
    env = dict(rig.env(), DOCKER_BUILDKIT="0")
    proc = subprocess.run([DOCKER_CLI, "build", "-q", "-t", "seeded", str(ctx)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return "seeded"


def test_create_ls_inspect_rm(rig: DockerRig) -> None:
    assert rig.cli("volume", "create", "--label", "app=crt", "data").stdout == "data\n"
    rig.cli("volume", "create", "other")
    assert rig.cli("volume", "create", "data").stdout == "data\n"  # Docker hands it back
    info = _inspect(rig, "data")
    assert (info["Name"], info["Driver"], info["Scope"], info["Labels"]) == \
        ("data", "local", "local", {"app": "crt"})
    mountpoint = Path(info["Mountpoint"])
    assert mountpoint == rig.daemon.root / "volumes" / "data" / "_data"
    assert mountpoint.is_dir() and info["CreatedAt"] > "2000"
    assert _volumes(rig) == ["data", "other"]
    assert _volumes(rig, "--filter", "label=app=crt") == ["data"]
    assert _volumes(rig, "--filter", "label=app=other") == []
    assert _volumes(rig, "--filter", "name=oth") == ["other"]
    assert _volumes(rig, "--filter", "dangling=true") == ["data", "other"]
    assert _volumes(rig, "--filter", "dangling=false") == []
    rig.cli("volume", "rm", "data", "other")
    assert _volumes(rig) == [] and not mountpoint.parent.exists()
    gone = rig.cli("volume", "rm", "data", check=False)
    assert gone.returncode == 1 and "No such volume: data" in gone.stderr
    assert rig.cli("volume", "rm", "-f", "data").returncode == 0
    assert sorted(p.name for p in (rig.daemon.root / "volumes").iterdir()) == []


def test_named_volume_is_shared_kept_and_filled_from_the_image(rig: DockerRig) -> None:
    # First use: the volume takes what the image has at the path (busybox's /etc).
    out = rig.cli("run", "--rm", "-v", "etc:/etc", "busybox", "cat", "/etc/passwd").stdout
    assert out.startswith("root:x:0:0")
    assert (Path(_inspect(rig, "etc")["Mountpoint"]) / "passwd").read_text() == out
    rig.cli("run", "--name", "writer", "-v", "shared:/data", "busybox", "sh", "-c",
            "echo kept > /data/f")
    out = rig.cli("run", "--rm", "--mount", "type=volume,src=shared,dst=/mnt,readonly",
                  "busybox", "sh", "-c", "cat /mnt/f; touch /mnt/g 2>/dev/null || echo ro")
    assert out.stdout == "kept\nro\n"
    # A stopped container still uses it: 409, even with -f; dangling says so too.
    busy = rig.cli("volume", "rm", "-f", "shared", check=False)
    assert busy.returncode == 1 and "volume is in use" in busy.stderr
    assert _volumes(rig, "--filter", "dangling=true") == ["etc"]
    mounts = json.loads(rig.cli("inspect", "writer").stdout)[0]["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"], m["RW"]) for m in mounts] == \
        [("volume", "shared", "/data", True)]
    rig.cli("rm", "-v", "writer")  # -v takes anonymous volumes only
    assert _volumes(rig) == ["etc", "shared"]
    rig.cli("volume", "rm", "shared", "etc")


def test_a_volume_that_has_content_is_not_filled_again(rig: DockerRig) -> None:
    rig.cli("volume", "create", "pre")
    rig.cli("run", "--rm", "-v", "pre:/data", "busybox", "sh", "-c", "echo mine > /data/f")
    out = rig.cli("run", "--rm", "-v", "pre:/etc", "busybox", "ls", "/etc").stdout
    assert out == "f\n"
    out = rig.cli("run", "--rm", "-v", "nocopy:/etc:nocopy", "busybox", "ls", "-A", "/etc")
    assert out.stdout == ""
    rig.cli("volume", "rm", "pre", "nocopy")


def test_image_volumes_are_anonymous_filled_and_go_with_rm_v(rig: DockerRig,
                                                             tmp_path: Path) -> None:
    image = _seeded_image(rig, tmp_path)
    rig.cli("create", "--name", "anon", "-v", "/scratch", image)
    mounts = json.loads(rig.cli("inspect", "anon").stdout)[0]["Mounts"]
    by_dest = {m["Destination"]: m for m in mounts}
    assert sorted(by_dest) == ["/scratch", "/seed"]
    seed = Path(by_dest["/seed"]["Source"])
    assert (seed / "sub" / "f").read_text() == "seeded\n"
    st = seed.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o750)
    names = sorted(m["Name"] for m in mounts)
    assert all(len(n) == 64 for n in names) and sorted(_volumes(rig)) == names
    assert _inspect(rig, names[0])["Labels"] == {"com.docker.volume.anonymous": ""}
    rig.cli("rm", "-v", "anon")
    assert _volumes(rig) == []
    # --rm removes them too; a named volume beside them stays.
    out = rig.cli("run", "--rm", "-v", "keep:/keep", image, "cat", "/seed/sub/f").stdout
    assert out == "seeded\n"
    assert _volumes(rig) == ["keep"]
    rig.cli("volume", "rm", "keep")


def test_prune(rig: DockerRig, tmp_path: Path) -> None:
    image = _seeded_image(rig, tmp_path)
    rig.cli("volume", "create", "named")
    rig.cli("volume", "create", "--label", "keep=yes", "labelled")
    rig.cli("create", "--name", "anon", image)
    rig.cli("rm", "anon")  # without -v: its anonymous volume stays, unused
    rig.cli("create", "--name", "user", "-v", "used:/u", image)
    mounts = json.loads(rig.cli("inspect", "user").stdout)[0]["Mounts"]
    users_anon = next(m["Name"] for m in mounts if m["Destination"] == "/seed")
    assert len(_volumes(rig)) == 5
    # API 1.42+ (docker-py asking for 1.43): unused anonymous volumes only.
    api = docker.APIClient(base_url=rig.host, version="1.43")
    pruned = api.prune_volumes()
    assert (len(pruned["VolumesDeleted"]), pruned["SpaceReclaimed"]) == (1, 7)  # "seeded\n"
    assert sorted(_volumes(rig)) == sorted(["labelled", "named", "used", users_anon])
    # Debian's CLI speaks 1.41: every unused volume, here those with a label.
    rig.cli("volume", "prune", "-f", "--filter", "label=keep=yes")
    assert sorted(_volumes(rig)) == sorted(["named", "used", users_anon])
    assert "named" in rig.cli("volume", "prune", "-f").stdout
    assert sorted(_volumes(rig)) == sorted(["used", users_anon])
    rig.cli("rm", "-v", "user")
    assert _volumes(rig) == ["used"]
    rig.cli("volume", "rm", "used")


def test_volumes_survive_a_daemon_restart(rig: DockerRig) -> None:
    rig.cli("volume", "create", "--label", "a=b", "durable")
    rig.cli("run", "--rm", "-v", "durable:/d", "busybox", "sh", "-c", "echo there > /d/f")
    # What a crash halfway through a create or a remove leaves, cleared on start.
    (rig.daemon.root / "volumes" / ".new-deadbeef" / "_data").mkdir(parents=True)
    (rig.daemon.root / "volumes" / ".gone-deadbeef").mkdir()
    config = rig.daemon.root.parent / "crid.toml"
    assert rig.daemon.stop() == 0
    rig.daemon = start_crid(rig.daemon.root.parent, config=config)
    assert _inspect(rig, "durable")["Labels"] == {"a": "b"}
    out = rig.cli("run", "--rm", "-v", "durable:/d", "busybox", "cat", "/d/f").stdout
    assert out == "there\n"
    assert sorted(p.name for p in (rig.daemon.root / "volumes").iterdir()) == ["durable"]
    rig.cli("volume", "rm", "durable")


def test_bad_volume_requests(rig: DockerRig) -> None:
    api = docker.APIClient(base_url=rig.host, version="auto")
    with pytest.raises(docker.errors.APIError) as e:
        api.create_volume("../escape")
    assert e.value.status_code == 400
    with pytest.raises(docker.errors.APIError) as e:
        api.create_volume("x", driver="nfs")
    assert e.value.status_code == 404
    with pytest.raises(docker.errors.APIError) as e:
        api.create_volume("x", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    assert e.value.status_code == 400
    with pytest.raises(docker.errors.APIError) as e:
        api.create_volume("x", labels={"a": 1})  # type: ignore[dict-item]
    assert e.value.status_code == 400
    bad = rig.cli("run", "--rm", "-v", "bad$name:/x", "busybox", "true", check=False)
    assert bad.returncode != 0 and "invalid" in bad.stderr
    with pytest.raises(docker.errors.APIError) as e:
        api.inspect_volume("nope")
    assert e.value.status_code == 404
    assert _volumes(rig) == []
    assert not (rig.daemon.root / "volumes").exists()  # nothing was made
