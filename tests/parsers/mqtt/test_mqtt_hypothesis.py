"""Property tests: any bytes, any chunking, gaps and EOFs — the kernel never
raises, never buffers past its limit, the compiled kernel equals the pure one,
and every record decodes without raising."""
from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otwatch.ext import load
from otwatch.parsers.common import REC_MSG
from otwatch.parsers.limits import Limits
from otwatch.parsers.mqtt import MQTTConnection, decode, describe, to_dict
from otwatch.parsers.mqtt.events import Anomaly, MQTTEvent

_b = importlib.util.spec_from_file_location("otwatch_test_mqtt_build", pathlib.Path(__file__).with_name("mqtt_build.py"))
B = importlib.util.module_from_spec(_b)
_b.loader.exec_module(B)

LIMITS = Limits(mqtt_max_message=300, mqtt_max_aliases=4, payload_preview=16)
P5 = B.props((0x23, 2), (0x26, ("k", "v")), (0x0B, 5))
CORPUS = [
    B.connect(level=3), B.connect(level=4, username="u", password=B.PASSWORD, will=("w", b"x", 1, True)),
    B.connect(level=5, properties=B.props((0x11, 5)), password=B.PASSWORD), B.connack(0, True), B.connack(0, False, b"\x00"),
    B.publish("a/b", b"payload", qos=1, pid=3), B.publish("a/b", b"1", properties=P5), B.publish("", b"2", properties=P5),
    B.publish("big", b"x" * 400), B.ack(4, 1), B.ack(5, 2, 0x10, B.props((0x1F, "r"))), B.ack(6, 3),
    B.subscribe(1, [("a/#", 1), ("b", 0x2D)]), B.subscribe(1, [("a", 0)], b"\x00"), B.suback(1, [0, 0x80]),
    B.unsubscribe(2, ["a"]), B.unsuback(2), B.unsuback(2, [0], b"\x00"), B.packet(12, 0, b""), B.packet(13, 0, b""),
    B.packet(14, 0, b""), B.reason_packet(14, 0x8E), B.reason_packet(15, 0x18, B.props((0x15, "m"))),
    b"\x30\xff\xff\xff\x7f", b"\x16\x03\x01\x00\x02\x01\x00",
]


@pytest.fixture(scope="module")
def pair(request):
    if request.config.getoption("--no-ext") or os.environ.get("OTWATCH_NO_EXTENSIONS"):
        pytest.skip("compiled kernel deselected")
    return load("mqtt", "pure"), load("mqtt", "compiled")


streams = st.lists(st.sampled_from(CORPUS), min_size=1, max_size=8).map(b"".join)


@st.composite
def mutated(draw):
    data = bytearray(draw(streams))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[i : i + draw(st.integers(1, 4))]
        elif op == "cut":
            data = data[:i]
    return bytes(data)


payloads = st.one_of(st.binary(max_size=600), streams, mutated())


@st.composite
def scripts(draw):
    """A sequence of (op, side, data-or-n) kernel calls; feeds are chunked at random."""
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["feed", "feed", "feed", "gap", "eof"]))
        side = draw(st.integers(0, 1))
        if kind == "feed":
            data = draw(payloads)
            cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
            bounds = [0, *cuts, len(data)]
            ops += [("feed", side, data[a:b]) for a, b in zip(bounds, bounds[1:])]
        elif kind == "gap":
            ops.append(("gap", side, draw(st.integers(0, 500))))
        else:
            ops.append(("eof", side, None))
    return ops


def drive(mod, script, detail_all=True):
    seen: dict = {}
    core = mod.MQTTCore(seen, detail_all, LIMITS)
    out: list = []
    statuses = []
    for i, (op, side, arg) in enumerate(script):
        if op == "feed":
            statuses.append(core.feed(side, b"~" + arg + b"~", 1, 1 + len(arg), float(i), i + 1, out))
        elif op == "gap":
            statuses.append(core.gap(side, arg, float(i), i + 1, out))
        else:
            statuses.append(core.eof(side, float(i), i + 1, out))
    counters = (core.messages, core.bytes_decoded, core.bytes_skipped, core.bytes_encrypted, core.confirmed, core.level)
    return out, statuses, counters, seen, core


SETTINGS = settings(max_examples=int(os.environ.get("OTWATCH_HYPOTHESIS_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scripts(), st.booleans())
@example([("feed", 0, b"\x30\xff\xff\xff\xff\x7f")], True)
@example([("feed", 0, b"\x30\xff\xff\xff\x7f" + b"\x00" * 100), ("gap", 0, 10**6), ("feed", 0, CORPUS[5])], True)
def test_mqtt_compiled_equals_pure(pair, script, detail_all):
    pure, compiled = pair
    a = drive(pure, script, detail_all)
    b = drive(compiled, script, detail_all)
    assert a[:4] == b[:4]


@SETTINGS
@given(scripts())
def test_mqtt_kernel_never_raises_and_stays_bounded(script):
    out, statuses, counters, seen, core = drive(load("mqtt", "pure"), script)
    for d in (core.d0, core.d1):
        assert len(d.buf) <= LIMITS.mqtt_max_message
        assert len(d.aliases) <= LIMITS.mqtt_max_aliases
    fed = sum(len(a) for op, _, a in script if op == "feed")
    gaps = sum(a for op, _, a in script if op == "gap")
    messages, decoded, skipped, encrypted = counters[:4]
    assert decoded + encrypted <= fed and skipped <= fed + gaps
    assert all(s in (0, -1) for s in statuses)
    for rec in out:
        if rec[0] == REC_MSG:
            ev = decode(rec[4], rec[5], rec[6], rec[1], limits=LIMITS)
            assert isinstance(ev, MQTTEvent)
            to_dict(ev)
            kind, op, target = describe(rec[4])
            assert kind.startswith("mqtt.")
        else:
            assert rec[4].startswith("mqtt.")


@SETTINGS
@given(payloads, st.integers(0, 1), st.integers(0, 6))
def test_mqtt_decode_never_raises_on_any_body(data, level_i, typ_hint):
    level = (0, 3, 4, 5)[level_i * 3 if level_i else 0] if level_i < 2 else 5
    typ = (data[0] >> 4) if data else 0
    key = (typ, "", 0, 0) if typ == 3 else (typ, 0)
    ev = decode(key, data, (level, None), 0)
    assert isinstance(ev, MQTTEvent)
    assert B.PASSWORD.decode() not in repr(ev)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 1), payloads), max_size=5))
def test_mqtt_connection_never_raises(impl, feeds):
    conn = MQTTConnection(LIMITS, impl)
    events = []
    for side, data in feeds:
        events += conn.feed(data, side)
    events += conn.eof(0) + conn.eof(1)
    assert all(isinstance(e, (MQTTEvent, Anomaly)) for e in events)
    for e in events:
        to_dict(e)


@SETTINGS
@given(streams, st.lists(st.integers(0, 2000), max_size=6))
def test_mqtt_password_never_shown_whatever_the_chunking(impl, wire, cuts):
    # (mutated bytes may legitimately move the password bytes into the user name field)
    conn = MQTTConnection(LIMITS, impl)
    bounds = [0, *sorted(c for c in cuts if c < len(wire)), len(wire)]
    events = []
    for a, b in zip(bounds, bounds[1:]):
        events += conn.feed(wire[a:b], 0)
    text = repr(events) + repr([to_dict(e) for e in events])
    assert B.PASSWORD.decode() not in text and B.PASSWORD.hex() not in text
