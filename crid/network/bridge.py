"""The built-in bridge network: the embedded default, needing only the kernel and nft
(or iptables).

Per pod: an address per configured family from the persistent IPAM, a veth pair whose host
side joins the bridge and whose peer is born in the pod's netns as ``eth0``, loopback up,
default routes via the bridge's gateway addresses, and hostPort DNAT rules. Setup is all or
nothing; teardown needs only the pod id and what is on disk.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator

from pyroute2.netlink.exceptions import NetlinkError

from crid.network import links, rtnl, sysctl
from crid.network.api import (
    NetworkOptions,
    NetworkStatus,
    PodNetworkRequest,
    PodNetworkResult,
    Route,
)
from crid.network.errors import (
    InvalidNetworkConfig,
    NetworkError,
    NetworkSetupFailed,
    PortInUse,
)
from crid.network.fsutil import read_json, write_json_atomic
from crid.network.leases import Lease, LeaseStore, gateway_of, parse_interface
from crid.network.nat import NatBackend, NatSpec, NatTarget, default_backend, render_nft
from crid.network.nsnetlink import iproute_in, rtnl_in
from crid.network.validate import (
    Network,
    check_options,
    check_request,
    host_ports,
    parse_cidr,
    ports_clash,
)

NOT_READY = "NetworkPluginNotReady"


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    """Turn kernel/tool failures of one step into NetworkSetupFailed naming the step."""
    try:
        yield
    except NetworkError:
        raise
    except (NetlinkError, OSError, ValueError) as e:
        raise NetworkSetupFailed(f"{what}: {e}") from e


class BridgeNetwork:
    """``PodNetwork`` over a Linux bridge. Thread-safe and safe across processes sharing
    ``options.state_dir``."""

    def __init__(self, options: NetworkOptions, nat: NatBackend | None = None) -> None:
        check_options(options)
        self.opts = options
        self._v4: Network = parse_cidr(options.pod_cidr, 4)
        self._v6: Network | None = (parse_cidr(options.pod_cidr_v6, 6, "IPv6 pod CIDR")
                                    if options.pod_cidr_v6 else None)
        self.store = LeaseStore(options.state_dir)
        self.nat = nat or default_backend()
        self._nat_applied = os.path.join(options.state_dir, "nat.applied")
        self._bridge: tuple[tuple[str, ...], int] | None = None  # (gateways, index) prepared

    # -- configuration -------------------------------------------------------------------

    def networks(self) -> list[Network]:
        """The pod networks new pods get addresses from (IPv4 first)."""
        return [self._v4] + ([self._v6] if self._v6 else [])

    def gateways(self) -> list[str]:
        return [f"{gateway_of(n)}/{n.prefixlen}" for n in self.networks()]

    def update_pod_cidr(self, cidr: str) -> None:
        """Accepts "v4", "v6" or "v4,v6" (the kubelet's dual-stack form); pods already set up
        keep their addresses."""
        parts = [p.strip() for p in cidr.split(",") if p.strip()]
        if len(parts) > 2:
            raise InvalidNetworkConfig(f"invalid pod CIDR {cidr!r}: at most one per family")
        nets = [parse_cidr(p) for p in parts]
        if len({n.version for n in nets}) != len(nets):
            raise InvalidNetworkConfig(f"invalid pod CIDR {cidr!r}: two of one family")
        for n in nets:
            if n.version == 4:
                self._v4 = n
            else:
                self._v6 = n

    # -- NAT -----------------------------------------------------------------------------

    def _nat_spec(self, leases: list[Lease]) -> NatSpec:
        nets = {n for n in self.networks()}
        targets = []
        for lease in leases:
            ifaces = [parse_interface(a) for a in lease.addresses]
            nets.update(i.network for i in ifaces)
            ips = tuple(str(i.ip) for i in ifaces)
            targets += [NatTarget(pm, ips) for pm in lease.port_mappings]
        ordered = tuple(sorted(nets, key=lambda n: (n.version, n)))
        return NatSpec(self.opts.nft_table, self.opts.bridge, ordered, tuple(targets))

    def _sync_nat(self, leases: list[Lease], force: bool = False) -> None:
        """Load the ruleset for ``leases`` unless the one loaded last is identical; call with
        the store lock held."""
        spec = self._nat_spec(leases)
        text = render_nft(spec)
        if not force and (read_json(self._nat_applied) or {}).get("rules") == text:
            return
        self.nat.apply(spec)
        write_json_atomic(self._nat_applied, {"rules": text})

    # -- host side -----------------------------------------------------------------------

    def _ensure_host(self, full: bool = False) -> int:
        """The bridge's index, with its gateways, up, and the sysctls set. Once this
        instance has prepared the bridge, a pod's setup only checks that the same bridge is
        still there and up (one cheap lookup); ``full`` (status) re-checks everything."""
        gws = self.gateways()
        with _step(f"preparing bridge {self.opts.bridge}"):
            idx = None if full else self._known_bridge(gws)
            if idx is None:
                with iproute_in(None) as ipr:
                    idx = links.ensure_bridge(ipr, self.opts.bridge, gws)
                self._bridge = (tuple(gws), idx)
        with _step("setting sysctls"):
            for key, value in sysctl.bridge_keys(self.opts.bridge, self._v6 is not None):
                sysctl.ensure(key, value)
        return idx

    def _known_bridge(self, gws: list[str]) -> int | None:
        known = self._bridge
        if known is None or known[0] != tuple(gws):
            return None
        with rtnl_in(None) as rt:
            link = rtnl.lookup(rt, self.opts.bridge)
        ok = link is not None and link.index == known[1] and link.flags & rtnl.IFF_UP
        return known[1] if ok else None

    def _veth(self, pod_id: str) -> str:
        return links.host_veth_name(self.opts.veth_salt + pod_id)

    def _delete_veth(self, name: str) -> None:
        with _step(f"deleting veth {name}"), rtnl_in(None) as rt:
            links.delete_link(rt, name)

    # -- PodNetwork ----------------------------------------------------------------------

    def setup(self, req: PodNetworkRequest) -> PodNetworkResult:
        check_request(req)
        if not os.path.exists(req.netns_path):
            raise InvalidNetworkConfig(f"pod {req.pod_id}: netns {req.netns_path} not found")
        host = self._veth(req.pod_id)
        with contextlib.ExitStack() as undo:
            lease = self._reserve(req, host)
            undo.callback(self._release, req.pod_id)
            bridge_idx = self._ensure_host()
            with _step(f"pod {req.pod_id}: creating veth {host}"), rtnl_in(None) as rt:
                undo.callback(self._delete_veth, host)
                links.add_veth(rt, host, bridge_idx, req.netns_path, req.ifname,
                               self.opts.mtu)
            gws = self._lease_gateways(lease)
            with _step(f"pod {req.pod_id}: configuring {req.ifname} in {req.netns_path}"), \
                    rtnl_in(req.netns_path) as nsr:
                mac = links.configure_pod_side(nsr, req.ifname, lease.addresses,
                                               gws if req.default_route else [])
            undo.pop_all()
        return self._result(lease, mac, gws)

    def _reserve(self, req: PodNetworkRequest, host: str) -> Lease:
        """Under the store lock (kept short: no fsync, the index in memory): refuse clashing
        hostPorts, lease addresses, load NAT."""
        mappings = host_ports(req)
        with self.store.held():
            leases = self.store.all()
            for other in leases:
                if other.pod_id == req.pod_id:
                    raise InvalidNetworkConfig(
                        f"pod {req.pod_id}: network is already set up ({other.addresses})")
                for theirs in other.port_mappings:
                    for mine in mappings:
                        if ports_clash(mine, theirs):
                            raise PortInUse(
                                f"pod {req.pod_id}: hostPort {mine.protocol}/{mine.host_port}"
                                f"{' on ' + mine.host_ip if mine.host_ip else ''} is already "
                                f"mapped to pod {other.pod_id}")
            with _step(f"pod {req.pod_id}: leasing addresses"):
                addrs = self.store.allocate(self.networks(), leases)
                lease = Lease(req.pod_id, addrs, host, req.ifname, req.netns_path, mappings)
                # Visible to every other allocator at once; flushed below, outside the lock,
                # before the address is used (a crash before that leaves no user of it).
                self.store.put(lease, durable=False)
            try:
                self._sync_nat(leases + [lease])
            except BaseException:
                self.store.remove(req.pod_id)
                raise
        try:
            self.store.make_durable(req.pod_id)
        except BaseException:
            self._release(req.pod_id)
            raise
        return lease

    def _release(self, pod_id: str) -> None:
        with self.store.held():
            if self.store.remove(pod_id):
                self._sync_nat(self.store.all())

    def _lease_gateways(self, lease: Lease) -> list[str]:
        out = []
        for a in lease.addresses:
            net = ipaddress.ip_interface(a).network
            out.append(f"{gateway_of(net)}/{net.prefixlen}")
        return out

    def _result(self, lease: Lease, mac: str, gws: list[str]) -> PodNetworkResult:
        ifaces = [ipaddress.ip_interface(a) for a in lease.addresses]
        gw_ips = [str(ipaddress.ip_interface(g).ip) for g in gws]
        routes = [Route("0.0.0.0/0" if i.version == 4 else "::/0", g)
                  for i, g in zip(ifaces, gw_ips, strict=True)]
        return PodNetworkResult(ips=[str(i.ip) for i in ifaces], interface=lease.ifname,
                                mac=mac, prefixes=list(lease.addresses), gateways=gw_ips,
                                routes=routes)

    def teardown(self, req: PodNetworkRequest) -> None:
        lease = self.store.get(req.pod_id)
        self._delete_veth(lease.host_veth if lease else self._veth(req.pod_id))
        self._release(req.pod_id)

    def check(self, req: PodNetworkRequest) -> None:
        lease = self.store.get(req.pod_id)
        if lease is None:
            raise NetworkSetupFailed(f"pod {req.pod_id}: no address lease")
        with _step(f"pod {req.pod_id}: checking"), iproute_in(None) as ipr:
            idx = links.link_index(ipr, lease.host_veth)
            if idx is None:
                raise NetworkSetupFailed(f"pod {req.pod_id}: veth {lease.host_veth} missing")
        with _step(f"pod {req.pod_id}: checking {req.netns_path}"), \
                iproute_in(req.netns_path) as nsr:
            have = links.pod_addresses(nsr, lease.ifname)
        missing = set(lease.addresses) - have
        if missing:
            raise NetworkSetupFailed(
                f"pod {req.pod_id}: {lease.ifname} lacks {sorted(missing)} (has {sorted(have)})")

    def status(self) -> NetworkStatus:
        """Ready when the bridge is up with its gateways, forwarding is on and the NAT table
        is loaded; (re)creates what is missing, so a flushed table heals here."""
        try:
            self._ensure_host(full=True)
            with self.store.held():
                self._sync_nat(self.store.all(), force=not self.nat.present(self.opts.nft_table))
        except NetworkError as e:
            return NetworkStatus(False, NOT_READY, str(e))
        return NetworkStatus(True)

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        released = []
        for lease in self.store.all():
            if lease.pod_id not in live_pod_ids:
                self.teardown(PodNetworkRequest(lease.pod_id, lease.netns_path))
                released.append(lease.pod_id)
        self._delete_stray_veths()
        return released

    def _delete_stray_veths(self) -> None:
        """Ports of our bridge no lease accounts for: leftovers of a crash mid-setup."""
        with self.store.held(), _step("removing stray veths"), iproute_in(None) as ipr:
            br = links.link_index(ipr, self.opts.bridge)
            if br is None:
                return
            known = {lease.host_veth for lease in self.store.all()}
            stray = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                     if link.get_attr("IFLA_MASTER") == br]
            with rtnl_in(None) as rt:
                for name in stray:
                    if name not in known:
                        links.delete_link(rt, name)

    def remove_network(self) -> None:
        """Delete the bridge and the NAT table (uninstall, tests). Leases stay on disk."""
        with self.store.held():
            with _step(f"deleting bridge {self.opts.bridge}"), rtnl_in(None) as rt:
                links.delete_link(rt, self.opts.bridge)
            self._bridge = None
            self.nat.remove(self.opts.nft_table)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._nat_applied)
