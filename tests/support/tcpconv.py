"""TCP conversations as packet lists, the pipeline over them, and tshark's view of them.

A ``Conv`` keeps both sides' sequence numbers, so a test writes what is said and
gets the packets a real stack would send (handshake, data, FIN), and can bend
them (a keep-alive, a missing handshake, a new ISN on the same ports).  Frames
are Ethernet/IPv4 built by ``capbuild``; ``run`` puts them through the real
pipeline with every message reported; ``tshark_frames`` asks tshark which frames
carry which protocol, for the comparison tests.
"""
from __future__ import annotations

import collections
import shutil
import struct
import subprocess

from support import capbuild as cb

C, S = "10.0.0.1", "10.0.0.2"
C6, S6 = "fd00::1", "fd00::2"          # the same two peers over IPv6 (to_ipv6)
CM, SM = "02:00:00:00:00:01", "02:00:00:00:00:02"
T0 = 1_700_000_000.0


def tcp_frame(src, dst, sport, dport, seq, flags="A", payload=b"", ack=0, smac=CM, dmac=SM, vlans=()):
    return cb.eth(smac, dmac, 0x0800, cb.ipv4(src, dst, 6, cb.tcp(sport, dport, seq, ack, flags, payload)),
                  vlans=vlans)


def split_ipv4(frame: bytes, size: int, ident: int, order=None, extra=()):
    """The IPv4 datagram in an Ethernet *frame* as fragments of *size* payload bytes (a
    multiple of 8), in *order* (indexes), plus *extra* (offset, bytes) fragments."""
    eth, ip = frame[:14], frame[14:]
    src, dst, proto = ip[12:16], ip[16:20], ip[9]
    body = ip[20:]
    pieces = [(o, body[o:o + size]) for o in range(0, len(body), size)]
    out = []
    for k, (o, chunk) in enumerate(pieces):
        more = 0x2000 if k < len(pieces) - 1 else 0
        out.append(eth + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), ident, more | (o // 8), 64, proto,
                                     0, src, dst) + chunk)
    for o, chunk in extra:
        out.append(eth + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), ident, 0x2000 | (o // 8), 64, proto,
                                     0, src, dst) + chunk)
    if order is not None:
        out = [out[i] for i in order]
    return out


def to_ipv6(frame: bytes) -> bytes:
    """The payload of an Ethernet/IPv4 *frame* between C and S carried over IPv6 between C6 and S6
    instead (no extension headers; the TCP checksum is left as it was: the engine does not check it)."""
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    src, dst = (C6, S6) if ip[12:16] == cb.ip(C) else (S6, C6)
    return frame[:12] + b"\x86\xdd" + cb.ipv6(src, dst, ip[9], ip[ihl:])


def split_ipv6(frame: bytes, size: int, ident: int, order=None):
    """The IPv6 packet (no extension headers) in an Ethernet *frame* as fragments of *size* payload
    bytes (a multiple of 8) behind a Fragment header (RFC 8200 4.5), in *order* (indexes)."""
    eth, ip = frame[:14], frame[14:]
    nh, addrs, body = ip[6], ip[8:40], ip[40:]
    out = []
    for o in range(0, len(body), size):
        chunk = body[o:o + size]
        more = 1 if o + size < len(body) else 0
        out.append(eth + struct.pack("!IHBB", 6 << 28, 8 + len(chunk), 44, 64) + addrs
                   + struct.pack("!BBHI", nh, 0, o | more, ident) + chunk)
    if order is not None:
        out = [out[i] for i in order]
    return out


class Conv:
    """One TCP connection between C:cport and S:sport; packets accumulate in ``pkts``."""

    def __init__(self, sport: int, cport: int = 40000, isn_c: int = 1000, isn_s: int = 5000, pkts=None):
        self.sport, self.cport = sport, cport
        self.seq = [isn_c, isn_s]
        self.pkts = [] if pkts is None else pkts

    def _frame(self, side, flags, payload=b"", seq=None):
        s = self.seq[side] if seq is None else seq
        ack = self.seq[1 - side]
        if side == 0:
            return tcp_frame(C, S, self.cport, self.sport, s, flags, payload, ack)
        return tcp_frame(S, C, self.sport, self.cport, s, flags, payload, ack, smac=SM, dmac=CM)

    def handshake(self):
        self.pkts.append(self._frame(0, "S"))
        self.seq[0] += 1
        self.pkts.append(self._frame(1, "SA"))
        self.seq[1] += 1
        self.pkts.append(self._frame(0, "A"))
        return self

    def send(self, side: int, payload: bytes, flags="PA"):
        self.pkts.append(self._frame(side, flags, payload))
        self.seq[side] = (self.seq[side] + len(payload)) & 0xFFFFFFFF
        return self

    def keepalive(self, side: int):
        """RFC 1122 4.2.3.6: one garbage byte at SND.NXT - 1."""
        self.pkts.append(self._frame(side, "A", b"\x00", seq=(self.seq[side] - 1) & 0xFFFFFFFF))
        return self

    def close(self):
        self.pkts.append(self._frame(0, "FA"))
        self.seq[0] += 1
        self.pkts.append(self._frame(1, "FA"))
        self.seq[1] += 1
        self.pkts.append(self._frame(0, "A"))
        return self


def stamp(pkts, step=0.01):
    return [(T0 + i * step, p) for i, p in enumerate(pkts)]


def write(tmp_path, pkts, name="x.pcap", **kw) -> str:
    f = tmp_path / name
    f.write_bytes(cb.pcap(stamp(pkts), **kw))
    return str(f)


class Collect:
    def __init__(self):
        self.obs = []

    def observe(self, o):
        self.obs.append(o)


def run(path: str, impl: str, **settings):
    """(observations, stats) of the pipeline over *path*, every message reported."""
    from otwatch.sensor.pipeline import Pipeline, Settings

    settings.setdefault("detail_all", True)
    c = Collect()
    p = Pipeline([c], Settings(implementation=impl, **settings))
    p.run_file(path)
    p.finish()
    return c.obs, p.stats()


def of(obs, name):
    from otwatch.sensor import observations as O

    cls = getattr(O, name)
    return [o for o in obs if type(o) is cls]


def messages(obs, protocol=None):
    return [o for o in of(obs, "Message") if protocol is None or o.protocol == protocol]


def anomalies(obs):
    return [o.id for o in of(obs, "Anomaly")]


def per_frame(obs, protocol):
    """frame -> number of *protocol* messages we decoded in it."""
    return dict(collections.Counter(m.frame for m in messages(obs, protocol)))


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


def tshark_frames(path: str, layer: str, extra=()) -> dict:
    """frame -> how many *layer* PDUs tshark decodes in it ('modbus': Modbus/TCP ADUs, even
    those whose PDU tshark calls malformed; 'mqtt'; 'opcua'), with tshark's own reassembly."""
    # (a client ADU with the exception bit set is "[Malformed Packet: Modbus/TCP]" to tshark,
    # without an mbtcp tree: still one Modbus/TCP frame)
    filt, field = {"modbus": ("mbtcp || _ws.malformed", "mbtcp.trans_id"), "mqtt": ("mqtt", "mqtt.hdrflags"),
                   "opcua": ("opcua", "opcua.transport.type")}[layer]
    args = ["tshark", "-r", path, "-Y", filt, "-T", "fields", "-e", "frame.number", "-e", field,
            "-E", "occurrence=a", "-E", "aggregator=|"]
    for a in extra:
        args += ["-o", a]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    res = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        fr, _, vals = line.partition("\t")
        res[int(fr)] = max(1, len(vals.split("|")))
    return res


def modbus_engine_records(pkts, limits, impl: str):
    """The records and stats of one engine (*impl*: ``compiled`` or ``pure``) with the Modbus kernel on port 502,
    fed the timed packets *pkts* as one pcap: what the compiled == pure tests of the engine compare."""
    from otwatch import ext

    E = ext.load("engine", impl)
    m = ext.load("modbus", impl)
    eng = E.Engine({1: (m.ModbusCore, m.probe)}, limits, {502: 1}, {}, False, 30.0)
    eng.feed(cb.pcap(pkts), True)
    eng.finish()
    return eng.take(), eng.stats()
