#!/usr/bin/env python3
"""Adversarial captures for the bounded-memory benchmarks (classic pcap, Ethernet).

    python bench/make_hostile.py KIND --packets 1000000 --out bench/out/KIND-1000k.pcap

Each capture is one attack, long enough that anything kept per new key, flow
or host shows up as memory growing with the file (issue 12).  Kinds:

* ``syn-flood``       SYNs to a PLC's port 502 from distinct source addresses
                      (10.128.0.0/9, one per SYN, behind the router's MAC), each
                      answered by a SYN-ACK: two packets per new flow, a new host
                      per flow.
* ``modbus-registers`` one scanner reading holding registers (FC 3) with every
                      request a new (unit, address, quantity): address stepping by
                      7 over 0..65535, quantity 1..125, units 1..4; the PLC answers
                      each; a new connection every 1,000 requests.
* ``modbus-fc``       function codes 0..255 on unit ids 0..255 (then the next
                      address): FC 1-4 answered with data, the rest with
                      exception 1 (illegal function).
* ``modbus-units``    unit ids 0..255 with FC 3 (then the next address); unit 1
                      answers with data, the others with exception 0x0B (gateway
                      target failed to respond).
* ``mqtt-topics``     PUBLISH QoS 0 to a new topic every time (``flood/<n>/v``),
                      MQTT 3.1.1 and 5.0 connections alternating, 10,000 PUBLISHes a
                      connection.
* ``opcua-nodes``     one OPC UA session reading 8 new numeric node ids per Read
                      (ns=2, ids counting up), each answered with
                      Bad_NodeIdUnknown per node; a new session every 5,000 Reads.

Frames are built with bench/make_capture.py's TCP machinery (handshakes, sequence
numbers, checksums).  Deterministic; a capture of N packets is a prefix of a
longer one of the same kind.  Not committed (bench/out/ is ignored).
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_capture as mc  # noqa: E402

import random  # noqa: E402

ACK, PSH, SYN = mc.ACK, mc.PSH, mc.SYN
KINDS = ("syn-flood", "modbus-registers", "modbus-fc", "modbus-units", "mqtt-topics", "opcua-nodes")
REQUESTS_PER_CONNECTION = 1000
PUBLISHES_PER_CONNECTION = 10_000
READS_PER_SESSION = 5000
NODES_PER_READ = 8
BAD_NODE_ID_UNKNOWN = 0x80340000     # OPC 10000-4 §7.34 (StatusCode)


def _hosts(rng):
    H = lambda *a, **kw: mc.Host(*a, rng=rng, **kw)   # noqa: E731
    plc = H("plc", "00:80:f4:10:00:01", "10.10.1.11", "plc", linux=False, win=8192)
    scanner = H("scanner", "08:00:27:66:66:01", "10.10.9.66", "scanner")
    broker = H("broker", "02:42:ac:11:00:0a", "10.10.3.10", "mqtt-broker")
    ua = H("opcua", "00:0e:8c:50:00:01", "10.10.4.10", "opcua-server")
    router = H("router", "00:1a:a1:00:00:01", "10.10.10.1", "router")
    return plc, scanner, broker, ua, router


def syn_flood(rng, t, w):
    plc, _, _, _, router = _hosts(rng)
    i = 0
    while w.n < w.limit:
        src = mc.Host("x", "00:1a:a1:00:00:01", f"10.{128 + (i >> 16) % 128}.{(i >> 8) & 255}.{i & 255}", "bot",
                      ttl=50)
        src.ipid = i & 0xFFFF
        c = mc.Conn(src, plc, 1024 + (i * 7919) % 64000, 502, 0, rng, c_mac=router.mac)
        c.ts = False
        c.pkt(0, t, SYN, opts=struct.pack("!BBH", 2, 4, 1460))
        c.pkt(1, t + 0.00005, SYN | ACK, opts=struct.pack("!BBH", 2, 4, 1460))
        t += 0.0001
        i += 1


def _modbus(rng, t, w, request):
    """Request/response pairs on a connection from the scanner to the PLC, renewed every
    REQUESTS_PER_CONNECTION; ``request(i)`` gives (unit, request PDU, response PDU)."""
    plc, scanner, _, _, _ = _hosts(rng)
    i = 0
    while w.n < w.limit:
        conn = mc.Conn(scanner, plc, 40000 + (i // REQUESTS_PER_CONNECTION) % 20000, 502, 0, rng)
        g = conn.handshake(t, 0.0003)
        try:
            while True:
                t = next(g)
        except StopIteration as e:
            t = e.value
        for _ in range(REQUESTS_PER_CONNECTION):
            unit, q, r = request(i)
            tid = i & 0xFFFF
            t += 0.0004
            conn.pkt(0, t, PSH | ACK, mc.mb_adu(tid, unit, q))
            t += 0.0006
            conn.pkt(1, t, PSH | ACK, mc.mb_adu(tid, unit, r))
            i += 1
            if w.n >= w.limit:
                return
        t += 0.001
        conn.pkt(0, t, mc.FIN | ACK)
        conn.pkt(1, t + 0.0002, mc.FIN | ACK)
        conn.pkt(0, t + 0.0003, ACK)


def _regs(n: int, seed: int) -> bytes:
    return bytes((seed * 31 + k) & 255 for k in range(2 * n))


def modbus_registers(rng, t, w):
    def request(i):
        addr = (i * 7) & 0xFFFF
        qty = 1 + i % 125
        unit = 1 + (i >> 16) % 4
        return unit, struct.pack("!BHH", 3, addr, qty), bytes((3, 2 * qty)) + _regs(qty, i)
    _modbus(rng, t, w, request)


def modbus_fc(rng, t, w):
    def request(i):
        fc, unit, addr = i & 255, (i >> 8) & 255, (i >> 16) & 0xFFFF
        q = struct.pack("!BHH", fc, addr, 1)
        if fc in (1, 2):
            return unit, q, bytes((fc, 1, 1))
        if fc in (3, 4):
            return unit, q, bytes((fc, 2)) + _regs(1, i)
        return unit, q, bytes((fc | 0x80, 1))
    _modbus(rng, t, w, request)


def modbus_units(rng, t, w):
    def request(i):
        unit, addr = i & 255, (i >> 8) & 0xFFFF
        q = struct.pack("!BHH", 3, addr, 4)
        if unit == 1:
            return unit, q, bytes((3, 8)) + _regs(4, i)
        return unit, q, bytes((0x83, 0x0B))
    _modbus(rng, t, w, request)


def mqtt_topics(rng, t, w):
    _, scanner, broker, _, _ = _hosts(rng)
    i = 0
    c = 0
    while w.n < w.limit:
        level = 5 if c % 2 else 4
        conn = mc.Conn(scanner, broker, 50000 + c % 10000, 1883, 1, rng)
        g = conn.handshake(t, 0.0003)
        try:
            while True:
                t = next(g)
        except StopIteration as e:
            t = e.value
        t += 0.001
        conn.pkt(0, t, PSH | ACK, mc.mqtt_connect(f"flood-{c}", level))
        t += 0.0005
        conn.pkt(1, t, PSH | ACK, mc.mqtt_packet(0x20, b"\x00\x00" + (b"\x00" if level == 5 else b"")))
        for _ in range(PUBLISHES_PER_CONNECTION):
            t += 0.0002
            conn.pkt(0, t, PSH | ACK, mc.mqtt_publish(f"flood/{i}/v".encode(), b"1", 0, 0, level))
            i += 1
            if i % 2 == 0:
                conn.ack(1, t + 0.00005)
            if w.n >= w.limit:
                return
        conn.pkt(0, t + 0.001, PSH | ACK, mc.mqtt_packet(0xE0, b"\x00" if level == 5 else b""))
        conn.pkt(0, t + 0.0011, mc.FIN | ACK)
        conn.pkt(1, t + 0.0012, mc.FIN | ACK)
        conn.pkt(0, t + 0.0013, ACK)
        t += 0.002
        c += 1


def _read_request(tpl: bytes, nodes) -> bytearray:
    body = bytearray(tpl[:71]) + struct.pack("<i", len(nodes))
    for ns, ident in nodes:
        body += b"\x02" + struct.pack("<HII", ns, ident, 13) + b"\xff\xff\xff\xff" + b"\x00\x00\xff\xff\xff\xff"
    struct.pack_into("<I", body, 4, len(body))
    return body


def _read_response(tpl: bytes, n: int) -> bytearray:
    body = bytearray(tpl[:52]) + struct.pack("<i", n) + (b"\x02" + struct.pack("<I", BAD_NODE_ID_UNKNOWN)) * n
    body += struct.pack("<i", 0)
    struct.pack_into("<I", body, 4, len(body))
    return body


def opcua_nodes(rng, t, w):
    _, scanner, _, ua, _ = _hosts(rng)
    tpl = mc.UATemplates()
    node = 1
    sc = 8
    while w.n < w.limit:
        conn = mc.Conn(scanner, ua, 45000 + sc % 10000, 4840, 2, rng)
        g = conn.handshake(t, 0.0003)
        try:
            while True:
                t = next(g)
        except StopIteration as e:
            t = e.value
        tok = bytearray(tpl.opn_resp)
        struct.pack_into("<I", tok, 8, sc)
        struct.pack_into("<I", tok, tpl.tok_at, sc)
        for q, r in ((tpl.hel, tpl.ack), (tpl.opn_req, bytes(tok))):
            t += 0.001
            conn.pkt(0, t, PSH | ACK, q)
            t += 0.0008
            conn.pkt(1, t, PSH | ACK, r)
        seq = rid = handle = 1
        for q, r in ((tpl.create_req, tpl.create_resp), (tpl.activate_req, tpl.activate_resp)):
            seq += 1
            rid += 1
            handle += 1
            t += 0.002
            conn.pkt(0, t, PSH | ACK, bytes(mc.ua_msg(q, sc, seq, rid, t, handle, True)))
            t += 0.002
            conn.pkt(1, t, PSH | ACK, bytes(mc.ua_msg(r, sc, seq, rid, t, handle, False)))
        for _ in range(READS_PER_SESSION):
            seq += 1
            rid += 1
            handle += 1
            t += 0.0005
            q = _read_request(mc.ua_msg(tpl.read_req, sc, seq, rid, t, handle, True),
                              [(2, node + k) for k in range(NODES_PER_READ)])
            node += NODES_PER_READ
            conn.pkt(0, t, PSH | ACK, bytes(q))
            t += 0.0005
            conn.pkt(1, t, PSH | ACK, bytes(_read_response(mc.ua_msg(tpl.read_resp, sc, seq, rid, t, handle, False),
                                                           NODES_PER_READ)))
            if w.n >= w.limit:
                return
        t += 0.001
        conn.pkt(0, t, mc.FIN | ACK)
        conn.pkt(1, t + 0.0002, mc.FIN | ACK)
        conn.pkt(0, t + 0.0003, ACK)
        sc += 1


BUILDERS = {"syn-flood": syn_flood, "modbus-registers": modbus_registers, "modbus-fc": modbus_fc,
            "modbus-units": modbus_units, "mqtt-topics": mqtt_topics, "opcua-nodes": opcua_nodes}


def build(kind: str, path: str, packets: int, seed: int = 1, quiet: bool = False) -> int:
    rng = random.Random(seed)
    mc.W = w = mc.Writer(path, packets)
    started = time.perf_counter()
    BUILDERS[kind](rng, mc.T0, w)
    w.close()
    if not quiet:
        print(f"{path}: {w.n:,} packets ({kind}), {os.path.getsize(path) / 1e6:,.1f} MB; "
              f"generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return w.n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    build(a.kind, a.out, a.packets, a.seed, a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
