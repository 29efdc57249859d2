"""``PodNetwork`` through CNI plugins (spec 1.0/1.1): ADD along the chain with prevResult,
DEL in reverse, CHECK, STATUS, with a result cache for DEL after a restart."""

from __future__ import annotations

import os
from typing import Any

from crid.network.api import NetworkOptions, NetworkStatus, PodNetworkRequest, PodNetworkResult
from crid.network.cni.cache import CacheEntry, ResultCache
from crid.network.cni.config import NetworkConfigList, find_config, version_tuple
from crid.network.cni.invoke import CniArgs, find_plugin, k8s_args, run_plugin
from crid.network.cni.result import parse_result, plugin_conf, runtime_config
from crid.network.errors import NetworkError, NetworkNotReady, NetworkSetupFailed
from crid.network.validate import check_request

NOT_READY = "NetworkPluginNotReady"


class CNINetwork:
    """Runs the first network config of ``options.cni_conf_dir``; the config is re-read on
    each setup so an installed or changed CNI config takes effect without a restart."""

    def __init__(self, options: NetworkOptions) -> None:
        self.opts = options
        self.cache = ResultCache(os.path.join(options.state_dir, "cni", "results"))

    def _config(self) -> NetworkConfigList:
        conf = find_config(self.opts.cni_conf_dir)
        if conf is None:
            raise NetworkNotReady(f"no CNI network config in {self.opts.cni_conf_dir}")
        return conf

    def _args(self, entry: CacheEntry, netns: str) -> CniArgs:
        return CniArgs(entry.pod_id, netns, entry.ifname, entry.cni_args,
                       tuple(self.opts.cni_bin_dirs))

    def _run_chain(self, entry: CacheEntry, command: str, netns: str,
                   prev: dict[str, Any] | None) -> dict[str, Any] | None:
        args = self._args(entry, netns)
        plugins = entry.plugins if command != "DEL" else list(reversed(entry.plugins))
        for plugin in plugins:
            conf = plugin_conf(plugin, entry.network, entry.cni_version, entry.runtime_config,
                               prev)
            out = run_plugin(plugin["type"], command, conf, args, self.opts.cni_timeout)
            if command == "ADD":
                prev = out
        return prev

    def setup(self, req: PodNetworkRequest) -> PodNetworkResult:
        check_request(req)
        conf = self._config()
        entry = CacheEntry(req.pod_id, conf.name, conf.cni_version, list(conf.plugins),
                           req.ifname, req.netns_path,
                           k8s_args(req.pod_namespace, req.pod_name, req.pod_id, req.pod_uid),
                           runtime_config(req))
        # Cached before ADD: a crash mid-ADD still leaves DEL the config to clean up with.
        self.cache.put(entry)
        try:
            entry.result = self._run_chain(entry, "ADD", req.netns_path, None)
            result = parse_result(entry.result, req.ifname)
            self.cache.put(entry)
        except BaseException:
            self._rollback(entry, req.netns_path)
            raise
        return result

    def _rollback(self, entry: CacheEntry, netns: str) -> None:
        try:
            self._run_chain(entry, "DEL", netns, entry.result)
            self.cache.remove(entry.pod_id)
        except NetworkError:
            pass  # the cache entry stays: a later teardown retries the DEL

    def teardown(self, req: PodNetworkRequest) -> None:
        """DEL with the cached config and result of the ADD; without a cache entry (never set
        up, or a crash before the cache write) with the current config. The netns may be
        gone: CNI_NETNS is then empty, which plugins accept for DEL."""
        entry = self.cache.get(req.pod_id)
        if entry is None:
            try:
                conf = self._config()
            except NetworkError:
                return  # no config, no cache: nothing was ever set up by us
            entry = CacheEntry(req.pod_id, conf.name, conf.cni_version, list(conf.plugins),
                               req.ifname, req.netns_path,
                               k8s_args(req.pod_namespace, req.pod_name, req.pod_id,
                                        req.pod_uid), runtime_config(req))
        netns = req.netns_path or entry.netns
        self._run_chain(entry, "DEL", netns if netns and os.path.exists(netns) else "",
                        entry.result)
        self.cache.remove(req.pod_id)

    def check(self, req: PodNetworkRequest) -> None:
        entry = self.cache.get(req.pod_id)
        if entry is None or entry.result is None:
            raise NetworkSetupFailed(f"pod {req.pod_id}: no CNI result cached")
        if version_tuple(entry.cni_version) < (0, 4, 0):
            return  # CHECK exists from 0.4.0 on
        conf = find_config(self.opts.cni_conf_dir)
        if conf is not None and conf.disable_check:
            return
        args = self._args(entry, req.netns_path or entry.netns)
        for plugin in entry.plugins:
            c = plugin_conf(plugin, entry.network, entry.cni_version, entry.runtime_config,
                            entry.result)
            run_plugin(plugin["type"], "CHECK", c, args, self.opts.cni_timeout)

    def status(self) -> NetworkStatus:
        """Ready when a config parses and its plugins exist; for cniVersion ≥ 1.1.0 each
        plugin's STATUS must also succeed."""
        try:
            conf = self._config()
            for plugin in conf.plugins:
                find_plugin(plugin["type"], tuple(self.opts.cni_bin_dirs))
            if version_tuple(conf.cni_version) >= (1, 1, 0):
                args = CniArgs("", "", "", "", tuple(self.opts.cni_bin_dirs))
                for plugin in conf.plugins:
                    c = plugin_conf(plugin, conf.name, conf.cni_version, {}, None)
                    run_plugin(plugin["type"], "STATUS", c, args, self.opts.cni_timeout)
        except NetworkError as e:
            return NetworkStatus(False, NOT_READY, str(e))
        return NetworkStatus(True)

    def update_pod_cidr(self, cidr: str) -> None:
        """CNI plugins own their address ranges; the pod CIDR is not passed to them."""

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        released = []
        for pod_id in self.cache.pod_ids():
            if pod_id not in live_pod_ids:
                entry = self.cache.get(pod_id)
                self.teardown(PodNetworkRequest(pod_id, entry.netns if entry else ""))
                released.append(pod_id)
        return released
