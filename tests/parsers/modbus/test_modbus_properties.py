"""Property tests: never raise, bounded buffers, compiled == pure.

Streams are built from valid ADUs (random function codes and bodies), then
mutated, truncated, interleaved with garbage and gaps, and cut at random
points, so that the kernels' resync, pairing and limit paths are exercised and
not only the "not Modbus" exit.
"""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otwatch.ext import load
from otwatch.parsers.limits import Limits
from otwatch.parsers.modbus import ModbusConnection, decode, spec, to_dict

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = Limits(modbus_max_pending=4, probe_max_bytes=64)

COUNTERS = ("confirmed", "violation", "messages", "bytes_decoded", "bytes_skipped", "bytes_encrypted",
            "requests", "responses", "exceptions", "unsolicited", "unanswered")

FCS = st.one_of(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43, 90]),
                st.integers(0, 255))


@st.composite
def adus(draw):
    fc = draw(FCS)
    body = draw(st.binary(max_size=draw(st.sampled_from([4, 12, 252]))))
    tid = draw(st.integers(0, 3))
    unit = draw(st.sampled_from([0, 1, 255]))
    pdu = bytes([fc]) + body
    wire = tid.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes([unit]) + pdu
    how = draw(st.sampled_from(["ok", "ok", "ok", "truncate", "flip", "garbage", "length"]))
    if how == "truncate":
        wire = wire[: draw(st.integers(0, len(wire)))]
    elif how == "flip":
        i = draw(st.integers(0, len(wire) - 1))
        wire = wire[:i] + bytes([draw(st.integers(0, 255))]) + wire[i + 1 :]
    elif how == "garbage":
        wire = draw(st.binary(min_size=1, max_size=40)) + wire
    elif how == "length":
        n = draw(st.sampled_from([0, 1, 2, 253, 254, 255, 0xFFFF]))
        wire = wire[:4] + n.to_bytes(2, "big") + wire[6:]
    return wire


@st.composite
def streams(draw):
    """A list of operations: ("feed", side, bytes), ("gap", side, n), ("eof", side)."""
    ops = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["feed"] * 8 + ["gap", "eof"]))
        side = draw(st.integers(0, 1))
        if kind == "feed":
            data = b"".join(draw(st.lists(adus(), min_size=1, max_size=4)))
            cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
            prev = 0
            for c in cuts + [len(data)]:
                ops.append(("feed", side, data[prev:c]))
                prev = c
        elif kind == "gap":
            ops.append(("gap", side, draw(st.integers(0, 300))))
        else:
            ops.append(("eof", side))
    return ops


def run(mod, ops, detail_all):
    seen = {}
    core = mod.ModbusCore(seen, detail_all, LIMITS)
    trace = []
    for i, op in enumerate(ops):
        out = []
        if op[0] == "feed":
            # place the bytes inside a larger buffer: the kernel must read only its window
            buf = b"\xa5" * 3 + op[2] + b"\x5a" * 3
            status = core.feed(op[1], buf, 3, 3 + len(op[2]), float(i), i + 1, out)
        elif op[0] == "gap":
            status = core.gap(op[1], op[2], float(i), i + 1, out)
        else:
            status = core.eof(op[1], float(i), i + 1, out)
        for side in (0, 1):
            assert core.buffered(side) <= spec.MAX_ADU_LEN
        assert len(core.pending) <= LIMITS.modbus_max_pending
        trace.append((status, out))
    counters = tuple(getattr(core, name) for name in COUNTERS)
    return trace, counters, dict(core.pending), seen


def _have_compiled() -> bool:
    return not os.environ.get("OTWATCH_NO_EXTENSIONS")


@pytest.mark.skipif(not _have_compiled(), reason="OTWATCH_NO_EXTENSIONS set")
@SETTINGS
@given(streams(), st.booleans())
def test_compiled_equals_pure(ops, detail_all):
    pure = run(load("modbus", "pure"), ops, detail_all)
    compiled = run(load("modbus", "compiled"), ops, detail_all)
    assert pure == compiled


@SETTINGS
@given(streams())
@example([("feed", 0, b"\x00\x01\x00\x00\x00\xfe\x01\x41" + bytes(252))])
def test_connection_never_raises(impl, ops):
    conn = ModbusConnection(LIMITS, implementation=impl)
    for op in ops:
        if op[0] == "feed":
            events = conn.feed(op[2], op[1])
        elif op[0] == "gap":
            events = conn.gap(op[2], op[1])
        else:
            events = conn.eof(op[1])
        for e in events:
            assert not (getattr(e, "malformed", None) or "").startswith("internal"), e
            json.dumps(to_dict(e))


@SETTINGS
@given(st.binary(max_size=300), st.integers(0, 1), st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(-1, 255), st.integers(-1, 255), st.integers(-1, 65535), st.integers(-1, 65535))))
def test_decode_never_raises(raw, side, key):
    ctx = None
    if key is not None and key[0] != 1:
        ctx = ((1,) + key[1:], 1, 0.0, 0.1)
    e = decode(key, raw, ctx, side)
    assert not (e.malformed or "").startswith("internal"), e
    json.dumps(to_dict(e))


@SETTINGS
@given(st.binary(max_size=600), st.integers(0, 600), st.integers(0, 600))
def test_probe_agrees_and_never_raises(data, start, end):
    pure = load("modbus", "pure").probe(data, start, end)
    assert pure in (0, 1, 2)
    if _have_compiled():
        assert load("modbus", "compiled").probe(data, start, end) == pure
