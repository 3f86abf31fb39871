"""Address → zone: which zone an endpoint belongs to.

``ZoneMap(policy).zone(ip, mac="", vlan=0, asset="")`` answers with a zone name
or ``model.UNZONED``.  The most specific claim wins:

1. an inventory asset id listed in ``assets`` (``asset`` argument, or the ids the
   inventory gives a host by itself: ``mac:<mac>`` and ``ip:<ip>[@vlan<n>]``);
2. the MAC (``macs``) — only meaningful on the capture's own segment: a routed
   packet carries the router's MAC, so do not list routers by MAC;
3. the IP address, longest prefix first (``networks``; a /32 inside another
   zone's /24 belongs to the /32's zone);
4. the VLAN (``vlans``).

Lookups go through a bounded cache (``CACHE_MAX`` entries, cleared when full):
plants reuse a few hundred addresses, a scan must not grow it without bound.
"""
from __future__ import annotations

import ipaddress

from .model import UNZONED, Policy

CACHE_MAX = 65536
"""Distinct (ip, mac, vlan, asset) answers remembered; beyond it the cache starts over."""


class ZoneMap:
    def __init__(self, policy: Policy):
        self.by_asset: dict[str, str] = {}
        self.by_mac: dict[str, str] = {}
        self.by_vlan: dict[int, str] = {}
        self.by_prefix: dict[int, dict[int, dict[int, str]]] = {4: {}, 6: {}}   # version -> plen -> net -> zone
        self.levels: dict[str, object] = {}
        for z in policy.zones.values():
            self.levels[z.name] = z.level
            for a in z.assets:
                if a.startswith("mac:"):
                    self.by_mac[a[4:]] = z.name
                else:
                    self.by_asset[a] = z.name
            for m in z.macs:
                self.by_mac[m] = z.name
            for v in z.vlans:
                self.by_vlan[v] = z.name
            for net in z.networks:
                bits = net.max_prefixlen
                self.by_prefix[net.version].setdefault(net.prefixlen, {})[
                    int(net.network_address) >> (bits - net.prefixlen) if net.prefixlen else 0] = z.name
        self._lengths = {ver: sorted(d, reverse=True) for ver, d in self.by_prefix.items()}
        self._broadcasts = {int(net.broadcast_address): z.name for z in policy.zones.values()
                            for net in z.networks if net.version == 4 and net.prefixlen < 31}
        self._cache: dict = {}
        self._group_cache: dict = {}

    def group_destination(self, ip: str) -> bool:
        """Multicast, limited broadcast, or the broadcast address of a zone network (cached)."""
        g = self._group_cache.get(ip)
        if g is None:
            g = self.is_group(ip) or self.directed_broadcast(ip) is not None
            if len(self._group_cache) >= CACHE_MAX:
                self._group_cache.clear()
            self._group_cache[ip] = g
        return g

    def zone(self, ip: str, mac: str = "", vlan: int = 0, asset: str = "") -> str:
        key = (ip, mac, vlan, asset)
        z = self._cache.get(key)
        if z is None:
            z = self._resolve(ip, mac, vlan, asset)
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[key] = z
        return z

    def _resolve(self, ip: str, mac: str, vlan: int, asset: str) -> str:
        if asset and asset in self.by_asset:
            return self.by_asset[asset]
        if self.by_asset and ip:
            own = self.by_asset.get(f"ip:{ip}@vlan{vlan}" if vlan else "ip:" + ip)
            if own:
                return own
        if mac and mac in self.by_mac:
            return self.by_mac[mac]
        z = self.ip_zone(ip)
        if z is not None:
            return z
        return self.by_vlan.get(vlan, UNZONED) if vlan else UNZONED

    def zone_of(self, ip: str, mac: str = "", vlan: int = 0, asset: str = "") -> str | None:
        """The inventory's hook (``Inventory.zone_of``): the zone of an endpoint as ``zone`` resolves it,
        None when unzoned.  The inventory passes the asset's MAC, VLAN and id with its address, so its
        ``zone`` column and ``modbus.cross_zone`` agree with the policy checker."""
        z = self.zone(ip, mac, vlan, asset)
        return None if z == UNZONED else z

    def ip_zone(self, ip: str) -> str | None:
        """The zone of an address by the networks alone (longest prefix), or None."""
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return None
        n = int(a)
        bits = a.max_prefixlen
        table = self.by_prefix[a.version]
        for plen in self._lengths[a.version]:
            z = table[plen].get(n >> (bits - plen) if plen else 0)
            if z is not None:
                return z
        return None

    @staticmethod
    def is_group(ip: str) -> bool:
        """Multicast or limited broadcast: delivered on the sender's own segment."""
        try:
            a = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return a.is_multicast or (a.version == 4 and int(a) == 0xFFFFFFFF)

    def directed_broadcast(self, ip: str) -> str | None:
        """The zone whose network's broadcast address this is (e.g. 10.10.0.255 of 10.10.0.0/24)."""
        try:
            return self._broadcasts.get(int(ipaddress.IPv4Address(ip)))
        except ValueError:
            return None


__all__ = ["ZoneMap", "CACHE_MAX"]
