"""Two network namespaces joined by a veth pair, made by the test itself.

``VethPair(tag)`` creates namespaces ``otw<tag>r`` (the replay side, interface
``vr``) and ``otw<tag>s`` (the sensor side, interface ``vs``), with IPv6
disabled and no addresses or routes, so that nothing but what the test replays
crosses the link and nothing can leave either namespace.  ``close()`` deletes
both.  Needs root and iproute2.
"""
from __future__ import annotations

import os
import shutil
import subprocess


def available() -> str | None:
    """None when veth tests can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not shutil.which("ip"):
        return "iproute2 missing"
    return None


def netns_unavailable(tools=(), modules=()) -> str | None:
    """None when a capture builder can make network namespaces here with *tools* on PATH and the Python
    *modules* importable, else why not (one probe namespace is added and removed)."""
    import importlib.util

    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    for mod in modules:
        if importlib.util.find_spec(mod.split(".")[0]) is None or importlib.util.find_spec(mod) is None:
            return f"python package {mod} not installed"
    probe = "otwprobe-" + str(os.getpid())
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip netns unavailable: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


class VethPair:
    def __init__(self, tag: str | None = None, mtu: int = 9000):
        tag = tag or str(os.getpid())
        self.replay_ns, self.sensor_ns = f"otw{tag}r", f"otw{tag}s"
        self.replay_if, self.sensor_if = "vr", "vs"
        for ns in (self.replay_ns, self.sensor_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            _run("ip", "netns", "add", ns)
            for key in ("all", "default"):
                self.ns(ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
        _run("ip", "link", "add", self.replay_if, "netns", self.replay_ns, "mtu", str(mtu), "type", "veth",
             "peer", "name", self.sensor_if, "netns", self.sensor_ns, "mtu", str(mtu))
        self.ns(self.replay_ns, "ip", "link", "set", self.replay_if, "up")
        self.ns(self.sensor_ns, "ip", "link", "set", self.sensor_if, "up")

    def ns(self, ns: str, *cmd: str) -> str:
        return _run("ip", "netns", "exec", ns, *cmd)

    def popen(self, ns: str, cmd: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)

    def counters(self, side: str = "sensor") -> dict:
        ns, iface = (self.sensor_ns, self.sensor_if) if side == "sensor" else (self.replay_ns, self.replay_if)
        out = {}
        for k in ("tx_packets", "tx_bytes", "rx_packets", "rx_dropped"):
            out[k] = int(self.ns(ns, "cat", f"/sys/class/net/{iface}/statistics/{k}"))
        return out

    def close(self) -> None:
        for ns in (self.replay_ns, self.sensor_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
