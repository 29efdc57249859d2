from __future__ import annotations

import copy
import json

import pytest

from runtime.errors import SpecError
from runtime.spec import config_from_doc, load_config, load_spec, parse_spec

MINIMAL = {
    "ociVersion": "1.2.0",
    "root": {"path": "rootfs"},
    "process": {"args": ["sh"], "cwd": "/"},
    "linux": {"namespaces": [{"type": "mount"}]},
}


def spec_with(**changes):  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(MINIMAL)
    for path, value in changes.items():
        node = doc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return doc


def error_of(doc) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as e:
        parse_spec(doc)
    return str(e.value)


def test_minimal_spec_defaults():
    s = parse_spec(MINIMAL)
    assert s.root.path == "rootfs" and s.root.readonly is False
    assert s.process is not None and s.process.args == ("sh",)
    assert s.process.user.uid == 0 and s.process.capabilities is None
    assert s.linux.namespace("mount") is not None and s.linux.namespace("pid") is None


def test_full_process_fields():
    s = parse_spec(spec_with(process={
        "terminal": True, "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1, "gid": 2, "umask": 18, "additionalGids": [3, 4]},
        "args": ["a", "b"], "env": ["A=1"], "cwd": "/w",
        "capabilities": {"bounding": ["CAP_KILL", "chown"], "ambient": []},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}],
        "noNewPrivileges": True, "apparmorProfile": "p", "oomScoreAdj": -5,
        "selinuxLabel": "l"}))
    p = s.process
    assert p.console_size.height == 24 and p.user.additional_gids == (3, 4)
    assert p.user.umask == 18 and p.capabilities.bounding == ("CAP_KILL", "CAP_CHOWN")
    assert p.rlimits[0].type == "RLIMIT_NOFILE" and p.oom_score_adj == -5


@pytest.mark.parametrize("changes, message", [
    ({"ociVersion": "2.0.0"}, "ociVersion: unsupported version '2.0.0' (want 1.x.y)"),
    ({"process__rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                           {"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
                           {"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]},
     'process.rlimits[2].type: unknown rlimit \'RLIMIT_FOO\''),
    ({"process__rlimits": [{"type": "RLIMIT_NOFILE", "soft": 5, "hard": 1}]},
     "process.rlimits[0].soft: soft limit 5 is above the hard limit 1"),
    ({"process__capabilities": {"effective": ["CAP_FLY"]}},
     "process.capabilities.effective[0]: unknown capability 'CAP_FLY'"),
    ({"process__cwd": "relative"}, "process.cwd: must be an absolute path, got 'relative'"),
    ({"process__args": []}, "process.args: must name at least the program to run"),
    ({"process__args": "sh"}, "process.args: expected an array, got string"),
    ({"process__env": ["NOVALUE"]}, "process.env[0]: expected KEY=value, got 'NOVALUE'"),
    ({"process__user": {"uid": -1}}, "process.user.uid: -1 out of range [0, 4294967295]"),
    ({"process__oomScoreAdj": 1001}, "process.oomScoreAdj: 1001 out of range [-1000, 1000]"),
    ({"process__terminal": "yes"}, "process.terminal: expected a boolean, got string"),
    ({"root": {}}, "root.path: required field is missing"),
    ({"mounts": [{"type": "tmpfs"}]}, "mounts[0].destination: required field is missing"),
    ({"linux__namespaces": [{"type": "mount"}, {"type": "bogus"}]},
     "linux.namespaces[1].type: unknown namespace type 'bogus'"),
    ({"linux__namespaces": [{"type": "mount"}, {"type": "mount"}]},
     "linux.namespaces[1].type: duplicate namespace 'mount'"),
    ({"linux__namespaces": [{"type": "network", "path": "rel"}]},
     "linux.namespaces[0].path: must be an absolute path, got 'rel'"),
    ({"linux__namespaces": [{"type": "user"}]},
     "linux.uidMappings: a new user namespace needs both uidMappings and gidMappings"),
    ({"linux__uidMappings": [{"containerID": 0, "hostID": 1, "size": 0}]},
     "linux.uidMappings[0].size: must be at least 1"),
    ({"linux__devices": [{"type": "x", "path": "/dev/x"}]},
     "linux.devices[0].type: unknown device type 'x' (want c, b, u or p)"),
    ({"linux__devices": [{"type": "c", "path": "/dev/x"}]},
     "linux.devices[0].major: required field is missing"),
    ({"linux__rootfsPropagation": "weird"},
     "linux.rootfsPropagation: unknown propagation 'weird'"),
    ({"linux__sysctl": {"net.ipv4.ip_forward": 1}},
     "linux.sysctl.net.ipv4.ip_forward: expected a string, got integer"),
    ({"linux__personality": {"domain": "BSD"}},
     "linux.personality.domain: unknown personality domain 'BSD'"),
    ({"hooks": {"prestart": [{"path": "x"}]}},
     "hooks.prestart[0].path: must be an absolute path, got 'x'"),
    ({"hooks": {"poststop": [{"path": "/x", "timeout": 0}]}},
     "hooks.poststop[0].timeout: 0 out of range [1, None]"),
    ({"process__ioPriority": {"class": "IOPRIO_CLASS_X"}},
     "process.ioPriority.class: unknown I/O priority class 'IOPRIO_CLASS_X'"),
    ({"process__scheduler": {"policy": "SCHED_DEADLINE"}},
     "process.scheduler.policy: unsupported scheduling policy 'SCHED_DEADLINE'"),
    ({"process__execCPUAffinity": {"final": "3-1"}},
     "process.execCPUAffinity.final: invalid CPU list '3-1'"),
    ({"linux__timeOffsets": {"monotonic": {"secs": 1}}},
     "linux.timeOffsets: needs a new time namespace"),
    ({"linux__timeOffsets": {"realtime": {"secs": 1}}},
     "linux.timeOffsets.realtime: only monotonic and boottime clocks can be offset"),
    ({"annotations": {"a": 1}}, "annotations.a: expected a string, got integer"),
    ({"hostname": "a\x00b"}, "hostname: contains a NUL byte"),
    ({"hostname": "h" * 65}, "hostname: longer than 64 bytes (65)"),
    ({"mounts": [{"destination": "/x", "type": "bind"}]},
     "mounts[0].source: a bind mount needs a source"),
    ({"mounts": [{"destination": "/x", "options": ["rbind"]}]},
     "mounts[0].source: a bind mount needs a source"),
])
def test_invalid_fields_are_named(changes, message):
    assert error_of(spec_with(**changes)) == message


def test_not_an_object():
    assert error_of([]) == "(config): expected an object, got array"


def test_load_spec_errors_name_the_file(tmp_path):
    with pytest.raises(SpecError, match="reading .*config.json"):
        load_spec(str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(SpecError, match="parsing .*config.json"):
        load_spec(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(MINIMAL))
    assert load_spec(str(tmp_path)).oci_version == "1.2.0"


def test_a_config_keeps_the_bytes_it_was_read_from(tmp_path):
    raw = json.dumps(MINIMAL, indent=3).encode() + b"\n"
    (tmp_path / "config.json").write_bytes(raw)
    config = load_config(str(tmp_path))
    assert config.raw == raw  # the state's config.json is the bundle's, byte for byte
    assert config.spec == parse_spec(MINIMAL)


def test_a_config_built_in_memory_is_validated_and_encoded_once():
    config = config_from_doc(MINIMAL)
    assert config.spec == parse_spec(MINIMAL)
    assert json.loads(config.raw) == MINIMAL
    with pytest.raises(SpecError, match="process.cwd"):
        config_from_doc(spec_with(process__cwd="relative"))
    with pytest.raises(SpecError, match="encoding config.json"):  # valid, but not JSON
        config_from_doc(spec_with(annotations={"a": "b"}, linux__resources={"x": {1, 2}}))


def test_runc_default_spec_loads():
    import shutil
    import subprocess
    import tempfile

    if shutil.which("runc") is None:
        pytest.skip("runc not installed")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["runc", "spec", "-b", d], check=True)
        s = load_spec(d)
    assert s.process.terminal is True
    assert "/proc/kcore" in s.linux.masked_paths
    assert s.linux.resources == {"devices": [{"allow": False, "access": "rwm"}]}


def test_resources_and_seccomp_stay_raw():
    raw = {"defaultAction": "SCMP_ACT_ALLOW"}
    s = parse_spec(spec_with(linux__seccomp=raw, linux__resources={"memory": {"limit": 1}}))
    assert s.linux.seccomp == raw and s.linux.resources == {"memory": {"limit": 1}}


def test_parse_process_alone():
    from runtime.spec import parse_process

    assert parse_process({"args": ["ls"], "cwd": "/"}).args == ("ls",)
    with pytest.raises(SpecError, match=r"^process.cwd: required field is missing$"):
        parse_process({"args": ["ls"]})


def test_scheduling_fields():
    p = parse_spec(spec_with(process={
        "args": ["x"], "cwd": "/", "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {"policy": "SCHED_BATCH", "nice": 5},
        "execCPUAffinity": {"initial": "0", "final": "0-2,5"}})).process
    assert (p.io_priority.io_class, p.io_priority.priority) == ("IOPRIO_CLASS_BE", 4)
    assert (p.scheduler.policy, p.scheduler.nice) == ("SCHED_BATCH", 5)
    assert p.exec_cpu_affinity.final == (0, 1, 2, 5) and p.exec_cpu_affinity.initial == (0,)
