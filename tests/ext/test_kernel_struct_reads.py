"""Interpreted, the Modbus and OPC UA kernels read message headers with one ``struct``
call each (``STRUCT_READS``); the byte arithmetic the compiled path uses must give the
same records, tallies and counters.  Runs without the compiled build (the compiled
kernels are compared with the pure ones, i.e. with the struct reads, elsewhere)."""
from __future__ import annotations

import pathlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwatch import ext
from otwatch.parsers.limits import Limits
from otwatch.sensor.pipeline import Pipeline, Settings

PCAPS = pathlib.Path(__file__).resolve().parents[2] / "pcaps"

SMALL = Limits(stream_max_buffer=4096, opcua_max_message=8192, opcua_max_chunks=4, shape_cache_entries=4)


def _modbus_seeds() -> list[bytes]:
    def adu(tid, unit, fc, body):
        return struct.pack(">HHHBB", tid, 0, len(body) + 2, unit, fc) + body
    return [
        adu(1, 1, 3, struct.pack(">HH", 0, 10)),                     # read holding registers
        adu(1, 1, 3, bytes([20]) + bytes(20)),                       # its response
        adu(2, 1, 16, struct.pack(">HHB", 5, 2, 4) + bytes(4)),       # write multiple registers
        adu(2, 1, 0x90, bytes([2])),                                 # exception
        adu(3, 7, 8, struct.pack(">HH", 4, 0)),                       # force listen only
        adu(4, 1, 43, bytes([14, 1, 0])),                            # device identification
        struct.pack(">HHHBB", 5, 1, 6, 1, 3),                        # bad protocol id
    ]


def _opcua_seeds() -> list[bytes]:
    def chunk(tag, ct, body):
        return tag + ct + struct.pack("<I", len(body) + 8) + body

    def msg(reqid, tid, ct=b"F", chan=7, extra=b"\x00" * 6):
        return chunk(b"MSG", ct, struct.pack("<IIII", chan, 1, reqid, reqid) + bytes([1, 0]) + struct.pack("<H", tid)
                     + extra)
    url = b"opc.tcp://x:4840"
    policy = b"http://opcfoundation.org/UA/SecurityPolicy#None"
    return [
        chunk(b"HEL", b"F", struct.pack("<IIIIIi", 0, 65536, 65536, 0, 0, len(url)) + url),
        chunk(b"ACK", b"F", struct.pack("<IIIII", 0, 65536, 65536, 0, 0)),
        chunk(b"OPN", b"F", struct.pack("<Ii", 0, len(policy)) + policy + struct.pack("<ii", -1, -1)
              + struct.pack("<II", 1, 1) + bytes([1, 0]) + struct.pack("<H", 446)),
        msg(1, 631), msg(1, 634), msg(2, 631, ct=b"C"), msg(2, 0, ct=b"F"), msg(3, 631, ct=b"A"),
        msg(4, 9999), msg(5, 631, chan=8),
        chunk(b"CLO", b"F", struct.pack("<IIII", 7, 1, 9, 9) + bytes([1, 0]) + struct.pack("<H", 452)),
        chunk(b"MSG", b"F", struct.pack("<II", 7, 1)),              # too short for a sequence header
    ]


SEEDS = {"modbus": _modbus_seeds(), "opcua": _opcua_seeds()}
CORES = {"modbus": "ModbusCore", "opcua": "OPCUACore"}


def _mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


@st.composite
def streams(draw, proto):
    seeds = SEEDS[proto]
    ops = []
    for _ in range(draw(st.integers(1, 14))):
        side = draw(st.integers(0, 1))
        kind = draw(st.integers(0, 9))
        if kind == 0:
            data = draw(st.binary(max_size=60))
        else:
            data = b"".join(draw(st.lists(st.sampled_from(seeds), min_size=1, max_size=4)))
            if kind == 1:
                data = _mutate(data, draw(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3)))
        cut = draw(st.integers(0, len(data)))
        ops.append(("feed", side, data[:cut]))
        ops.append(("feed", side, data[cut:]))
        if draw(st.integers(0, 15)) == 0:
            ops.append(("gap", side, draw(st.integers(1, 30))))
    return ops


def _run(proto, ops, detail_all, struct_reads):
    mod = ext.load(proto, "pure")
    mod.STRUCT_READS = struct_reads
    try:
        seen: dict = {}
        core = getattr(mod, CORES[proto])(seen, detail_all, SMALL)
        out: list = []
        res = []
        for i, (op, side, arg) in enumerate(ops):
            if op == "feed":
                # inside a larger buffer, as the engine passes it
                buf = bytearray(b"\xee" * 5 + arg + b"\xee" * 5)
                res.append(core.feed(side, buf, 5, 5 + len(arg), 1.0 + i, i + 1, out))
            else:
                res.append(core.gap(side, arg, 1.0 + i, i + 1, out))
        res.append(core.eof(0, 99.0, 99, out))
        res.append(core.eof(1, 99.0, 99, out))
        counters = (core.confirmed, core.messages, core.bytes_decoded, core.bytes_skipped, core.bytes_encrypted,
                    getattr(core, "violation", None))
        return out, res, {k: v.as_list() for k, v in seen.items()}, counters
    finally:
        mod.STRUCT_READS = True


@pytest.mark.parametrize("proto", ["modbus", "opcua"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), detail_all=st.booleans())
def test_struct_reads_equal_the_byte_reads(proto, data, detail_all):
    ops = data.draw(streams(proto))
    assert _run(proto, ops, detail_all, True) == _run(proto, ops, detail_all, False)


def _analyse(path, struct_reads, detail_all):
    mods = [ext.load(p, "pure") for p in ("modbus", "opcua")]
    for m in mods:
        m.STRUCT_READS = struct_reads
    try:
        p = Pipeline([], Settings(implementation="pure", detail_all=detail_all))
        eng = p.engine
        with open(path, "rb") as f:
            eng.feed(f.read(), True)
        eng.finish()
        return eng.take(), eng.stats()
    finally:
        for m in mods:
            m.STRUCT_READS = True


@pytest.mark.parametrize("name", ["demo-plant.pcap", "opcua-security.pcap"])
@pytest.mark.parametrize("detail_all", [False, True])
def test_struct_reads_on_the_bundled_captures(name, detail_all):
    path = PCAPS / name
    assert _analyse(path, True, detail_all) == _analyse(path, False, detail_all)
