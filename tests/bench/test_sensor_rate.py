"""bench/sensor_rate.py: the live-rate bench measures what it claims, on a small capture.

* With ``--receive napi`` (bench/xdp_pass.c + threaded NAPI) the sensor's veth
  hands on every frame exactly as sent (no GRO merging), IPv4 and ARP in their
  order, and the receive work runs in a NAPI thread pinned to the chosen CPU
  at real-time priority.  (A frame no protocol handler takes, such as LLDP, can
  reach a packet socket a few places late: NAPI's batched receive,
  ``netif_receive_skb_list``, hands it to the last tap at the end of the batch
  -- the same with a NIC's NAPI.)
* One rate end to end: blast sends the demo plant at top speed, the real
  sensor sees every packet, nothing is dropped, and the sender's, the NAPI
  thread's and the sensor's CPU are all reported.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import subprocess
import time
from pathlib import Path

import dpkt
import pytest

from support.veth import VethPair, netns_unavailable

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "pcaps" / "demo-plant.pcap"
_spec = importlib.util.spec_from_file_location("sensor_rate", ROOT / "bench" / "sensor_rate.py")
sensor_rate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sensor_rate)


def _unavailable() -> str | None:
    return netns_unavailable(("gcc", "tcpdump", "taskset", "chrt", "pgrep"))


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


def _frames(path) -> list[bytes]:
    with open(path, "rb") as fh:
        return [bytes(buf) for _, buf in dpkt.pcap.Reader(fh)]


def _written(path) -> int:
    """Frames in a pcap that tcpdump is still writing (0 while its last record is half written)."""
    try:
        return len(_frames(path))
    except (dpkt.NeedData, ValueError):
        return 0


def test_napi_receive_delivers_every_frame_unchanged(tmp_path):
    v = VethPair(f"t{os.getpid() % 1000}n")
    try:
        pid = sensor_rate.napi_thread(v, 0)
        assert os.sched_getaffinity(pid) == {0}
        assert os.sched_getscheduler(pid) == os.SCHED_FIFO
        out = tmp_path / "seen.pcap"
        dump = v.popen(v.sensor_ns, ["tcpdump", "-B", "65536", "-s0", "-U", "-i", v.sensor_if,
                                     "-w", str(out)], stderr=subprocess.PIPE, text=True)
        assert "listening on" in dump.stderr.readline()   # written once the socket and its filter are set
        sent = v.ns(v.replay_ns, sensor_rate.tool_bin("blast"), v.replay_if, str(CAPTURE), "0")
        n = len(_frames(CAPTURE))
        deadline = time.monotonic() + 60
        while _written(out) < n and time.monotonic() < deadline:   # a ring block comes within a second
            time.sleep(0.1)
        dump.terminate()
        dump.wait(30)
    finally:
        v.close()
    assert f"sent {n} packets" in sent
    seen, want = _frames(out), _frames(CAPTURE)
    assert collections.Counter(seen) == collections.Counter(want)

    def ip_and_arp(frames):
        return [f for f in frames if f[12:14] in (b"\x08\x00", b"\x08\x06")]

    assert ip_and_arp(seen) == ip_and_arp(want)


def test_one_rate_top_speed_sees_all(tmp_path):
    n = len(_frames(CAPTURE))
    row = sensor_rate.one_rate(str(CAPTURE), 0, n, sensor_cpu=1 % os.cpu_count(), replay_cpu=0,
                               tag=f"t{os.getpid() % 1000}r")
    assert (row["sent"], row["seen"], row["kernel_dropped"], row["if_dropped"]) == (n, n, 0, 0)
    assert row["sustained"]
    assert row["sender_cpu_s"] is not None and row["napi_cpu_s"] is not None
