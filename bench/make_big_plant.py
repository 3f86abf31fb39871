#!/usr/bin/env python3
"""A plant with many assets for the TUI's responsiveness (issue 16): 10,000 hosts, thousands of pairs, alerts.

    python bench/make_big_plant.py --assets 10000 --out bench/out/big-plant-10k.pcap [--policy bench/out/big-plant.yaml]

What is in it (classic pcap, Ethernet; frames built with bench/make_capture.py's
TCP machinery: handshakes, sequence numbers, checksums, FIN teardown):

* ``control`` 10.20.0.0/16: PLCs (one per 20 assets) answering Modbus/TCP on 502.
* ``supervisory`` 10.10.0.0/16: HMIs (one per 200 assets), each polling 10 PLCs
  (FC 3 holding registers and FC 1 coils, a few polls per connection).
* ``operations`` 10.40.0.0/24: MQTT brokers (one per 1,000 assets).
* ``field-iot`` 10.30.0.0/16: sensors (the rest) connecting to a broker, publishing
  a temperature and a status topic (``site/area<N>/<sensor>/...``) and closing;
  every 50th sends a user name and password (in clear: a posture alert each).
* What the alerts are about: every 400th sensor polls a PLC with Modbus directly
  (no conduit allows field-iot → control: ``policy.flow_denied``), and a rogue
  laptop (10.99.0.66, no zone) reads and writes 200 PLCs (denied flows, writes,
  a scan).

``--policy`` writes the zones-and-conduits policy that goes with it (docs/rules.md).
Deterministic for a seed; generated in a few seconds (no scapy: ~100k packets).
"""
from __future__ import annotations

import argparse
import heapq
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_capture as mc  # noqa: E402

ACK, PSH, FIN = mc.ACK, mc.PSH, mc.FIN
T0 = 1_750_000_000.0
SPAN_S = 120.0
"""Packet time over which the conversations start (a two-minute SPAN capture)."""
PLC_EVERY, HMI_EVERY, BROKER_EVERY = 20, 200, 1000
"""One PLC per 20 assets, one HMI per 200, one broker per 1,000; the rest are sensors."""
PLCS_PER_HMI = 10
ROGUE_TARGETS = 200
MISPLACED_EVERY = 400
"""Every 400th sensor also polls a PLC (a flow no conduit allows)."""
PASSWORD_EVERY = 50
POLLS = ((1, 3, 0, 20), (1, 1, 0, 32))

POLICY = """\
# Policy for bench/make_big_plant.py's plant (generated with it; docs/rules.md).
version: 1
name: big plant
zones:
  control: {networks: [10.20.0.0/16], level: 1}
  supervisory: {networks: [10.10.0.0/16], level: 2}
  operations: {networks: [10.40.0.0/24], level: 3}
  field-iot: {networks: [10.30.0.0/16], level: 1}
conduits:
  hmi-polling:
    from: supervisory
    to: control
    allow:
      - protocol: modbus
        modbus: {operations: [read], function_codes: [1-4]}
  telemetry:
    from: field-iot
    to: operations
    allow:
      - protocol: mqtt
        mqtt: {publish: [site/#], subscribe: []}
"""


def _ip(net: int, i: int) -> str:
    """The i-th address (from 0) of 10.<net>.0.0/16, 250 a /24 (no .0, no broadcast)."""
    return f"10.{net}.{i // 250}.{i % 250 + 1}"


def _mac(prefix: str, i: int) -> str:
    return f"{prefix}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"


def modbus_session(cli, plc: "mc.PLC", rng, t: float, polls, n: int, writes: bool = False):
    conn = mc.Conn(cli, plc.host, rng.randrange(49152, 65535), 502, mc.CAT_MODBUS, rng)
    t = yield from conn.handshake(t, 0.0004)
    tid = rng.randrange(65536)
    for k in range(n):
        for (unit, fc, addr, qty) in polls:
            tid = (tid + 1) & 0xFFFF
            t += 0.01
            yield t
            conn.pkt(0, t, PSH | ACK, mc.mb_adu(tid, unit, struct.pack("!BHH", fc, addr, qty)))
            t += 0.002
            yield t
            conn.pkt(1, t, PSH | ACK, mc.mb_adu(tid, unit, plc.answer(unit, fc, addr, qty)))
        if writes:
            tid = (tid + 1) & 0xFFFF
            pdu = struct.pack("!BHH", 6, 10 + k, 1234)
            t += 0.01
            yield t
            conn.pkt(0, t, PSH | ACK, mc.mb_adu(tid, 1, pdu))
            t += 0.002
            yield t
            conn.pkt(1, t, PSH | ACK, mc.mb_adu(tid, 1, pdu))
        t += 0.5
    t = yield from conn.close(t + 0.01, 0.0004)
    return t


def hmi(h, plcs, rng, t):
    for plc in plcs:
        t = yield from modbus_session(h, plc, rng, t + rng.random() * 2, POLLS, 3)


def sensor(s, idx: int, broker, rng, t, plc=None):
    conn = mc.Conn(s, broker, rng.randrange(49152, 65535), 1883, mc.CAT_MQTT, rng)
    t = yield from conn.handshake(t, 0.0003)
    t += 0.001
    yield t
    user = s.name.encode() if idx % PASSWORD_EVERY == 0 else None
    conn.pkt(0, t, PSH | ACK, mc.mqtt_connect(s.name, 4, user))
    t += 0.0005
    yield t
    conn.pkt(1, t, PSH | ACK, b"\x20\x02\x00\x00")
    base = f"site/area{idx // 100}/{s.name}/".encode()
    for k in range(2):
        t += 1.0 + rng.random()
        yield t
        conn.pkt(0, t, PSH | ACK, mc.mqtt_publish(base + b"temperature", b'{"v":%.2f}' % (20 + rng.random() * 5),
                                                    0, 0, 4))
        if k == 0:
            t += 0.001
            yield t
            conn.pkt(0, t, PSH | ACK, mc.mqtt_publish(base + b"status", b'{"state":"ok"}', 0, 0, 4, retain=True))
        t += 0.04
        yield t
        conn.ack(1, t)
    t += 0.01
    yield t
    conn.pkt(0, t, PSH | ACK, b"\xe0\x00")           # DISCONNECT
    t = yield from conn.close(t + 0.001, 0.0003)
    if plc is not None:
        t = yield from modbus_session(s, plc, rng, t + 0.1, POLLS[:1], 2)


def rogue(h, plcs, rng, t):
    for plc in plcs:
        t = yield from modbus_session(h, plc, rng, t + 0.05, POLLS[:1], 1, writes=True)


REPEAT_GAP_S = 30.0
"""Packet time between one pass of the plant's conversations and the next (``repeat``)."""


def build(path: str, assets: int = 10_000, seed: int = 1, quiet: bool = False, repeat: int = 1) -> dict:
    """Write the plant; *repeat* > 1 runs its conversations that many times, each pass
    ``SPAN_S + REPEAT_GAP_S`` of packet time after the previous one (new connections, same hosts):
    after the first pass every asset is known and the rest is steady traffic (bench/tui_latency.py
    presses keys while the TUI replays it)."""
    rng = random.Random(seed)
    mc.W = w = mc.Writer(path, 1 << 62)
    H = lambda *a, **kw: mc.Host(*a, rng=rng, **kw)   # noqa: E731
    n_plc, n_hmi, n_brk = max(1, assets // PLC_EVERY), max(1, assets // HMI_EVERY), max(1, assets // BROKER_EVERY)
    n_sensor = max(0, assets - n_plc - n_hmi - n_brk - 1)
    plcs = [mc.PLC(H(f"plc-{i + 1}", _mac("00:80:f4", i + 1), _ip(20, i), "plc", linux=False, win=8192), [1], rng)
            for i in range(n_plc)]
    hmis = [H(f"hmi-{i + 1}", _mac("00:15:5d", i + 1), _ip(10, i), "hmi", linux=False, ttl=128, win=65535)
            for i in range(n_hmi)]
    brokers = [H(f"broker-{i + 1}", _mac("02:42:ac", i + 1), f"10.40.0.{10 + i}", "mqtt-broker")
               for i in range(n_brk)]
    sensors = [H(f"sensor-{i + 1:05d}", _mac("b8:27:eb", i + 1), _ip(30, i), "sensor", win=29200)
               for i in range(n_sensor)]
    laptop = H("rogue", "08:00:27:66:66:01", "10.99.0.66", "laptop")
    gens = []
    for r in range(repeat):
        t0 = T0 + r * (SPAN_S + REPEAT_GAP_S)
        for i, h in enumerate(hmis):
            mine = [plcs[(i * PLCS_PER_HMI + j) % n_plc] for j in range(PLCS_PER_HMI)]
            gens.append(hmi(h, mine, rng, t0 + rng.random() * 5))
        for i, s in enumerate(sensors):
            plc = plcs[i % n_plc] if i % MISPLACED_EVERY == MISPLACED_EVERY - 1 else None
            gens.append(sensor(s, i, brokers[i % n_brk], rng, t0 + rng.random() * SPAN_S, plc))
        gens.append(rogue(laptop, plcs[:ROGUE_TARGETS], rng, t0 + SPAN_S / 2))
    heap = []
    for i, g in enumerate(gens):
        heap.append((next(g), i, g))
    heapq.heapify(heap)
    while heap:
        t, i, g = heap[0]
        try:
            heapq.heapreplace(heap, (g.send(None), i, g))
        except StopIteration:
            heapq.heappop(heap)
    w.close()
    info = {"packets": w.n, "hosts": n_plc + n_hmi + n_brk + n_sensor + 1, "plcs": n_plc, "hmis": n_hmi,
            "brokers": n_brk, "sensors": n_sensor}
    if not quiet:
        print(f"{path}: {w.n:,} packets, {info['hosts']:,} hosts ({n_plc} PLCs, {n_hmi} HMIs, {n_brk} brokers, "
              f"{n_sensor:,} sensors, 1 rogue laptop)", file=sys.stderr)
    return info


def write_policy(path: str) -> None:
    with open(path, "w") as f:
        f.write(POLICY)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", type=int, default=10_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--policy", help="also write the plant's policy here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="the conversations this many times (steady traffic after the first)")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    build(a.out, a.assets, a.seed, a.quiet, a.repeat)
    if a.policy:
        write_policy(a.policy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
