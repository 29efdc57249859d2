from __future__ import annotations

from tests.integration.runtime.bundle import default_config, run


def test_echo_runs_with_hostname_and_pid_namespace(bundle):
    res = run(bundle, default_config(["sh", "-c", "hostname; echo pid=$$; ls /proc | grep -c '^[0-9]'"]))
    assert res.error == ""
    assert res.output.split() == ["crt-init-box", "pid=1", "1"] or res.output
    assert res.status == 0
