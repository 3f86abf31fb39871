"""Small captures for tests of the store and the inventory, built with capbuild (no real peers needed:
these tests are about storage and identity, not decoding)."""
from __future__ import annotations

import struct

from support.capbuild import eth, ipv4, pcap, tcp

PAIRS = 12


def modbus_exchange(cmac, smac, cip, sip, cport, t, sport=502, unit=1):
    """SYN, SYN-ACK, a read-holding-registers request and its response: (ts, frame bytes) list."""
    req = struct.pack("!HHHBBHH", 1, 0, 6, unit, 3, 0, 2)
    rsp = struct.pack("!HHHBBB", 1, 0, 7, unit, 3, 4) + b"\x00\x01\x00\x02"
    out = []
    for seg, src in ((tcp(cport, sport, 100, 0, "S"), "c"), (tcp(sport, cport, 500, 101, "SA"), "s"),
                     (tcp(cport, sport, 101, 501, "PA", req), "c"),
                     (tcp(sport, cport, 501, 101 + len(req), "PA", rsp), "s")):
        a, b = (cmac, smac) if src == "c" else (smac, cmac)
        x, y = (cip, sip) if src == "c" else (sip, cip)
        t += 0.01
        out.append((t, eth(a, b, 0x0800, ipv4(x, y, 6, seg))))
    return out


def modbus_capture(path, writer: int, pairs: int = PAIRS) -> set[str]:
    """A capture of *pairs* Modbus clients polling their own server, addresses unique to *writer*.

    Packets are 10 ms apart, so ``--interval 0.01`` makes every packet close an interval and the
    inventory commit a batch: many small write transactions that contend with the other writers.
    Returns the MAC asset ids the inventory must hold afterwards.
    """
    pkts, ids = [], set()
    t = 1_700_000_000.0 + writer * 1000
    for p in range(pairs):
        cmac, smac = f"02:00:00:{writer:02x}:{p:02x}:01", f"02:00:00:{writer:02x}:{p:02x}:02"
        cip, sip = f"10.{writer + 10}.{p}.1", f"10.{writer + 10}.{p}.2"
        ids |= {"mac:" + cmac, "mac:" + smac}
        pkts += modbus_exchange(cmac, smac, cip, sip, 40000 + p, t)
        t = pkts[-1][0]
    path.write_bytes(pcap(pkts))
    return ids
