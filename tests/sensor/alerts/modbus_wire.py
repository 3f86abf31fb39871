"""Modbus/TCP captures for the alert tests, written with bench/make_capture.py's TCP machinery (real handshakes,
sequence numbers, checksums), and run through the whole pipeline and alert stage.

``Session(client_ip, server_ip, cport)`` collects a connection's transactions (``add(t, unit, request PDU,
response PDU)``); ``write(path, sessions)`` interleaves every session's packets by time into one pcap;
``alerts(path, impl, interval)`` runs it and returns the AlertBook's alerts.
"""
from __future__ import annotations

import importlib.util
import random
import struct
from pathlib import Path

from otwatch.sensor.alerts.aggregate import AlertBook
from otwatch.sensor.alerts.context import Context
from otwatch.sensor.alerts.settings import AlertSettings
from otwatch.sensor.alerts.stage import AlertStage
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("make_capture", ROOT / "bench" / "make_capture.py")
mc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mc)

RTT = 0.0002


def read(fc: int, address: int, quantity: int) -> tuple[bytes, bytes]:
    """A read request and its normal response (zeros)."""
    n = 2 * quantity if fc in (3, 4) else (quantity + 7) // 8
    return struct.pack("!BHH", fc, address, quantity), bytes((fc, n)) + bytes(n)


def exception(fc: int, address: int, quantity: int, code: int = 2) -> tuple[bytes, bytes]:
    return struct.pack("!BHH", fc, address, quantity), bytes((fc | 0x80, code))


def write_register(address: int, value: int) -> tuple[bytes, bytes]:
    pdu = struct.pack("!BHH", 6, address, value)
    return pdu, pdu


def write_coil(address: int, on: bool = True) -> tuple[bytes, bytes]:
    pdu = struct.pack("!BHH", 5, address, 0xFF00 if on else 0)
    return pdu, pdu


class Session:
    """One client's connection to a server: its transactions, emitted in time order by ``write``."""

    def __init__(self, client_ip: str, server_ip: str, cport: int, mac_tail: int = 1):
        rng = random.Random(cport)
        self.c = mc.Host("c", f"02:00:00:00:01:{mac_tail:02x}", client_ip, "client", rng=rng)
        self.s = mc.Host("s", "02:00:00:00:02:01", server_ip, "server", rng=rng)
        self.cport, self.rng = cport, rng
        self.tx: list = []          # (t, unit, request PDU, response PDU)

    def add(self, t: float, unit: int, pair: tuple[bytes, bytes]) -> None:
        self.tx.append((t, unit, *pair))

    def packets(self):
        """(t, order, emit) of every packet of the connection: handshake, transactions, close."""
        conn = mc.Conn(self.c, self.s, self.cport, 502, mc.CAT_MODBUS, self.rng)
        tx = sorted(self.tx, key=lambda x: x[0])
        t0, t1 = tx[0][0] - 3 * RTT, tx[-1][0] + 3 * RTT
        out = [(t0, lambda t: conn.pkt(0, t, mc.SYN)), (t0 + RTT / 3, lambda t: conn.pkt(1, t, mc.SYN | mc.ACK)),
               (t0 + RTT / 2, lambda t: conn.pkt(0, t, mc.ACK))]
        for i, (t, unit, q, r) in enumerate(tx):
            tid = i & 0xFFFF
            out.append((t, lambda t, tid=tid, unit=unit, q=q: conn.pkt(0, t, mc.PSH | mc.ACK, mc.mb_adu(tid, unit, q))))
            out.append((t + RTT, lambda t, tid=tid, unit=unit, r=r: conn.pkt(1, t, mc.PSH | mc.ACK,
                                                                             mc.mb_adu(tid, unit, r))))
        out += [(t1, lambda t: conn.pkt(0, t, mc.FIN | mc.ACK)), (t1 + RTT / 3, lambda t: conn.pkt(1, t, mc.FIN | mc.ACK)),
                (t1 + RTT / 2, lambda t: conn.pkt(0, t, mc.ACK))]
        return out


def write(path: Path, sessions: list[Session]) -> None:
    pkts = [(t, i, k, fn) for i, s in enumerate(sessions) for k, (t, fn) in enumerate(s.packets())]
    pkts.sort(key=lambda p: (p[0], p[1], p[2]))
    mc.W = w = mc.Writer(str(path), len(pkts))
    for t, _, _, fn in pkts:
        fn(t)
    w.close()


def alerts(path: Path, impl: str, interval: float = 10.0, detections=None) -> list:
    book = AlertBook(AlertSettings.from_mapping(detections))
    st = AlertStage(book, Context(str(path)))
    p = Pipeline([st], Settings(implementation=impl, interval=interval))
    p.run_file(str(path))
    p.finish()
    st.finish()
    return book.alerts()


def frames_between(path: Path, lo: float, hi: float) -> set[int]:
    """Frame numbers of the capture's packets with lo <= time <= hi."""
    data = path.read_bytes()
    pos, n, out = 24, 0, set()
    while pos + 16 <= len(data):
        sec, us, incl, _ = struct.unpack_from("<IIII", data, pos)
        n += 1
        if lo <= sec + us / 1e6 <= hi:
            out.add(n)
        pos += 16 + incl
    return out
