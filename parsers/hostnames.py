"""Host names from ordinary IT traffic: DHCP, DNS/mDNS/LLMNR answers, NBNS, LLDP.

``names(kind, payload, side) -> list[(name, ip, mac)]`` where ``ip``/``mac``
are text, or "" when the name belongs to the packet's sender.  Sans-IO, never
raises, bounded: at most MAX_NAMES names per packet, names cut at 255 chars.
"""
from __future__ import annotations

import ipaddress
import struct

MAX_NAMES = 16
MAX_NAME = 255
_MAX_POINTERS = 32       # DNS compression pointers followed per name (loops are attacks)


def _txt(b: bytes) -> str:
    # cut again after decoding: each invalid byte becomes four characters (\xNN)
    return b[:MAX_NAME].decode("utf-8", "backslashreplace")[:MAX_NAME]


def _mac(b: bytes) -> str:
    return ":".join("%02x" % x for x in b)


def names(kind: str, payload: bytes, side: int) -> list[tuple[str, str, str]]:
    try:
        if kind == "dhcp":
            return _dhcp(payload)
        if kind in ("dns", "mdns", "llmnr"):
            return _dns(payload)
        if kind == "nbns":
            return _nbns(payload)
        if kind == "lldp":
            return _lldp(payload)
    except (IndexError, struct.error, ValueError):
        return []
    return []


def _dhcp(p: bytes) -> list:
    if len(p) < 240 or p[236:240] != b"\x63\x82\x53\x63":
        return []
    hlen = p[2]
    mac = _mac(p[28:28 + 6]) if p[1] == 1 and hlen == 6 else ""
    ip = ""
    for off in (12, 16):           # ciaddr, yiaddr
        if p[off:off + 4] != b"\x00\x00\x00\x00":
            ip = str(ipaddress.IPv4Address(p[off:off + 4]))
            break
    name = None
    i = 240
    for _ in range(255):
        if i >= len(p):
            break
        code = p[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        ln = p[i + 1]
        val = p[i + 2:i + 2 + ln]
        if code == 12 and val:
            name = _txt(val.rstrip(b"\x00"))
        elif code == 81 and len(val) > 3 and name is None:
            name = _txt(val[3:].rstrip(b"\x00"))
        elif code == 50 and ln == 4 and not ip:
            ip = str(ipaddress.IPv4Address(val))
        i += 2 + ln
    if not name:
        return []
    return [(name, ip, mac)]


def _dns_name(p: bytes, i: int) -> tuple[str, int]:
    labels = []
    end = None
    jumps = 0
    total = 0
    while True:
        ln = p[i]
        if ln & 0xC0 == 0xC0:
            if end is None:
                end = i + 2
            jumps += 1
            if jumps > _MAX_POINTERS:
                raise ValueError("pointer loop")
            i = ((ln & 0x3F) << 8) | p[i + 1]
            continue
        if ln == 0:
            i += 1
            break
        lab = p[i + 1:i + 1 + ln]
        if len(lab) != ln:
            raise ValueError("truncated label")
        total += ln + 1
        if total > MAX_NAME:
            raise ValueError("name too long")
        labels.append(lab.decode("utf-8", "backslashreplace"))
        i += 1 + ln
    return ".".join(labels)[:MAX_NAME], (end if end is not None else i)


def _dns(p: bytes) -> list:
    if len(p) < 12:
        return []
    qd, an = struct.unpack_from("!HH", p, 4)
    if not p[2] & 0x80:
        return []
    i = 12
    for _ in range(min(qd, 32)):
        _, i = _dns_name(p, i)
        i += 4
    out = []
    for _ in range(min(an, 64)):
        name, i = _dns_name(p, i)
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", p, i)
        i += 10
        rdata = p[i:i + rdlen]
        i += rdlen
        if rtype == 1 and rdlen == 4:
            out.append((name, str(ipaddress.IPv4Address(rdata)), ""))
        elif rtype == 28 and rdlen == 16:
            out.append((name, str(ipaddress.IPv6Address(rdata)), ""))
        if len(out) >= MAX_NAMES:
            break
    return out


def _nb_decode(label: str) -> str:
    if len(label) != 32:
        return label
    raw = bytes(((ord(label[k]) - 65) << 4) | (ord(label[k + 1]) - 65) for k in range(0, 32, 2))
    return _txt(raw[:15].rstrip(b" "))


def _nbns(p: bytes) -> list:
    if len(p) < 12:
        return []
    qd, an, ns, ar = struct.unpack_from("!HHHH", p, 4)
    opcode = (p[2] >> 3) & 0x0F
    i = 12
    out = []
    if qd and opcode in (5, 8):   # registration / refresh: the name and address are in the additional record
        name, i = _dns_name(p, i)
        i += 4
        if ar:
            _, i = _dns_name(p, i)
            rtype, _c, _t, rdlen = struct.unpack_from("!HHIH", p, i)
            i += 10
            if rtype == 0x20 and rdlen >= 6:
                out.append((_nb_decode(name.split(".")[0]), str(ipaddress.IPv4Address(p[i + 2:i + 6])), ""))
        return out
    if p[2] & 0x80 and an:
        for _ in range(min(qd, 8)):
            _, i = _dns_name(p, i)
            i += 4
        name, i = _dns_name(p, i)
        rtype, _c, _t, rdlen = struct.unpack_from("!HHIH", p, i)
        i += 10
        if rtype == 0x20 and rdlen >= 6:
            out.append((_nb_decode(name.split(".")[0]), str(ipaddress.IPv4Address(p[i + 2:i + 6])), ""))
    return out


def _lldp(p: bytes) -> list:
    i = 0
    name = None
    ip = ""
    for _ in range(64):
        if i + 2 > len(p):
            break
        hdr = (p[i] << 8) | p[i + 1]
        t, ln = hdr >> 9, hdr & 0x1FF
        val = p[i + 2:i + 2 + ln]
        if t == 0:
            break
        if t == 5 and val:
            name = _txt(val)
        elif t == 8 and ln >= 6 and val[1] == 1 and val[0] == 5:
            ip = str(ipaddress.IPv4Address(val[2:6]))
        i += 2 + ln
    return [(name, ip, "")] if name else []
