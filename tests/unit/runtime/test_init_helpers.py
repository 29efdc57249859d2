"""Pure parts of runtime.init: namespace planning, id maps, program lookup, channel."""

from __future__ import annotations

import os

import pytest

from runtime.errors import InitError, UnsupportedMount
from runtime.init import namespaces, process
from runtime.init.channel import pair
from runtime.linux import libc
from runtime.spec import parse_process, parse_spec


def _linux(namespaces_: list[dict], **extra) -> object:  # type: ignore[no-untyped-def]
    doc = {"ociVersion": "1.2.0", "root": {"path": "r"},
           "linux": {"namespaces": namespaces_, **extra}}
    return parse_spec(doc).linux


def test_plan_sorts_new_and_joined_namespaces():
    lin = _linux([{"type": "pid"}, {"type": "mount"}, {"type": "network",
                                                       "path": "/proc/self/ns/net"},
                  {"type": "cgroup"}, {"type": "uts"}])
    plan = namespaces.plan(lin)
    try:
        assert [t for t, _ in plan.join] == ["network"]
        assert plan.unshare_flags == libc.CLONE_NEWNS | libc.CLONE_NEWUTS
        assert plan.new_pid and plan.new_cgroup and not plan.new_user
    finally:
        for _, fd in plan.join:
            os.close(fd)


def test_plan_names_a_missing_path():
    lin = _linux([{"type": "ipc", "path": "/nonexistent/crt-ns"}])
    with pytest.raises(OSError, match="opening ipc namespace /nonexistent/crt-ns"):
        namespaces.plan(lin)


def test_id_map_format():
    lin = _linux([{"type": "user"}], uidMappings=[
        {"containerID": 0, "hostID": 1000, "size": 1},
        {"containerID": 1, "hostID": 100000, "size": 65535}],
        gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}])
    assert namespaces.format_map(lin.uid_mappings) == "0 1000 1\n1 100000 65535\n"


def test_find_program_in_path(tmp_path):
    exe = tmp_path / "bin" / "tool"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (tmp_path / "bin" / "plain").write_text("")
    env = {"PATH": f"/nonexistent:{tmp_path}/bin"}
    assert process.find_program("tool", env) == str(exe)
    assert process.find_program(str(exe), env) == str(exe)
    with pytest.raises(FileNotFoundError, match="'plain' not found"):
        process.find_program("plain", env)
    with pytest.raises(PermissionError):
        process.find_program(str(tmp_path / "bin" / "plain"), env)


def test_environment_keeps_given_home():
    p = parse_process({"args": ["x"], "cwd": "/", "env": ["HOME=/h", "A=b=c"]})
    assert process.environment(p) == {"HOME": "/h", "A": "b=c"}


def test_channel_round_trip_and_errors():
    a, b = pair()
    try:
        b.send("pid", pid=7)
        assert a.expect("pid") == {"type": "pid", "pid": 7}
        b.send("error", message="mounting /x: denied")
        with pytest.raises(InitError, match="^mounting /x: denied$"):
            a.expect("ready")
        b.close()
        assert a.recv_or_eof() is None
    finally:
        a.close()


def test_channel_errors_keep_the_types_the_parent_maps():
    """UnsupportedMount crosses by name (crid answers FAILED_PRECONDITION for it); an
    InitError keeps its text; anything else becomes InitError naming its type."""
    a, b = pair()
    try:
        b.send_error(UnsupportedMount("idmapping /v for /v: refused"))
        with pytest.raises(UnsupportedMount, match="^idmapping /v for /v: refused$"):
            a.expect("ready")
        b.send_error(InitError("mounts: denied"))
        with pytest.raises(InitError, match="^mounts: denied$"):
            a.expect("ready")
        b.send_error(ValueError("bad"))
        with pytest.raises(InitError, match="^ValueError: bad$"):
            a.expect("ready")
    finally:
        a.close()
        b.close()
