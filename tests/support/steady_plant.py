"""A long, benign plant capture with the timing of real stacks, generated with timestamps.

``steady_plant(hours, seed, jitter) -> bytes`` (classic pcap): an HMI polls a PLC
once a second (FC 3 HR 0+10, FC 1 coils 0+16, FC 4 IR 0+8, one connection) and a
sensor publishes two MQTT topics (every 5 s and every 10 s, QoS 0, one
connection).  Nothing else happens: whatever a baseline learns from the first half
it must find again in the second.

Timing is re-timed real traffic: ``demo_jitter(pcap)`` measures, in the demo
plant (pymodbus client and server in network namespaces), how late each HMI poll
started against its 200 ms schedule and how long each answer took; the
generator draws poll delays and response times from those samples, so the
spread is the spread of a real asyncio client on a busy machine, including its
tail.  ``changes`` inserts departures for the tests that must fail: a poll that
stops, a period that changes, a burst of messages.
"""
from __future__ import annotations

import random
import struct
from pathlib import Path

from . import capbuild as cb

HMI, PLC, SENSOR, BROKER = "10.50.0.21", "10.50.0.11", "10.50.0.71", "10.50.0.50"
MAC = {HMI: "00:00:bc:32:00:15", PLC: "00:80:f4:32:00:0b", SENSOR: "02:00:0a:32:00:47", BROKER: "02:00:0a:32:00:32"}
POLL_PERIOD = 1.0
POLLS = ((3, 0, 10), (1, 0, 16), (4, 0, 8))          # (function code, address, quantity)
TOPICS = (("plant/line1/temperature", 5.0), ("plant/line1/pressure", 10.0))
T0 = 1_790_000_000.0


def demo_jitter(pcap: Path, client: str = "10.10.0.21", server: str = "10.10.0.11",
                period: float = 0.2) -> tuple[list[float], list[float]]:
    """(poll start delays, response times) of the demo plant's HMI → plc1 FC 3 polls, in seconds."""
    data = pcap.read_bytes()
    cip, sip = cb.ip(client), cb.ip(server)
    pos, starts, rtts, pending = 24, [], [], {}
    while pos + 16 <= len(data):
        sec, us, incl, _ = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        ts = sec + us / 1e6
        if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 0x0F) * 4
        src, dst = frame[26:30], frame[30:34]
        tcp = 14 + ihl
        doff = (frame[tcp + 12] >> 4) * 4
        pay = frame[tcp + doff:]
        if len(pay) < 8 or pay[7] != 3:
            continue
        tid = pay[:2]
        if src == cip and dst == sip:
            starts.append(ts)
            pending[tid] = ts
        elif src == sip and dst == cip and tid in pending:
            rtts.append(ts - pending.pop(tid))
    # delay of each poll against the schedule the client keeps (next_t += period)
    base = starts[0]
    delays = [max(0.0, (t - base) - round((t - base) / period) * period) for t in starts]
    low = min(delays)
    return [d - low for d in delays], rtts


class _Stream:
    """One TCP connection: handshake, then data segments (sequence numbers: ``_resequence``)."""

    def __init__(self, out, client, cport, server, sport, ts):
        self.out, self.c, self.cp, self.s, self.sp = out, client, cport, server, sport
        self._pkt(ts, 0, "S", b"")
        self._pkt(ts + 0.0002, 1, "SA", b"")
        self._pkt(ts + 0.0004, 0, "A", b"")

    def _pkt(self, ts, side, flags, payload):
        # sequence numbers are filled in by _resequence once every segment is in time order
        src, dst = (self.c, self.s) if side == 0 else (self.s, self.c)
        sp, dp = (self.cp, self.sp) if side == 0 else (self.sp, self.cp)
        seg = cb.tcp(sp, dp, 0, 0, flags, payload)
        self.out.append((ts, cb.eth(MAC[src], MAC[dst], 0x0800, cb.ipv4(src, dst, 6, seg))))

    def send(self, ts, side, payload):
        self._pkt(ts, side, "PA", payload)


def steady_plant(hours: float, seed: int, jitter: tuple[list[float], list[float]],
                 changes: dict | None = None) -> bytes:
    """changes: {"stop_fc": (fc, from_s, to_s), "slow_fc": (fc, from_s, to_s, every_n_polls),
    "burst": (at_s, messages)} — seconds from the start."""
    rnd = random.Random(seed)
    delays, rtts = jitter
    changes = changes or {}
    out: list = []
    end = hours * 3600.0
    hmi = _Stream(out, HMI, 40100, PLC, 502, T0)
    sen = _Stream(out, SENSOR, 40200, BROKER, 1883, T0 + 0.05)
    sen.send(T0 + 0.06, 0, bytes([0x10, 20]) + b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x08sensor-1")
    sen.send(T0 + 0.061, 1, b"\x20\x02\x00\x00")
    tid = 0
    k = 0
    while True:
        t = 1.0 + k * POLL_PERIOD + rnd.choice(delays)
        if t >= end:
            break
        for fc, addr, qty in POLLS:
            stop = changes.get("stop_fc")
            if stop and stop[0] == fc and stop[1] <= t < stop[2]:
                continue
            slow = changes.get("slow_fc")
            if slow and slow[0] == fc and slow[1] <= t < slow[2] and k % slow[3]:
                continue
            tid = (tid + 1) & 0xFFFF
            req = struct.pack("!HHHBBHH", tid, 0, 6, 1, fc, addr, qty)
            ts = T0 + t
            hmi.send(ts, 0, req)
            n = (qty + 7) // 8 if fc == 1 else qty * 2
            body = bytes([fc, n]) + bytes((i * 7 + k) & 0xFF for i in range(n))
            ts += rnd.choice(rtts)
            hmi.send(ts, 1, struct.pack("!HHHB", tid, 0, len(body) + 1, 1) + body)
            t = ts - T0 + 0.0005
        k += 1
    for topic, every in TOPICS:
        j = 0
        while True:
            t = 2.0 + j * every + rnd.choice(delays)
            if t >= end:
                break
            value = f"{20 + rnd.random() * 5:.2f}".encode()
            tb = topic.encode()
            body = struct.pack("!H", len(tb)) + tb + value
            sen.send(T0 + t, 0, bytes([0x30, len(body)]) + body)
            j += 1
    burst = changes.get("burst")
    if burst:
        at, n = burst
        for i in range(n):
            tb = TOPICS[0][0].encode()
            body = struct.pack("!H", len(tb)) + tb + b"99.99"
            sen.send(T0 + at + i * 0.01, 0, bytes([0x30, len(body)]) + body)
    # the sensor's stream was built topic by topic: put every segment in time order, then number them
    return cb.pcap(_resequence(out))


def _resequence(packets: list) -> list:
    """Sort by time and renumber TCP sequence/ack numbers per direction in that order."""
    packets.sort(key=lambda p: p[0])
    nxt: dict = {}
    out = []
    for ts, frame in packets:
        ip = 14
        tcp = ip + 20
        src, dst = frame[ip + 12:ip + 16], frame[ip + 16:ip + 20]
        sp, dp = struct.unpack_from("!HH", frame, tcp)
        flags = frame[tcp + 13]
        key, rkey = (src, sp, dst, dp), (dst, dp, src, sp)
        pay = len(frame) - tcp - 20
        if flags & 0x02:
            seq = 1000 if not flags & 0x10 else 5000
            nxt[key] = seq + 1
        else:
            seq = nxt[key]
            nxt[key] = seq + pay
        ack = nxt.get(rkey, 0)
        frame = frame[:tcp + 4] + struct.pack("!II", seq & 0xFFFFFFFF, ack & 0xFFFFFFFF) + frame[tcp + 12:]
        out.append((ts, frame))
    return out


def split(pcap: bytes, at: float) -> tuple[bytes, bytes]:
    """Two classic pcaps: packets before T0 + at, and the rest (little-endian µs pcap only)."""
    head = pcap[:24]
    pos, cut = 24, None
    while pos + 16 <= len(pcap):
        sec, us, incl, _ = struct.unpack_from("<IIII", pcap, pos)
        if cut is None and sec + us / 1e6 >= T0 + at:
            cut = pos
        pos += 16 + incl
    cut = cut or len(pcap)
    return pcap[:cut], head + pcap[cut:]
