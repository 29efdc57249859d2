"""runtime-tools' validation programs (opencontainers/runtime-tools validation/) reproduced:
their bundle (the rootfs is the bundle itself, root.path "."), their default generator's config
(deny-all device rules, mqueue, devpts gid=5, a default seccomp profile), and their sequence of
create/start/state/kill/delete calls with create's stdio on files in the bundle. Each runs under
crid-runtime and under Debian's runc, which must agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crid.containers.seccomp_default import default_profile
from tests.integration.runtime.bundle import DEFAULT_CAPS
from tests.integration.runtime.clikit import SCRIPT, cli_env, stop_server
from tests.integration.runtime.lifekit import PREFIX

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

APPLETS = ("sh", "true", "false", "sleep", "touch", "cat", "echo", "head", "wc")


def generator_config(args: list[str]) -> dict[str, Any]:
    """runtime-tools' generate.New("linux") with GetDefaultGenerator's root path."""
    caps = DEFAULT_CAPS
    return {
        "ociVersion": "1.0.2",
        "root": {"path": "."},
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "capabilities": {"bounding": caps, "permitted": caps, "effective": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "hostname": "mrsdalloway",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "seccomp": default_profile(caps),
            "devices": [],
        },
    }


def prepare_bundle(path: Path, args: list[str]) -> Path:
    """util.PrepareBundle: the rootfs unpacked into the bundle directory itself."""
    for d in ("bin", "proc", "sys", "dev", "etc", "tmp"):
        (path / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", path / "bin" / "busybox")
    for a in APPLETS:
        (path / "bin" / a).symlink_to("busybox")
    (path / "config.json").write_text(json.dumps(generator_config(args)))
    return path


class Runtime:
    """util.Runtime: one runtime command, one bundle, one container id."""

    def __init__(self, name: str, root: Path, bundle: Path, cid: str) -> None:
        self.name, self.root, self.bundle, self.id = name, root, bundle, cid

    def _cmd(self) -> list[str]:
        if self.name == "crid":
            return [sys.executable, str(SCRIPT), "--root", str(self.root)]
        return ["runc", "--root", str(self.root)]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._cmd(), *args], text=True, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=60, env=cli_env())

    def create(self, *, pid_file: Path | None = None) -> int:
        """create with stdout/stderr on files of the bundle, as util.Runtime.Create does."""
        args = ["create"] + (["--pid-file", str(pid_file)] if pid_file else [])
        args += ["--bundle", str(self.bundle), self.id]
        with open(self.bundle / "stdout-c", "w") as out, \
                open(self.bundle / "stderr-c", "w") as err:
            return subprocess.run([*self._cmd(), *args], stdout=out, stderr=err,
                                  stdin=subprocess.DEVNULL, timeout=60,
                                  env=cli_env()).returncode

    def call(self, *args: str) -> int:
        return self._run(*args).returncode

    def status(self) -> str | None:
        r = self._run("state", self.id)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else None

    def wait_status(self, *wanted: str, timeout: float = 10) -> str | None:
        deadline = time.monotonic() + timeout
        while (s := self.status()) not in wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        return s

    def clean(self) -> None:
        self._run("delete", "--force", self.id)


RUNTIMES = ["crid", "runc"]


@pytest.fixture(name="make")
def make_fixture(tmp_path: Path) -> Iterator[Any]:
    made: list[Runtime] = []

    def make(name: str, args: list[str], tag: str) -> Runtime:
        bundle = prepare_bundle(tmp_path / f"bundle-{name}-{tag}", args)
        rt = Runtime(name, tmp_path / f"root-{name}", bundle, f"{PREFIX}rt-{tag}-{name}")
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.clean()
    stop_server(tmp_path / "root-crid")


@pytest.mark.parametrize("name", RUNTIMES)
@pytest.mark.parametrize("signal", ["TERM", "USR1", "USR2"])
def test_killsig(make: Any, name: str, signal: str) -> None:
    # The shell's `sleep 10 &` opens /dev/null for the job's stdin: under the generator's
    # deny-all device rules only runc's allowed devices make that work.
    rt = make(name, ["sh", "-c", f"trap 'touch /{signal}' {signal}; sleep 10 & wait $!"],
              f"ks{signal.lower()}")
    assert rt.create() == 0
    assert rt.call("start", rt.id) == 0
    assert rt.wait_status("running") == "running"
    assert rt.call("kill", rt.id, signal) == 0
    assert rt.wait_status("stopped") == "stopped"
    assert (rt.bundle / signal).exists(), (rt.bundle / "stderr-c").read_text()
    assert rt.call("delete", rt.id) == 0


@pytest.mark.parametrize("name", RUNTIMES)
def test_default_devices_usable_under_deny_all_rules(make: Any, name: str) -> None:
    rt = make(name, ["sh", "-c", "echo x > /dev/null && head -c 5 /dev/urandom | wc -c > /out;"
                                 " cat /dev/zero > /dev/full; echo full=$? >> /out"], "dev")
    assert rt.create() == 0
    assert rt.call("start", rt.id) == 0
    assert rt.wait_status("stopped") == "stopped"
    assert (rt.bundle / "out").read_text() == "5\nfull=1\n"


@pytest.mark.parametrize("name", RUNTIMES)
def test_start(make: Any, name: str) -> None:
    rt = make(name, ["sh", "-c", "echo 'process called' >> /output"], "start")
    assert rt.call("start") != 0  # without an id
    assert rt.call("start", rt.id) != 0  # not created
    assert rt.create() == 0
    assert not (rt.bundle / "output").exists()  # process.args not applied before start
    assert rt.call("start", rt.id) == 0
    assert rt.wait_status("stopped") == "stopped"
    assert rt.call("start", rt.id) != 0  # stopped: an error, and no effect
    assert (rt.bundle / "output").read_text() == "process called\n"
    assert rt.call("delete", rt.id) == 0


@pytest.mark.parametrize("name", RUNTIMES)
def test_delete_of_created_or_running_container_fails_without_effect(make: Any,
                                                                     name: str) -> None:
    rt = make(name, ["sleep", "30"], "del")
    assert rt.call("delete") != 0  # without an id
    assert rt.create() == 0
    assert rt.call("delete", rt.id) != 0
    assert rt.status() == "created"
    assert rt.call("start", rt.id) == 0
    assert rt.call("delete", rt.id) != 0
    assert rt.status() == "running"
    assert rt.call("kill", rt.id, "KILL") == 0
    assert rt.wait_status("stopped") == "stopped"
    assert rt.call("delete", rt.id) == 0
    assert rt.status() is None


@pytest.mark.parametrize("name", RUNTIMES)
def test_pidfile_written_by_create_holds_the_state_pid(make: Any, name: str,
                                                       tmp_path: Path) -> None:
    rt = make(name, ["true"], "pid")
    pid_file = tmp_path / f"pidfile-{name}"
    assert rt.create(pid_file=pid_file) == 0
    state = json.loads(rt._run("state", rt.id).stdout)
    assert int(pid_file.read_text()) == state["pid"] > 0
    assert rt.call("start", rt.id) == 0
    assert rt.wait_status("stopped") == "stopped"
    assert rt.call("delete", rt.id) == 0


@pytest.mark.parametrize("name", RUNTIMES)
def test_hooks_run_in_order_and_poststart_failure_only_warns(make: Any, name: str) -> None:
    rt = make(name, ["true"], "hooks")
    out = rt.bundle / "output"
    sh = str(rt.bundle / "bin" / "sh")

    def hook(text: str) -> dict[str, Any]:
        return {"path": sh, "args": ["sh", "-c", f"echo '{text}' >> {out}"]}

    config = json.loads((rt.bundle / "config.json").read_text())
    config["hooks"] = {
        "prestart": [hook("pre-start1"), hook("pre-start2")],
        "poststart": [{"path": str(rt.bundle / "bin" / "false"), "args": ["false"]},
                      hook("post-start1"), hook("post-start2")],
        "poststop": [hook("post-stop1"), hook("post-stop2")],
    }
    (rt.bundle / "config.json").write_text(json.dumps(config))
    assert rt.create() == 0
    assert rt.call("start", rt.id) == 0
    assert rt.wait_status("stopped") == "stopped"
    assert rt.call("delete", rt.id) == 0
    assert out.read_text() == ("pre-start1\npre-start2\npost-start1\npost-start2\n"
                               "post-stop1\npost-stop2\n")


@pytest.mark.parametrize("name", RUNTIMES)
def test_prestart_failure_fails_create_and_runs_nothing(make: Any, name: str) -> None:
    rt = make(name, ["sh", "-c", "touch /output"], "prefail")
    config = json.loads((rt.bundle / "config.json").read_text())
    config["hooks"] = {"prestart": [{"path": str(rt.bundle / "bin" / "false"),
                                     "args": ["false"]}]}
    (rt.bundle / "config.json").write_text(json.dumps(config))
    assert rt.create() != 0
    assert rt.call("start", rt.id) != 0
    assert not (rt.bundle / "output").exists()
    assert rt.status() is None
