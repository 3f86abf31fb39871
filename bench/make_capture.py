#!/usr/bin/env python3
"""Build a large, realistic mixed OT/IT capture for benchmarks (classic pcap, Ethernet).

    python bench/make_capture.py --packets 1600000 --out bench/out/mixed-1600k.pcap

What is in it (one SPAN port of a small plant, ~930 packets/s of packet time):

* Modbus/TCP (~35 % of packets): 8 PLCs (one a gateway with 4 unit ids behind
  it), 4 HMIs polling 4 PLCs each over long-lived connections (poll lists of
  FC 1/2/3/4, some connections pipelining several ADUs in one segment and the
  PLC answering them in one segment), 2 engineering workstations opening short
  sessions (device identification, diagnostics, FC 6/16 writes, a read of an
  unmapped address answered with an exception).
* MQTT (~20 %): a broker, 20 sensors (16 MQTT 3.1.1, 4 MQTT 5) publishing
  JSON at QoS 0 or 1 with PUBACKs, a historian subscribed to ``plant/#`` that
  the broker forwards every publication to, occasional sensor reconnects.
* OPC UA (~15 %): 2 servers, 3 clients; each session starts with
  HEL/ACK/OPN/CreateSession/ActivateSession/CreateSubscription/
  CreateMonitoredItems and then polls Read and keeps Publish requests
  outstanding.  Messages are the real asyncua bytes from
  tests/parsers/opcua/opcua_vectors.json with secure-channel ids, sequence
  numbers, request ids, request handles, timestamps and values advancing;
  PublishResponses (not in the vectors) are encoded here per OPC 10000-4/-6.
* IT (~30 %): 20 office hosts doing DNS over UDP, HTTP to an intranet server,
  TLS to outside addresses through the router, SSH sessions, SMB-like bulk
  copies to a file server, and ARP.

Every TCP connection has a real three-way handshake, correct sequence and
acknowledgement numbers, pure ACKs (delayed-ACK style), MSS segmentation,
TCP timestamps between Linux-like hosts (not on PLC stacks), FIN or RST
teardown, and correct IPv4, TCP and UDP checksums.  Output is deterministic
for a seed, and a capture of N packets is a prefix of any longer one made
with the same seed (the generator never looks at N).

Written with ``struct`` directly (not scapy): 1.6 M packets take ~15 s.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VECTORS = os.path.join(ROOT, "tests", "parsers", "opcua", "opcua_vectors.json")

T0 = 1_700_000_000.0          # packet time of the first packet (2023-11-14)
M32 = 0xFFFFFFFF
UNIX_TO_OPCUA = 11_644_473_600  # seconds from 1601-01-01 (OPC UA DateTime epoch) to 1970-01-01

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
REC = struct.Struct("<IIII")
IPTCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")
IPUDP = struct.Struct("!BBHHHBBH4s4sHHHH")
TSOPT = struct.Struct("!BBBBII")

# categories, for the mix report
CAT_MODBUS, CAT_MQTT, CAT_OPCUA, CAT_IT = 0, 1, 2, 3
CAT_NAMES = ("modbus", "mqtt", "opcua", "it")

# TCP flags
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _ipint(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _csum(s: int) -> int:
    """Internet checksum from a sum of the covered 16-bit words, taken modulo 0xFFFF
    (2**16 = 1 mod 0xFFFF, so a big-endian integer of the bytes is that sum)."""
    s %= 0xFFFF
    return 0xFFFF - s if s else 0


class Host:
    __slots__ = ("name", "mac", "ip", "ttl", "linux", "win", "mss", "ipid", "tsoff", "role")

    def __init__(self, name, mac, ip, role, linux=True, ttl=64, win=64240, mss=1460, rng=None):
        self.name = name
        self.mac = bytes.fromhex(mac.replace(":", ""))
        self.ip = bytes(int(x) for x in ip.split("."))
        self.role = role
        self.linux = linux
        self.ttl = ttl
        self.win = win
        self.mss = mss
        self.ipid = rng.randrange(65536) if rng else 0
        self.tsoff = rng.getrandbits(32) if rng else 0


class Writer:
    """Pcap records into a buffered file; stops accepting at *limit* packets."""

    def __init__(self, path: str, limit: int):
        self.f = open(path, "wb")
        self.f.write(PCAP_HEADER)
        self.buf: list = []
        self.n = 0
        self.nbytes = 0
        self.limit = limit
        self.cat = [0, 0, 0, 0]

    def emit(self, t: float, frame: bytes, cat: int) -> None:
        if self.n >= self.limit:
            return
        sec = int(t)
        n = len(frame)
        self.buf.append(REC.pack(sec, int((t - sec) * 1e6), n, n))
        self.buf.append(frame)
        self.n += 1
        self.nbytes += n
        self.cat[cat] += 1
        if len(self.buf) >= 131072:
            self.f.write(b"".join(self.buf))
            self.buf = []

    def close(self) -> None:
        self.f.write(b"".join(self.buf))
        self.buf = []
        self.f.close()


W: Writer  # set in build()


class Conn:
    """One TCP connection between a client and a server Host; builds and emits frames."""

    __slots__ = ("cat", "side", "seq", "ts", "lastts", "pending", "mss", "closed")

    def __init__(self, c: Host, s: Host, cport: int, sport: int, cat: int, rng: random.Random,
                 c_mac: bytes | None = None, s_mac: bytes | None = None):
        """c_mac / s_mac override the L2 addresses (off-subnet peers are reached through the router)."""
        self.cat = cat
        self.ts = c.linux and s.linux
        cm = c_mac or c.mac
        sm = s_mac or s.mac
        ci, si = _ipint(c.ip), _ipint(s.ip)
        self.side = []
        for (a, b, ap, bp, am, bm) in ((c, s, cport, sport, cm, sm), (s, c, sport, cport, sm, cm)):
            src, dst = _ipint(a.ip), _ipint(b.ip)
            ipre = 0x4500 + 0x4000 + ((a.ttl << 8) | 6) + src + dst
            tpre = src + dst + 6 + ap + bp
            self.side.append((bm + am + b"\x08\x00", a.ip, b.ip, ap, bp, ipre, tpre, a.ttl, a.win, a))
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.lastts = [0, 0]
        self.pending = [0, 0]     # data segments received and not yet acknowledged, per receiver side
        self.mss = min(c.mss, s.mss) - (12 if self.ts else 0)
        self.closed = False
        del ci, si

    def pkt(self, side: int, t: float, flags: int, payload: bytes = b"", opts: bytes = b"") -> None:
        eth, src, dst, sp, dp, ipre, tpre, ttl, win, host = self.side[side]
        n = len(payload)
        seq = self.seq[side]
        ack = self.seq[1 - side] if flags & ACK else 0
        if self.ts:
            tsv = (int(t * 1000) + host.tsoff) & M32
            tse = self.lastts[1 - side] if flags & ACK else 0
            self.lastts[side] = tsv
            if flags & SYN:     # MSS, SACK permitted, timestamps (Linux order, 16 bytes)
                opts = opts + TSOPT.pack(4, 2, 8, 10, tsv, tse)
            else:               # NOP, NOP, timestamps
                opts = opts + TSOPT.pack(1, 1, 8, 10, tsv, tse)
        hl = 20 + len(opts)
        if n:
            psum = int.from_bytes(payload + b"\0" if n & 1 else payload, "big")
        else:
            psum = 0
        osum = int.from_bytes(opts, "big") if opts else 0
        tcplen = hl + n
        tcs = _csum(tpre + tcplen + seq + ack + ((hl << 10) | flags) + win + osum + psum)
        total = 20 + tcplen
        host.ipid = ipid = (host.ipid + 1) & 0xFFFF
        ics = _csum(ipre + total + ipid)
        W.emit(t, eth + IPTCP.pack(0x45, 0, total, ipid, 0x4000, ttl, 6, ics, src, dst, sp, dp, seq, ack,
                                   hl << 2, flags, win, tcs, 0) + opts + payload, self.cat)
        adv = n + (1 if flags & (SYN | FIN) else 0)
        if adv:
            self.seq[side] = (seq + adv) & M32
        if n:
            self.pending[1 - side] += 1
        self.pending[side] = 0

    def ack(self, side: int, t: float) -> None:
        """A pure ACK from *side*, if it has received data it has not acknowledged yet."""
        if self.pending[side]:
            self.pkt(side, t, ACK)

    # -- conversation helpers: each is a generator; it yields the packet time it wants,
    #    and emits its packet when resumed at that time.  `t = yield from ...` returns the time.
    def handshake(self, t: float, rtt: float):
        c = self.side[0][9]
        s = self.side[1][9]
        yield t
        self.pkt(0, t, SYN, opts=_syn_opts(c, self.ts))
        t += rtt
        yield t
        self.pkt(1, t, SYN | ACK, opts=_syn_opts(s, self.ts))
        t += rtt * 0.1
        yield t
        self.pkt(0, t, ACK)
        return t

    def send(self, side: int, t: float, data: bytes, gap: float = 0.00002, ack_every: int = 2):
        """Send *data* in MSS-sized segments; the receiver acknowledges every *ack_every* segments."""
        mss = self.mss
        n = len(data)
        i = 0
        while i < n:
            seg = data[i:i + mss]
            i += mss
            yield t
            self.pkt(side, t, ACK | (PSH if i >= n else 0), seg)
            t += gap
            if ack_every and self.pending[1 - side] >= ack_every and i < n:
                yield t
                self.pkt(1 - side, t, ACK)
                t += gap
        return t

    def close(self, t: float, rtt: float, by: int = 0):
        self.closed = True
        yield t
        self.pkt(by, t, FIN | ACK)
        t += rtt
        yield t
        self.pkt(1 - by, t, FIN | ACK)
        t += rtt * 0.1
        yield t
        self.pkt(by, t, ACK)
        return t

    def reset(self, t: float, side: int):
        self.closed = True
        yield t
        self.pkt(side, t, RST | ACK)
        return t


def _syn_opts(h: Host, ts: bool) -> bytes:
    """SYN options before the timestamps: MSS, plus (for full stacks) SACK permitted.

    With timestamps pkt() appends SACK-permitted and TS itself (Linux: mss,sackOK,TS);
    PLC stacks send MSS only."""
    mss = struct.pack("!BBH", 2, 4, h.mss)
    if ts:
        return mss
    if h.role == "plc":
        return mss
    return mss + b"\x01\x01\x04\x02"


def udp(t: float, a: Host, b: Host, sport: int, dport: int, payload: bytes, cat: int,
        amac: bytes | None = None, bmac: bytes | None = None) -> None:
    n = len(payload)
    ulen = 8 + n
    src, dst = _ipint(a.ip), _ipint(b.ip)
    psum = int.from_bytes(payload + b"\0" if n & 1 else payload, "big")
    ucs = _csum(src + dst + 17 + ulen + sport + dport + ulen + psum) or 0xFFFF
    a.ipid = ipid = (a.ipid + 1) & 0xFFFF
    total = 20 + ulen
    ics = _csum(0x4500 + ((a.ttl << 8) | 17) + src + dst + total + ipid)
    W.emit(t, (bmac or b.mac) + (amac or a.mac) + b"\x08\x00" +
           IPUDP.pack(0x45, 0, total, ipid, 0, a.ttl, 17, ics, a.ip, b.ip, sport, dport, ulen, ucs) + payload, cat)


def arp(t: float, a: Host, target_ip: bytes, reply_from: Host | None) -> None:
    bc = b"\xff" * 6
    W.emit(t, bc + a.mac + b"\x08\x06" + struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, a.mac, a.ip,
                                                     b"\0" * 6, target_ip) + b"\0" * 18, CAT_IT)
    if reply_from is not None:
        b = reply_from
        W.emit(t + 0.0002, a.mac + b.mac + b"\x08\x06" +
               struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, b.mac, b.ip, a.mac, a.ip) + b"\0" * 18, CAT_IT)


# ---------------------------------------------------------------------------
# Modbus/TCP
# ---------------------------------------------------------------------------
MBAP = struct.Struct("!HHHB")


def mb_adu(tid: int, unit: int, pdu: bytes) -> bytes:
    return MBAP.pack(tid, 0, len(pdu) + 1, unit) + pdu


class PLC:
    def __init__(self, host: Host, units, rng):
        self.host = host
        self.units = units
        self.regs = bytearray(rng.getrandbits(8) for _ in range(4096))   # 2048 registers
        self.bits = bytearray(rng.getrandbits(8) for _ in range(512))
        self.rng = rng

    def answer(self, unit: int, fc: int, addr: int, qty: int) -> bytes:
        if fc in (3, 4):
            # a few process values move between polls
            r = self.rng
            for _ in range(2):
                i = (addr + r.randrange(qty)) * 2 % 4094
                v = (self.regs[i] << 8 | self.regs[i + 1]) + r.randrange(-3, 4)
                self.regs[i] = (v >> 8) & 255
                self.regs[i + 1] = v & 255
            a = addr * 2 % 3800
            return bytes((fc, qty * 2)) + bytes(self.regs[a:a + qty * 2])
        if fc in (1, 2):
            nb = (qty + 7) // 8
            a = addr // 8 % 400
            if self.rng.random() < 0.1:
                self.bits[a] ^= 1 << self.rng.randrange(8)
            return bytes((fc, nb)) + bytes(self.bits[a:a + nb])
        raise ValueError(fc)


def modbus_hmi(hmi: Host, plc: PLC, rng: random.Random, start: float, period: float, polls, pipeline: bool):
    """An HMI polling one PLC forever over one connection (reconnecting now and then)."""
    t = start
    while True:
        conn = Conn(hmi, plc.host, rng.randrange(49152, 65535), 502, CAT_MODBUS, rng)
        t = yield from conn.handshake(t, 0.0004)
        tid = rng.randrange(65536)
        life = t + rng.expovariate(1 / 1800.0)       # reconnect every ~30 min of packet time
        while t < life:
            t += period * rng.uniform(0.97, 1.03)
            if pipeline:
                # all polls in one segment; the PLC answers them in one or two segments
                reqs, resps = [], []
                for (unit, fc, addr, qty) in polls:
                    tid = (tid + 1) & 0xFFFF
                    reqs.append(mb_adu(tid, unit, struct.pack("!BHH", fc, addr, qty)))
                    resps.append(mb_adu(tid, unit, plc.answer(unit, fc, addr, qty)))
                yield t
                conn.pkt(0, t, PSH | ACK, b"".join(reqs))
                t += 0.002
                if rng.random() < 0.5:
                    yield t
                    conn.pkt(1, t, PSH | ACK, b"".join(resps))
                else:
                    h = len(resps) // 2
                    yield t
                    conn.pkt(1, t, PSH | ACK, b"".join(resps[:h]))
                    t += 0.0003
                    yield t
                    conn.pkt(1, t, PSH | ACK, b"".join(resps[h:]))
            else:
                for (unit, fc, addr, qty) in polls:
                    tid = (tid + 1) & 0xFFFF
                    yield t
                    conn.pkt(0, t, PSH | ACK, mb_adu(tid, unit, struct.pack("!BHH", fc, addr, qty)))
                    t += 0.0015 + rng.random() * 0.002
                    yield t
                    conn.pkt(1, t, PSH | ACK, mb_adu(tid, unit, plc.answer(unit, fc, addr, qty)))
                    t += 0.004
            if period > 0.04 or rng.random() < 0.3:
                # delayed ACK for the last response (the next poll is not soon enough to carry it)
                t += 0.0001 if not hmi.linux else 0.04 * rng.uniform(0.5, 1.0)
                yield t
                conn.ack(0, t)
        t = yield from conn.close(t, 0.0004)
        t += rng.uniform(1.0, 5.0)


def modbus_ews(ews: Host, plcs, rng: random.Random, start: float):
    """Engineering workstation: short sessions with identification, diagnostics, writes, an exception."""
    t = start
    while True:
        t += rng.expovariate(1 / 40.0)
        plc = rng.choice(plcs)
        unit = rng.choice(plc.units)
        conn = Conn(ews, plc.host, rng.randrange(49152, 65535), 502, CAT_MODBUS, rng)
        t = yield from conn.handshake(t, 0.0004)
        tid = rng.randrange(65536)
        script = []
        ident = b"\x2b\x0e\x01\x01\x00\x00\x03" + bytes((0, 18)) + b"Schneider Electric" + \
            bytes((1, 8)) + b"BMX P342" + bytes((2, 7)) + b"V3.20.2"
        script.append((b"\x2b\x0e\x01\x00", ident))                                     # device identification
        script.append((b"\x08\x00\x00\xa5\x37", b"\x08\x00\x00\xa5\x37"))              # diagnostics echo
        for _ in range(rng.randrange(3, 12)):
            addr = rng.randrange(0, 200)
            qty = rng.randrange(1, 40)
            script.append((struct.pack("!BHH", 3, addr, qty), plc.answer(unit, 3, addr, qty)))
        reg = rng.randrange(400, 420)
        val = rng.randrange(65536)
        script.append((struct.pack("!BHH", 6, reg, val), struct.pack("!BHH", 6, reg, val)))
        vals = bytes(rng.getrandbits(8) for _ in range(8))
        script.append((struct.pack("!BHHB", 16, 500, 4, 8) + vals, struct.pack("!BHH", 16, 500, 4)))
        if rng.random() < 0.5:
            script.append((struct.pack("!BHH", 3, 9000, 10), b"\x83\x02"))          # illegal data address
        for req, resp in script:
            tid = (tid + 1) & 0xFFFF
            t += rng.uniform(0.05, 0.6)
            yield t
            conn.pkt(0, t, PSH | ACK, mb_adu(tid, unit, req))
            t += 0.002
            yield t
            conn.pkt(1, t, PSH | ACK, mb_adu(tid, unit, resp))
            t += 0.2
            yield t
            conn.ack(0, t)
        t = yield from conn.close(t + 0.5, 0.0004)


# ---------------------------------------------------------------------------
# MQTT
# ---------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _mstr(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


def mqtt_packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _varint(len(body)) + body


def mqtt_connect(client_id: str, level: int, user: bytes | None = None) -> bytes:
    flags = 0x02 | (0xC0 if user else 0)
    vh = _mstr(b"MQTT") + bytes((level, flags)) + struct.pack("!H", 60) + (b"\x00" if level == 5 else b"")
    pl = _mstr(client_id.encode())
    if user:
        pl += _mstr(user) + _mstr(b"s3cr3t-" + user)
    return mqtt_packet(0x10, vh + pl)


def mqtt_publish(topic: bytes, payload: bytes, qos: int, pid: int, level: int, retain: bool = False) -> bytes:
    body = _mstr(topic) + (struct.pack("!H", pid) if qos else b"") + (b"\x00" if level == 5 else b"") + payload
    return mqtt_packet(0x30 | (qos << 1) | (1 if retain else 0), body)


class Broker:
    def __init__(self, host: Host, historian_conn_factory):
        self.host = host
        self.hist = None            # (Conn, level) of the historian's subscription, once connected
        self.hist_pid = 1
        self.factory = historian_conn_factory


def mqtt_historian(hist: Host, broker: Broker, rng: random.Random, start: float):
    """The historian: CONNECT, SUBSCRIBE plant/#, then only ACKs what the broker forwards; PINGREQ on idle."""
    t = start
    while True:
        conn = Conn(hist, broker.host, rng.randrange(49152, 65535), 1883, CAT_MQTT, rng)
        t = yield from conn.handshake(t, 0.0003)
        t += 0.001
        yield t
        conn.pkt(0, t, PSH | ACK, mqtt_connect("historian-01", 4, b"historian"))
        t += 0.0005
        yield t
        conn.pkt(1, t, PSH | ACK, b"\x20\x02\x00\x00")
        t += 0.001
        yield t
        conn.pkt(0, t, PSH | ACK, mqtt_packet(0x82, struct.pack("!H", 1) + _mstr(b"plant/#") + b"\x01"))
        t += 0.0005
        yield t
        conn.pkt(1, t, PSH | ACK, b"\x90\x03\x00\x01\x01")
        broker.hist = conn
        # keepalive: the historian sends nothing else, so it pings every 60 s; the rest is driven by sensors
        while True:
            t += 60.0
            yield t
            if conn.closed:
                break
            conn.pkt(0, t, PSH | ACK, b"\xc0\x00")
            t += 0.0004
            yield t
            conn.pkt(1, t, PSH | ACK, b"\xd0\x00")


def mqtt_sensor(sensor: Host, idx: int, broker: Broker, rng: random.Random, start: float, period: float,
                level: int, qos: int):
    t = start
    area = idx // 5 + 1
    topics = [f"plant/area{area}/{sensor.name}/{m}".encode() for m in ("temperature", "pressure", "status")]
    pid = 1
    value = 20.0 + rng.random() * 30
    while True:
        conn = Conn(sensor, broker.host, rng.randrange(49152, 65535), 1883, CAT_MQTT, rng)
        t = yield from conn.handshake(t, 0.0003)
        t += 0.001
        yield t
        conn.pkt(0, t, PSH | ACK, mqtt_connect(sensor.name, level, sensor.name.encode() if idx % 3 == 0 else None))
        t += 0.0005
        yield t
        conn.pkt(1, t, PSH | ACK, b"\x20\x03\x00\x00\x00" if level == 5 else b"\x20\x02\x00\x00")
        # retained status
        life = t + rng.expovariate(1 / 3600.0) if idx % 7 == 3 else 1e18
        n = 0
        while t < life:
            t += period * rng.uniform(0.95, 1.05)
            n += 1
            value += rng.uniform(-0.2, 0.2)
            k = n % 3
            if k == 2:
                payload = b'{"state":"%s","ts":%d}' % (b"ok" if rng.random() < 0.98 else b"warn", int(t))
            else:
                payload = b'{"v":%.3f,"unit":"%s","ts":%.3f}' % (value * (1 if k == 0 else 0.05), b"C" if k == 0 else b"bar", t)
            q = qos if k != 2 else 1
            yield t
            conn.pkt(0, t, PSH | ACK, mqtt_publish(topics[k], payload, q, pid, level, retain=(k == 2)))
            my_pid = pid
            if q:
                pid = pid % 65535 + 1
            # the broker forwards to the historian
            h = broker.hist
            if h is not None and not h.closed:
                t += 0.0002
                yield t
                fq = min(q, 1)
                h.pkt(1, t, PSH | ACK, mqtt_publish(topics[k], payload, fq, broker.hist_pid, 4))
                if fq:
                    hp = broker.hist_pid
                    broker.hist_pid = broker.hist_pid % 65535 + 1
                    t += 0.0003
                    yield t
                    h.pkt(0, t, PSH | ACK, b"\x40\x02" + struct.pack("!H", hp))
                elif h.pending[0] >= 2:
                    t += 0.0001
                    yield t
                    h.ack(0, t)
            if q:
                t += 0.0003
                yield t
                conn.pkt(1, t, PSH | ACK, (b"\x40\x02" if level != 5 else b"\x40\x02") + struct.pack("!H", my_pid))
                if period > 0.04:
                    t += 0.04
                    yield t
                    conn.ack(0, t)
            elif conn.pending[1] >= 2 or period > 0.2:
                t += 0.04
                yield t
                conn.ack(1, t)
        # flaky sensor: drops off (RST from the broker after keepalive expiry) and reconnects
        t = yield from conn.reset(t + 90.0, 1)
        t += rng.uniform(2, 10)


# ---------------------------------------------------------------------------
# OPC UA
# ---------------------------------------------------------------------------
class UATemplates:
    """Real asyncua messages (session 'none_anonymous') to patch per connection."""

    def __init__(self):
        with open(VECTORS) as f:
            segs = json.load(f)["connections"]["none_anonymous"]
        # one message per template: a recorded segment can carry two (asyncua sends the first
        # PublishRequest right behind CreateMonitoredItems); keep the first by its size field
        m = [bytes.fromhex(h) for _, h in segs]
        m = [b[:struct.unpack_from("<I", b, 4)[0]] if len(b) >= 8 else b for b in m]
        self.hel, self.ack, self.opn_req, self.opn_resp = m[0], m[1], m[2], m[3]
        self.create_req, self.create_resp = m[4], m[5]
        self.activate_req, self.activate_resp = m[6], m[7]
        self.read_req, self.read_resp = m[8], m[9]
        self.browse_req, self.browse_resp = m[14], m[15]
        self.sub_req, self.sub_resp = m[20], m[21]
        self.mon_req, self.mon_resp = m[22], m[23]
        self.pub_req = m[24]
        self.clo = bytes.fromhex(json.load(open(VECTORS))["connections"]["none_username"][-1][1])
        assert self.read_req[24:28] == b"\x01\x00\x77\x02" and self.read_resp[24:28] == b"\x01\x00\x7a\x02"
        assert self.pub_req[24:28] == b"\x01\x00\x3a\x03"
        self.tok_at = self.opn_resp.find(struct.pack("<II", 8, 13))     # SecurityToken.ChannelId
        self.value_at = self.read_resp.find(b"\x0f\x0b") + 2             # the Double of the DataValue


def _ua_now(t: float) -> bytes:
    return struct.pack("<q", int((t + UNIX_TO_OPCUA) * 1e7))


def ua_msg(tpl: bytes, sc: int, seq: int, rid: int, t: float, handle: int, request: bool) -> bytearray:
    b = bytearray(tpl)
    struct.pack_into("<IIII", b, 8, sc, 13, seq, rid)
    if request:          # RequestHeader: auth token (4-byte NodeId), timestamp, handle
        b[32:40] = _ua_now(t)
        struct.pack_into("<I", b, 40, handle)
    else:                # ResponseHeader: timestamp, handle
        b[28:36] = _ua_now(t)
        struct.pack_into("<I", b, 36, handle)
    return b


def ua_publish_response(sc: int, seq: int, rid: int, t: float, handle: int, sub_id: int, nseq: int,
                        items) -> bytes:
    """PublishResponse (OPC 10000-4 §5.13.5) with one DataChangeNotification (ns=0;i=811)."""
    mon = struct.pack("<i", len(items)) + b"".join(
        struct.pack("<IBBd", h, 0x05, 11, v) + _ua_now(t - 0.1) for h, v in items) + struct.pack("<i", 0)
    body = (b"\x01\x00" + struct.pack("<H", 829) + _ua_now(t) + struct.pack("<II", handle, 0) + b"\x00" +
            struct.pack("<i", 0) + b"\x00\x00\x00" +
            struct.pack("<I", sub_id) + struct.pack("<iI", 1, nseq) + b"\x00" +
            struct.pack("<I", nseq) + _ua_now(t) + struct.pack("<i", 1) +
            b"\x01\x00" + struct.pack("<H", 811) + b"\x01" + struct.pack("<i", len(mon)) + mon +
            struct.pack("<iI", 1, 0) + struct.pack("<i", 0))
    hdr = struct.pack("<IIII", sc, 13, seq, rid)
    return b"MSGF" + struct.pack("<I", 8 + len(hdr) + len(body)) + hdr + body


def opcua_client(cli: Host, srv: Host, tpl: UATemplates, rng: random.Random, start: float, sc: int,
                 read_period: float, pub_period: float, nitems: int):
    t = start
    while True:
        conn = Conn(cli, srv, rng.randrange(49152, 65535), 4840, CAT_OPCUA, rng)
        t = yield from conn.handshake(t, 0.0004)
        tok = bytearray(tpl.opn_resp)
        struct.pack_into("<I", tok, 8, sc)
        struct.pack_into("<I", tok, tpl.tok_at, sc)
        setup = [(tpl.hel, tpl.ack), (tpl.opn_req, bytes(tok))]
        for q, r in setup:
            t += 0.001
            yield t
            conn.pkt(0, t, PSH | ACK, q)
            t += 0.0008
            yield t
            conn.pkt(1, t, PSH | ACK, r)
        cseq = sseq = 1
        rid = 1
        handle = 1000
        for q, r in ((tpl.create_req, tpl.create_resp), (tpl.activate_req, tpl.activate_resp),
                     (tpl.browse_req, tpl.browse_resp), (tpl.sub_req, tpl.sub_resp), (tpl.mon_req, tpl.mon_resp)):
            cseq += 1
            sseq += 1
            rid += 1
            handle += 1
            t += 0.002
            t = yield from conn.send(0, t, bytes(ua_msg(q, sc, cseq, rid, t, handle, True)))
            t += 0.002
            t = yield from conn.send(1, t, bytes(ua_msg(r, sc, sseq, rid, t, handle, False)))
        value = rng.uniform(10, 90)
        pub_pending = []
        # two Publish requests outstanding, as asyncua and most clients keep
        for _ in range(2):
            cseq += 1
            rid += 1
            handle += 1
            t += 0.0005
            yield t
            conn.pkt(0, t, PSH | ACK, bytes(ua_msg(tpl.pub_req, sc, cseq, rid, t, handle, True)))
            pub_pending.append((rid, handle))
        next_read = t + read_period
        next_pub = t + pub_period
        nseq = 1
        life = t + rng.expovariate(1 / 2400.0)
        while t < life:
            if next_read <= next_pub:
                t = next_read
                next_read += read_period * rng.uniform(0.98, 1.02)
                cseq += 1
                rid += 1
                handle += 1
                yield t
                conn.pkt(0, t, PSH | ACK, bytes(ua_msg(tpl.read_req, sc, cseq, rid, t, handle, True)))
                t += 0.0008
                sseq += 1
                value += rng.uniform(-0.5, 0.5)
                r = ua_msg(tpl.read_resp, sc, sseq, rid, t, handle, False)
                struct.pack_into("<d", r, tpl.value_at, value)
                yield t
                conn.pkt(1, t, PSH | ACK, bytes(r))
                if read_period > 0.04:
                    t += 0.04
                    yield t
                    conn.ack(0, t)
            else:
                t = next_pub
                next_pub += pub_period
                prid, ph = pub_pending.pop(0)
                sseq += 1
                k = rng.randrange(1, nitems + 1)
                items = [(i + 1, value + i) for i in range(k)]
                yield t
                conn.pkt(1, t, PSH | ACK, ua_publish_response(sc, sseq, prid, t, ph, 78, nseq, items))
                # the client acknowledges the notification with its next Publish request
                cseq += 1
                rid += 1
                handle += 1
                t += 0.0006
                q = ua_msg(tpl.pub_req, sc, cseq, rid, t, handle, True)
                struct.pack_into("<I", q, 67, nseq)
                nseq += 1
                yield t
                conn.pkt(0, t, PSH | ACK, bytes(q))
                pub_pending.append((rid, handle))
                if pub_period > 0.04:
                    t += 0.04
                    yield t
                    conn.ack(1, t)
        cseq += 1
        rid += 1
        c = bytearray(tpl.clo)
        struct.pack_into("<IIII", c, 8, sc, 13, cseq, rid)
        t += 0.01
        yield t
        conn.pkt(0, t, PSH | ACK, bytes(c))
        t = yield from conn.close(t + 0.001, 0.0004)
        sc += 1
        t += rng.uniform(1, 5)


# ---------------------------------------------------------------------------
# IT traffic
# ---------------------------------------------------------------------------
def dns_query(qid: int, name: str) -> bytes:
    q = b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q


def dns_answer(qid: int, name: str, ip: bytes) -> bytes:
    q = b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    return (struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + q +
            b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + ip)


def tls_client_hello(rng: random.Random, sni: str) -> bytes:
    s = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(s) + 5, len(s) + 3, 0, len(s)) + s
    exts = sni_ext + bytes.fromhex(
        "000b000403000102000a000c000a001d0017001e00190018"       # point formats, groups
        "002300000016000000170000000d001e001c040305030603080708080809080a080b080408050806040105010601"
        "002b0005040304030300330026002400" "1d0020") + bytes(rng.getrandbits(8) for _ in range(32))
    suites = bytes.fromhex("130213031301c02cc030c02bc02fcca9cca8c0acc0adc00ac014c009c013009d009c003d003c0035002f")
    hs = (b"\x03\x03" + bytes(rng.getrandbits(8) for _ in range(32)) + b"\x20" +
          bytes(rng.getrandbits(8) for _ in range(32)) + struct.pack("!H", len(suites)) + suites + b"\x01\x00" +
          struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + len(hs).to_bytes(3, "big") + hs
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def tls_records(ctype: int, data_len: int, blob: bytes, off: int) -> bytes:
    out = []
    while data_len > 0:
        n = min(data_len, 16384)
        o = off % 60000
        out.append(struct.pack("!BHH", ctype, 0x0303, n) + (blob[o:o + n] if o + n <= len(blob) else (blob + blob)[o:o + n]))
        off += n
        data_len -= n
    return b"".join(out)


SITES = ["intranet.plant.local", "wiki.plant.local", "mail.corp.example", "updates.vendor.example",
         "login.microsoftonline.com", "www.google.com", "cdn.jsdelivr.net", "github.com", "api.weather.example",
         "time.windows.com", "ocsp.digicert.com", "teams.microsoft.com"]


def it_client(h: Host, net, rng: random.Random, start: float):
    """An office host: DNS, then HTTP to the intranet or TLS to the outside; think time between."""
    t = start
    blob = net["blob"]
    qid = rng.randrange(65536)
    while True:
        t += rng.expovariate(1 / 3.5)
        site = rng.choice(SITES)
        local = site.endswith(".local")
        srv = net["web"] if local else rng.choice(net["outside"])
        # DNS lookup
        qid = (qid + 1) & 0xFFFF
        sp = rng.randrange(49152, 65535)
        yield t
        udp(t, h, net["dns"], sp, 53, dns_query(qid, site), CAT_IT)
        t += 0.0008 if local else 0.02
        yield t
        udp(t, net["dns"], h, 53, sp, dns_answer(qid, site, srv.ip), CAT_IT)
        t += 0.0005
        gw = net["gw"].mac
        rtt = 0.0004 if local else rng.uniform(0.008, 0.04)
        if local:
            conn = Conn(h, srv, rng.randrange(49152, 65535), 80, CAT_IT, rng)
        else:
            conn = Conn(h, srv, rng.randrange(49152, 65535), 443, CAT_IT, rng, s_mac=gw)
        t = yield from conn.handshake(t, rtt)
        if local:
            for _ in range(rng.randrange(1, 6)):
                t += 0.001
                req = (b"GET /%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
                       b"\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n" % (
                           rng.choice([b"", b"index.html", b"static/app.js", b"api/status", b"img/logo.png"]),
                           site.encode()))
                t = yield from conn.send(0, t, req)
                size = int(min(rng.lognormvariate(8.5, 1.3), 400_000))
                off = rng.randrange(60000)
                body = blob[off:off + size] if size <= 60000 - off else (blob * (size // 60000 + 2))[off:off + size]
                resp = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: %d\r\n\r\n" % size + body
                t += 0.002
                t = yield from conn.send(1, t, resp)
                t += 0.0003
                yield t
                conn.ack(0, t)
                t += rng.expovariate(1 / 0.5)
            t = yield from conn.close(t + 0.01, rtt)
        else:
            t = yield from conn.send(0, t + 0.0005, tls_client_hello(rng, site))
            t += rtt
            sh = tls_records(0x16, rng.randrange(2500, 5200), blob, rng.randrange(60000))
            t = yield from conn.send(1, t, sh)
            t += 0.001
            t = yield from conn.send(0, t, tls_records(0x14, 1, blob, 0) + tls_records(0x16, 80, blob, 7))
            for _ in range(rng.randrange(1, 8)):
                t += rng.expovariate(1 / 0.3)
                t = yield from conn.send(0, t, tls_records(0x17, rng.randrange(200, 900), blob, rng.randrange(60000)))
                t += rtt
                size = int(min(rng.lognormvariate(8.0, 1.5), 300_000))
                t = yield from conn.send(1, t, tls_records(0x17, size, blob, rng.randrange(60000)))
                t += 0.0003
                yield t
                conn.ack(0, t)
            if rng.random() < 0.2:
                t = yield from conn.reset(t + 0.01, 0)
            else:
                t = yield from conn.close(t + 0.01, rtt)


def it_ssh(h: Host, srv: Host, rng: random.Random, start: float):
    """An interactive SSH session: keystrokes, echoes, command output bursts."""
    t = start
    blob = bytes(rng.getrandbits(8) for _ in range(8192))
    while True:
        conn = Conn(h, srv, rng.randrange(49152, 65535), 22, CAT_IT, rng)
        t = yield from conn.handshake(t, 0.0004)
        t = yield from conn.send(1, t + 0.002, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2\r\n")
        t = yield from conn.send(0, t + 0.002, b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n")
        t = yield from conn.send(0, t + 0.002, blob[:1400])
        t = yield from conn.send(1, t + 0.002, blob[100:1200])
        end = t + rng.expovariate(1 / 900.0)
        while t < end:
            t += rng.expovariate(1 / 0.25)
            off = rng.randrange(8000)
            yield t
            conn.pkt(0, t, PSH | ACK, blob[off:off + 36])
            t += 0.0006
            yield t
            conn.pkt(1, t, PSH | ACK, blob[off:off + 36])
            if rng.random() < 0.08:
                t = yield from conn.send(1, t + 0.01, blob[:rng.randrange(200, 6000)])
            t += 0.04
            yield t
            conn.ack(0, t)
        t = yield from conn.close(t, 0.0004)
        t += rng.expovariate(1 / 300.0)


def it_bulk(h: Host, srv: Host, rng: random.Random, start: float, mean_gap: float):
    """SMB-like copies to a file server: MTU-sized segments, ACK every other segment."""
    t = start
    blob = bytes(rng.getrandbits(8) for _ in range(70000))
    while True:
        t += rng.expovariate(1 / mean_gap)
        conn = Conn(h, srv, rng.randrange(49152, 65535), 445, CAT_IT, rng)
        t = yield from conn.handshake(t, 0.0003)
        size = int(rng.uniform(0.3, 3.0) * 1e6)
        sent = 0
        while sent < size:
            n = min(65536, size - sent)
            t = yield from conn.send(0, t + 0.0005, blob[sent % 4096:sent % 4096 + n], gap=0.00012)
            sent += n
            t += 0.0003
            yield t
            conn.pkt(1, t, PSH | ACK, blob[:84])
        t = yield from conn.close(t + 0.01, 0.0003)


def it_arp(hosts, gw, rng: random.Random, start: float):
    t = start
    while True:
        t += rng.expovariate(1 / 2.0)
        h = rng.choice(hosts)
        yield t
        arp(t, h, gw.ip, gw)


# ---------------------------------------------------------------------------
# the plant
# ---------------------------------------------------------------------------
def build(path: str, packets: int, seed: int = 1, quiet: bool = False) -> dict:
    global W
    rng = random.Random(seed)
    W = Writer(path, packets)

    def H(name, mac, ip, role, **kw):
        return Host(name, mac, ip, role, rng=rng, **kw)

    vendors = ["00:80:f4", "00:1b:1b", "00:00:bc", "00:a0:45", "00:30:de", "00:01:05", "00:80:f4", "00:1b:1b"]
    plcs = [PLC(H(f"plc-{i + 1}", f"{vendors[i]}:10:00:{i + 1:02x}", f"10.10.1.{11 + i}", "plc", linux=False,
                  ttl=64 if i % 2 else 30, win=8192, mss=1460), [1, 2, 3, 4] if i == 7 else [1], rng)
            for i in range(8)]
    hmis = [H(f"hmi-{i + 1}", f"00:15:5d:20:00:{i + 1:02x}", f"10.10.2.{21 + i}", "hmi", linux=False, ttl=128,
              win=65535) for i in range(4)]
    ews = [H(f"ews-{i + 1}", f"3c:52:82:30:00:{i + 1:02x}", f"10.10.2.{31 + i}", "ews", linux=False, ttl=128,
             win=65535) for i in range(2)]
    broker_h = H("broker", "02:42:ac:11:00:0a", "10.10.3.10", "mqtt-broker")
    hist = H("historian", "02:42:ac:11:00:14", "10.10.3.20", "historian")
    sensors = [H(f"sensor-{i + 1:02d}", f"b8:27:eb:40:00:{i + 1:02x}", f"10.10.3.{101 + i}", "sensor",
                 win=29200) for i in range(20)]
    ua_srv = [H(f"opcua-{i + 1}", f"00:0e:8c:50:00:{i + 1:02x}", f"10.10.4.{10 + i}", "opcua-server")
              for i in range(2)]
    scada = H("scada", "00:50:56:60:00:01", "10.10.4.50", "scada")
    mes = H("mes", "00:50:56:60:00:02", "10.10.5.10", "mes")
    office = [H(f"pc-{i + 1:02d}", f"f8:bc:12:70:00:{i + 1:02x}", f"10.10.10.{101 + i}", "office",
                linux=(i % 4 == 0), ttl=64 if i % 4 == 0 else 128, win=64240 if i % 4 == 0 else 65535)
              for i in range(20)]
    gw = H("router", "00:1a:a1:00:00:01", "10.10.10.1", "router")
    dns = H("dns", "00:50:56:80:00:02", "10.10.10.2", "dns")
    web = H("intranet", "00:50:56:80:00:05", "10.10.10.5", "web")
    files = H("fileserver", "00:50:56:80:00:06", "10.10.10.6", "files")
    jump = H("jumphost", "00:50:56:80:00:07", "10.10.10.7", "ssh")
    outside = [H(f"ext-{i}", "00:00:00:00:00:00", f"{a}", "internet", ttl=52)
               for i, a in enumerate(["142.250.74.100", "20.190.160.20", "140.82.121.4", "151.101.1.229",
                                      "104.18.32.7", "13.107.42.14"])]
    net = {"dns": dns, "web": web, "gw": gw, "outside": outside,
           "blob": bytes(rng.getrandbits(8) for _ in range(60000)) * 1}

    gens = []
    t0 = T0
    # Modbus: each HMI polls 4 PLCs (HMI i: PLCs i, i+2, i+4, i+6 mod 8), one connection per pair
    poll_lists = [
        [(1, 3, 0, 40), (1, 3, 100, 20), (1, 1, 0, 64), (1, 4, 0, 10)],
        [(1, 3, 0, 60), (1, 2, 0, 32), (1, 4, 200, 16)],
        [(1, 3, 1000, 8), (1, 3, 1100, 8), (1, 1, 16, 16), (1, 3, 1200, 50), (1, 4, 30, 4)],
    ]
    for i, hmi in enumerate(hmis):
        for j in range(4):
            plc = plcs[(i + 2 * j) % 8]
            if plc.units != [1]:
                polls = [(u, 3, 0, 20) for u in plc.units] + [(u, 1, 0, 32) for u in plc.units[:2]]
            else:
                polls = poll_lists[(i + j) % 3]
            pipeline = (i + j) % 4 == 1
            gens.append(modbus_hmi(hmi, plc, rng, t0 + rng.random(), rng.choice([0.25, 0.5, 0.5, 1.0]) * 0.65,
                                   polls, pipeline))
    for e in ews:
        gens.append(modbus_ews(e, plcs, rng, t0 + rng.random() * 5))
    # MQTT
    broker = Broker(broker_h, None)
    gens.append(mqtt_historian(hist, broker, rng, t0))
    for i, s in enumerate(sensors):
        gens.append(mqtt_sensor(s, i, broker, rng, t0 + 0.5 + rng.random(), rng.choice([0.5, 1.0, 1.0, 2.0]) / 2.1,
                                5 if i % 5 == 4 else 4, 1 if i % 2 else 0))
    # OPC UA: scada reads both servers fast, historian and MES slower
    tpl = UATemplates()
    sc = 8
    for cli, rp, pp, ni in ((scada, 0.08, 0.25, 6), (hist, 0.5, 0.5, 4), (mes, 1.0, 1.0, 3)):
        for s in ua_srv:
            gens.append(opcua_client(cli, s, tpl, rng, t0 + rng.random(), sc, rp, pp, ni))
            sc += 1
    # IT
    for h in office:
        gens.append(it_client(h, net, rng, t0 + rng.random() * 3))
    gens.append(it_ssh(office[0], jump, rng, t0 + 2))
    gens.append(it_ssh(ews[0], jump, rng, t0 + 30))
    gens.append(it_bulk(office[5], files, rng, t0 + 5, 150.0))
    gens.append(it_bulk(hist, files, rng, t0 + 60, 300.0))
    gens.append(it_arp(office + hmis + ews + [hist, scada, mes], gw, rng, t0))

    heap = []
    for i, g in enumerate(gens):
        heap.append((next(g), i, g))
    heapq.heapify(heap)
    started = time.perf_counter()
    w = W
    limit = packets
    while w.n < limit:
        t, i, g = heap[0]
        nt = g.send(None)
        heapq.heapreplace(heap, (nt, i, g))
    w.close()
    elapsed = time.perf_counter() - started
    size = os.path.getsize(path)
    info = {
        "packets": w.n, "bytes": size, "seconds": elapsed, "seed": seed,
        "mix": {CAT_NAMES[k]: w.cat[k] / max(w.n, 1) for k in range(4)},
        "duration": t - T0,
    }
    if not quiet:
        mix = ", ".join(f"{k} {v * 100:.1f}%" for k, v in info["mix"].items())
        print(f"{path}: {w.n:,} packets, {size / 1e6:,.1f} MB, {info['duration']:,.0f} s of packet time "
              f"({mix}); generated in {elapsed:.1f} s", file=sys.stderr)
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_600_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    build(a.out, a.packets, a.seed, a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
