"""Build capture files byte by byte for tests: pcap (both byte orders, µs/ns),
pcapng (several sections and interfaces), and the link layers we decode.

Independent of the code under test: written from the format specs
(tcpdump.org/linktypes.html, draft-ietf-opsawg-pcapng).
"""
from __future__ import annotations

import ipaddress
import struct


def mac(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.split(":"))


def ip(s: str) -> bytes:
    return ipaddress.ip_address(s).packed


def eth(src: str, dst: str, etype: int, payload: bytes, vlans=(), tpid=0x8100) -> bytes:
    out = mac(dst) + mac(src)
    for i, v in enumerate(vlans):
        out += struct.pack("!HH", tpid if i == 0 and len(vlans) > 1 and tpid != 0x8100 else 0x8100, v)
    return out + struct.pack("!H", etype) + payload


def qinq(src, dst, etype, payload, outer, inner):
    return mac(dst) + mac(src) + struct.pack("!HHHH", 0x88A8, outer, 0x8100, inner) + struct.pack("!H", etype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, frag: int = 0, total: int | None = None) -> bytes:
    tl = 20 + len(payload) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, tl, 1, frag, 64, proto, 0, ip(src), ip(dst)) + payload


def ipv6(src: str, dst: str, nh: int, payload: bytes, ext: bytes = b"", ext_nh: int | None = None) -> bytes:
    first = ext_nh if ext else nh
    return struct.pack("!IHBB16s16s", 6 << 28, len(ext) + len(payload), first, 64, ip(src), ip(dst)) + ext + payload


def hop_by_hop(nh: int) -> bytes:
    return bytes([nh, 0]) + b"\x01\x04\x00\x00\x00\x00"   # 8 bytes, PadN


def tcp(sport: int, dport: int, seq: int, ack: int = 0, flags: str = "A", payload: bytes = b"") -> bytes:
    bits = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}
    fl = sum(bits[c] for c in flags)
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, fl, 65535, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def sll(payload: bytes, etype: int, src: str = "02:00:00:00:00:01") -> bytes:
    return struct.pack("!HHH", 0, 1, 6) + mac(src) + b"\x00\x00" + struct.pack("!H", etype) + payload


def sll2(payload: bytes, etype: int, src: str = "02:00:00:00:00:01") -> bytes:
    return struct.pack("!HHIHBB", etype, 0, 1, 1, 0, 6) + mac(src) + b"\x00\x00" + payload


def null(payload: bytes, family: int, big: bool = False) -> bytes:
    return struct.pack(">I" if big else "<I", family) + payload


def pcap(packets, linktype: int = 1, big: bool = False, nanos: bool = False, snaplen: int = 65535,
         cut: int | None = None) -> bytes:
    """packets: list of (ts, bytes) or (ts, bytes, wirelen)."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for p in packets:
        ts, data = p[0], p[1]
        wire = p[2] if len(p) > 2 else len(data)
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanos else 1e6))
        data = data if cut is None else data[:cut]
        out.append(struct.pack(e + "IIII", sec, frac, len(data), max(wire, len(data))) + data)
    return b"".join(out)


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def _block(e: str, btype: int, body: bytes) -> bytes:
    body = _pad(body)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def pcapng(sections) -> bytes:
    """sections: list of dicts {big, ifaces: [(linktype, tsresol_byte or None)], packets: [(iface, ts, bytes)],
    simple: [bytes] (simple packet blocks, interface 0)}."""
    out = []
    for sec in sections:
        e = ">" if sec.get("big") else "<"
        out.append(_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
        res = []
        for lt, tsres in sec["ifaces"]:
            opts = b""
            if tsres is not None:
                opts += struct.pack(e + "HH", 9, 1) + _pad(bytes([tsres]))
            opts += struct.pack(e + "HH", 0, 0)
            out.append(_block(e, 1, struct.pack(e + "HHI", lt, 0, 0) + opts))
            if tsres is None:
                res.append(1e6)
            elif tsres & 0x80:
                res.append(2.0 ** (tsres & 0x7F))
            else:
                res.append(10.0 ** tsres)
        for iface, ts, data in sec.get("packets", []):
            t = int(round(ts * res[iface]))
            out.append(_block(e, 6, struct.pack(e + "IIIII", iface, t >> 32, t & 0xFFFFFFFF, len(data), len(data))
                              + _pad(data)))
        for data in sec.get("simple", []):
            out.append(_block(e, 3, struct.pack(e + "I", len(data)) + _pad(data)))
        # an unknown block type must be skipped
        out.append(_block(e, 0x0BAD, b"\x01\x02\x03\x04"))
    return b"".join(out)
