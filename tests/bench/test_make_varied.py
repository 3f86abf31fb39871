"""bench/make_varied.py: the varied real-stack benchmark capture, short.

* ``netns``: the real stacks (pymodbus, asyncua, mosquitto + paho MQTT 5) in
  namespaces of our own make a small capture; otwatch decodes exactly as many
  Modbus, MQTT and OPC UA messages as tshark finds in it, and the traffic is
  varied (both unit ids, many register ranges and topics, OPC UA Writes).
* ``grow`` replays it into more sites: exactly N packets, deterministic, every
  checksum still right (tshark validates them), one subnet per site, and the
  same message counts as tshark again.
* The checksum arithmetic (RFC 1624) against a full recomputation, without root.
"""
from __future__ import annotations

import collections
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from otwatch.sensor import observations as O
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "bench" / "make_varied.py"
_spec = importlib.util.spec_from_file_location("make_varied", GENERATOR)
make_varied = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("make_varied", make_varied)
_spec.loader.exec_module(make_varied)

BENIGN_QUIET = ("dos.mqtt_topic_flood", "dos.message_flood", "command.modbus_rogue_writer", "recon.key_overflow")
"""Rules the varied benign traffic must not raise (recon.key_overflow: at this scale no link reaches its cap)."""
DURATION = 6          # seconds of real traffic
SCALE = 0.4           # of the benchmark's client rates: a few thousand packets
PROTOCOLS = ("modbus", "mqtt", "opcua")


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "tcpdump", "mosquitto", "tshark"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("varied") / "base.pcap"
    prefix = f"otwv{os.getpid() % 100000}"
    r = subprocess.run([sys.executable, str(GENERATOR), "base", "--duration", str(DURATION), "--scale", str(SCALE),
                        "--prefix", prefix, "--out", str(out)], capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{prefix}-" not in leftovers, "namespaces not torn down"
    return out


def ours(path: Path) -> collections.Counter:
    """Message observations per protocol, every message decoded in full."""
    counts: collections.Counter = collections.Counter()

    class Count:
        def observe(self, obs):
            if type(obs) is O.Message:
                counts[obs.protocol] += 1

    p = Pipeline([Count()], Settings(detail_all=True))
    p.run_file(str(path))
    p.finish()
    return counts


def tshark_fields(path: Path, *fields: str) -> list[list[list[str]]]:
    """Per frame, per field, every occurrence (tshark -E occurrence=a)."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    return [[col.split(",") if col else [] for col in line.split("\t")] for line in out.splitlines()]


def theirs(path: Path) -> collections.Counter:
    """Messages per protocol as tshark counts them: Modbus ADUs, MQTT control packets, OPC UA messages."""
    counts: collections.Counter = collections.Counter()
    for row in tshark_fields(path, "mbtcp.trans_id", "mqtt.msgtype", "opcua.transport.type"):
        for proto, col in zip(PROTOCOLS, row):
            counts[proto] += len(col)
    return counts


def test_real_stacks_decode_like_tshark(base):
    want = theirs(base)
    assert all(want[p] > 100 for p in PROTOCOLS), want
    assert ours(base) == want


def test_real_stacks_traffic_is_varied(base):
    rows = tshark_fields(base, "mbtcp.unit_id", "modbus.func_code", "modbus.reference_num", "modbus.word_cnt",
                         "mqtt.topic", "mqtt.qos", "opcua.servicenodeid.numeric")
    units, funcs, ranges, topics, qos, services = set(), set(), set(), set(), set(), collections.Counter()
    for unit, fc, ref, cnt, topic, q, svc in rows:
        units.update(unit)
        funcs.update(fc)
        if ref and cnt:
            ranges.add((ref[0], cnt[0]))
        topics.update(topic)
        qos.update(q)
        services.update(svc)
    assert units == {"1", "2"}
    assert {"1", "2", "3", "4", "5", "6", "15", "16"} <= funcs
    assert len(ranges) > 200, len(ranges)
    assert len(topics) > 500, len(topics)
    assert qos == {"0", "1", "2"}
    assert services["631"] > 20 and services["673"] > 2, services   # ReadRequest, WriteRequest


def test_grow_replays_into_new_sites(base, tmp_path):
    n_base = len(make_varied.read_pcap(base)[1])
    packets = n_base * 5 // 2
    out, again = tmp_path / "grown.pcap", tmp_path / "again.pcap"
    meta = make_varied.grow(base, out, packets, groups=2)
    make_varied.grow(base, again, packets, groups=2)
    assert meta["packets"] == packets == len(make_varied.read_pcap(out)[1])
    assert out.read_bytes() == again.read_bytes()
    bad = subprocess.run(["tshark", "-n", "-r", str(out), "-o", "ip.check_checksum:TRUE",
                          "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                          "-Y", "ip.checksum.status==0 || tcp.checksum.status==0 || udp.checksum.status==0"
                                " || _ws.malformed"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert bad == ""
    nets = collections.Counter()
    for src, dst in tshark_fields(out, "ip.src", "ip.dst"):
        for a in src + dst:
            nets[a.rsplit(".", 1)[0]] += 1
    # 2 copies at a time, 2 sites each: epoch 0 (sites 0-3) and the start of epoch 1 (sites 4-7)
    assert set(nets) == {f"10.100.{s}" for s in range(8)}, nets
    assert ours(out) == theirs(out)


def test_grow_reuse_sites_replays_the_same_sites_on_new_connections(base, tmp_path):
    n_base = len(make_varied.read_pcap(base)[1])
    out = tmp_path / "reuse.pcap"
    make_varied.grow(base, out, n_base * 2 + 500, groups=1, reuse_sites=True)
    bad = subprocess.run(["tshark", "-n", "-r", str(out), "-o", "ip.check_checksum:TRUE",
                          "-o", "tcp.check_checksum:TRUE", "-Y", "ip.checksum.status==0 || tcp.checksum.status==0"],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert bad == ""
    conns = collections.defaultdict(set)
    for src, dst, sport, dport in tshark_fields(out, "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport"):
        if sport and dport:
            server = int(dport[0]) in make_varied.SERVER_PORTS
            conns[(src[0], dst[0]) if server else (dst[0], src[0])].add(sport[0] if server else dport[0])
    assert {a.rsplit(".", 1)[0] for pair in conns for a in pair} == {"10.100.0", "10.100.1"}
    # every client connection of the first epoch appears again on another port in the next ones
    assert conns and all(len(ports) >= 2 for ports in conns.values()), conns


def _tcp_frame(src: bytes, dst: bytes, payload: bytes) -> bytes:
    from make_demo_plant import _inet_checksum

    tcp = struct.pack("!HHIIBBHHH", 40000, 502, 1, 2, 0x50, 0x18, 1000, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 7, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _inet_checksum(ip)) + ip[12:]
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _inet_checksum(pseudo + tcp)) + tcp[18:]
    return bytes(6) + bytes.fromhex("0080f40a3d0b") + b"\x08\x00" + ip + tcp


@pytest.mark.parametrize("copy", [0, 1, 300])
@pytest.mark.parametrize("payload", [b"", b"\x00\x01\x00\x00\x00\x06\x01\x03\x00\x10\x00\x05", b"\xff" * 7])
def test_site_rewrite_checksums(copy, payload):
    src, dst = bytes((10, 61, 0, 21)), bytes((10, 61, 0, 11))
    frame = _tcp_frame(src, dst, payload)
    s = 2 * copy
    new = make_varied.SiteMap(copy).rewrite(frame)
    want_src, want_dst = make_varied.site_net(s) + bytes((21,)), make_varied.site_net(s) + bytes((11,))
    assert new[6:12] == bytes.fromhex("0080f40a3d0b")[:3] + bytes((s >> 8, s & 255, 0x0b))
    assert new == _tcp_frame(want_src, want_dst, payload)[:6] + new[6:12] + _tcp_frame(want_src, want_dst, payload)[12:]


SWEEPS = ("recon.modbus_register_sweep", "recon.modbus_unit_sweep", "recon.modbus_function_sweep",
          "baseline.register_sweep", "baseline.unit_id_sweep", "baseline.function_code_sweep")


def test_real_stacks_reading_varied_ranges_raise_no_sweep(base, impl, tmp_path):
    """The pymodbus client reads and writes random ranges of both PLCs and both units: busy, never a sweep —
    neither from the alert detectors alone nor with a baseline learned on the first half (issue 14 leftovers)."""
    from otwatch.sensor.alerts.analysis import OfflineAlerts
    from otwatch.sensor.baseline.detect import Detector
    from otwatch.sensor.baseline.learn import Learner
    from otwatch.sensor.baseline.model import Baseline

    data = base.read_bytes()
    pos, times = 24, []
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from("<IIII", data, pos)
        times.append((sec, pos))
        pos += 16 + incl
    cut = next(p for s, p in times if s >= (times[0][0] + times[-1][0]) / 2)
    first, second = tmp_path / "first.pcap", tmp_path / "second.pcap"
    first.write_bytes(data[:cut])
    second.write_bytes(data[:24] + data[cut:])
    settings = Settings(implementation=impl)
    b = Baseline()
    p = Pipeline([Learner(b, settings.interval)], settings)
    p.run_file(str(first))
    p.finish()
    for path, detector in ((base, None), (second, b)):
        off = OfflineAlerts()
        if detector is not None:
            off.add_producer(Detector(detector, off.sink))
        p = Pipeline(off.consumers, settings)
        off.start_file(str(path), 0)
        p.run_file(str(path))
        p.finish()
        off.finish()
        modbus = [a for a in off.alerts() if a.protocol == "modbus"]
        assert [(a.rule, a.src, a.dst, a.count) for a in modbus if a.rule in SWEEPS] == [], path
        # the subscriber to site/# receives every publisher's topics: it floods nothing; the publishers bring up
        # their 2,500 tags each (no topic flood), the busy master and historian are no message flood, the one
        # Modbus client of each PLC is its only writer
        assert [(a.rule, a.src) for a in off.alerts() if a.rule in BENIGN_QUIET] == [], path
