"""The CLI's two-stage parse: global flags, then only the chosen command's flags."""

import pytest

from runtime.cli.commands import _parse

pytestmark = pytest.mark.unit


def test_globals_then_command_flags() -> None:
    a = _parse(["--root", "/r", "--log-format", "json", "run", "-d", "--pid-file", "/p", "x"])
    assert (a.root, a.log_format, a.command, a.detach, a.pid_file, a.id) == (
        "/r", "json", "run", True, "/p", "x")
    assert not hasattr(a, "rest")


def test_remainders_keep_their_options() -> None:
    a = _parse(["exec", "-t", "x", "sh", "-c", "ls -l"])
    assert (a.tty, a.id, a.args) == (True, "x", ["sh", "-c", "ls -l"])
    assert _parse(["ps", "x", "-ef"]).ps_args == ["-ef"]
    k = _parse(["kill", "-a", "x", "KILL"])
    assert (k.all, k.id, k.signal) == (True, "x", "KILL")


def test_no_command_and_bad_input() -> None:
    assert _parse(["-v"]).version is True
    assert _parse([]).command is None
    with pytest.raises(SystemExit) as bad:
        _parse(["bogus"])
    assert bad.value.code == 2
    with pytest.raises(SystemExit):
        _parse(["state"])  # missing id
