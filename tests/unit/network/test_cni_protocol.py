"""The CNI execution protocol against recorder plugins (small executables the test writes):
env, stdin config, capability args, prevResult chaining, DEL order, errors, timeouts,
STATUS."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from crid.network.api import DNSConfig, NetworkOptions, PodNetworkRequest, PortMapping
from crid.network.cni import CNINetwork
from crid.network.errors import CNIPluginError, NetworkSetupFailed

RECORDER = f"""#!{sys.executable}
import json, os, sys
conf = json.load(sys.stdin)
me, cmd = os.path.basename(sys.argv[0]), os.environ["CNI_COMMAND"]
log = os.path.join(os.path.dirname(sys.argv[0]), "..", "calls.jsonl")
env = {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}}
with open(log, "a") as f:
    f.write(json.dumps({{"plugin": me, "cmd": cmd, "conf": conf, "env": env}}) + "\\n")
if conf.get("fail") == cmd:
    print(json.dumps({{"cniVersion": conf["cniVersion"], "code": 11, "msg": "planned",
                      "details": me}}))
    sys.exit(1)
if conf.get("hang") == cmd:
    import time; time.sleep(30)
if cmd == "ADD":
    res = conf.get("prevResult") or {{"cniVersion": conf["cniVersion"],
        "interfaces": [{{"name": os.environ["CNI_IFNAME"], "sandbox": os.environ["CNI_NETNS"]}}],
        "ips": [{{"address": "10.77.0.9/24", "gateway": "10.77.0.1", "interface": 0}}]}}
    res.setdefault("seen", []).append(me)
    print(json.dumps(res))
"""


@pytest.fixture
def rec(tmp_path):
    bin_dir, conf_dir = tmp_path / "bin", tmp_path / "net.d"
    bin_dir.mkdir()
    conf_dir.mkdir()
    for name in ("first", "second", "third"):
        p = bin_dir / name
        p.write_text(RECORDER)
        p.chmod(p.stat().st_mode | stat.S_IXUSR)

    def make(plugins, version="1.0.0", timeout=10.0):
        (conf_dir / "10-rec.conflist").write_text(json.dumps(
            {"cniVersion": version, "name": "rec", "plugins": plugins}))
        return CNINetwork(NetworkOptions(mode="cni", cni_conf_dir=str(conf_dir),
                                         cni_bin_dirs=(str(bin_dir),), cni_timeout=timeout,
                                         state_dir=str(tmp_path / "state")))

    def calls():
        with open(tmp_path / "calls.jsonl") as f:
            return [json.loads(line) for line in f]
    return make, calls


REQ = PodNetworkRequest("pod9", "/run/netns/crt-net-none", pod_name="web", pod_namespace="ns",
                        pod_uid="uid9", port_mappings=(PortMapping(80, 8080),),
                        dns=DNSConfig(("1.1.1.1",)))


def test_add_chains_prev_result_and_passes_only_declared_capabilities(rec):
    make, calls = rec
    net = make([{"type": "first"}, {"type": "second", "capabilities": {"portMappings": True}},
                {"type": "third", "capabilities": {"dns": True, "bandwidth": True}}])
    res = net.setup(REQ)
    assert res.ips == ["10.77.0.9"] and res.gateways == ["10.77.0.1"]
    c = calls()
    assert [x["plugin"] for x in c] == ["first", "second", "third"]
    assert c[0]["env"] == {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pod9",
                           "CNI_NETNS": "/run/netns/crt-net-none", "CNI_IFNAME": "eth0",
                           "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web;"
                                       "K8S_POD_INFRA_CONTAINER_ID=pod9;K8S_POD_UID=uid9",
                           "CNI_PATH": c[0]["env"]["CNI_PATH"]}
    assert "prevResult" not in c[0]["conf"] and "runtimeConfig" not in c[0]["conf"]
    assert c[1]["conf"]["prevResult"]["seen"] == ["first"]
    assert c[1]["conf"]["runtimeConfig"] == {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
    assert c[2]["conf"]["runtimeConfig"] == {"dns": {"servers": ["1.1.1.1"], "searches": [],
                                                     "options": []}}
    assert all(x["conf"]["name"] == "rec" and x["conf"]["cniVersion"] == "1.0.0" for x in c)


def test_del_runs_in_reverse_with_the_cached_result_after_a_restart(rec):
    make, calls = rec
    plugins = [{"type": "first"}, {"type": "second"}]
    make(plugins).setup(REQ)
    restarted = make([{"type": "third"}])  # the config changed meanwhile: DEL uses the cache
    restarted.teardown(PodNetworkRequest("pod9", ""))
    dels = [x for x in calls() if x["cmd"] == "DEL"]
    assert [x["plugin"] for x in dels] == ["second", "first"]
    assert dels[0]["conf"]["prevResult"]["seen"] == ["first", "second"]
    assert dels[0]["env"]["CNI_NETNS"] == ""  # the netns is gone: plugins must cope
    assert restarted.cache.pod_ids() == []


def test_plugin_error_object_is_surfaced_and_add_is_rolled_back(rec):
    make, calls = rec
    net = make([{"type": "first"}, {"type": "second", "fail": "ADD"}])
    with pytest.raises(CNIPluginError) as ei:
        net.setup(REQ)
    assert (ei.value.plugin, ei.value.code, ei.value.msg, ei.value.details) == (
        "second", 11, "planned", "second")
    assert [(x["plugin"], x["cmd"]) for x in calls()] == [
        ("first", "ADD"), ("second", "ADD"), ("second", "DEL"), ("first", "DEL")]
    assert net.cache.pod_ids() == []


def test_plugin_timeout(rec):
    make, _ = rec
    net = make([{"type": "first", "hang": "ADD"}], timeout=0.5)
    with pytest.raises(NetworkSetupFailed, match="timed out after 0.5s"):
        net.setup(REQ)


def test_missing_plugin_is_named(rec):
    make, _ = rec
    net = make([{"type": "nosuchplugin"}])
    assert "nosuchplugin" in net.status().message
    with pytest.raises(NetworkSetupFailed, match="'nosuchplugin' not found"):
        net.setup(REQ)


def test_status_verb_for_cni_1_1(rec):
    make, calls = rec
    assert make([{"type": "first"}], version="1.1.0").status().ready
    assert calls()[-1]["cmd"] == "STATUS"
    st = make([{"type": "first", "fail": "STATUS"}], version="1.1.0").status()
    assert (st.ready, st.reason) == (False, "NetworkPluginNotReady")
    assert "planned" in st.message


def test_check_sends_the_cached_result(rec):
    make, calls = rec
    net = make([{"type": "first"}])
    net.setup(REQ)
    net.check(REQ)
    check = calls()[-1]
    assert check["cmd"] == "CHECK" and check["conf"]["prevResult"]["seen"] == ["first"]
