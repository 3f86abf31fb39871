"""Resynchronisation after garbage, for each protocol kernel (both implementations).

A confirmed connection, then garbage on the same side, then whole valid
messages each in its own segment: the kernel must find its feet again and
report the last message.  The garbage holds no byte that starts a header of
the protocol (which could legitimately swallow what follows as a body).
"""
from __future__ import annotations

import struct

import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _d in ("mqtt", "opcua"):
    if os.path.join(_HERE, "parsers", _d) not in sys.path:
        sys.path.append(os.path.join(_HERE, "parsers", _d))

import mqtt_build as B  # noqa: E402
import opcua_wire as w  # noqa: E402
from otwatch.ext import load  # noqa: E402
from otwatch.parsers.limits import DEFAULT_LIMITS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


def _mb(tid: int, addr: int) -> bytes:
    return struct.pack(">HHHBBHH", tid, 0, 6, 1, 3, addr, 2)


PROTOS = {
    # name: (core class, opening messages (side, bytes), message maker, garbage alphabet)
    "modbus": ("ModbusCore", [(0, _mb(1, 0)), (1, bytes.fromhex("00010000000701030400010002"))],
               lambda i: _mb(100 + i, i), bytes(range(0x10, 0x100))),
    "mqtt": ("MQTTCore", [(0, B.connect(level=4)), (1, B.connack())],
             lambda i: B.publish("plant/t%d" % i, b"%d" % i), bytes(range(0x00, 0x10))),
    "opcua": ("OPCUACore", [(0, w.hello()), (1, w.acknowledge())],
              lambda i: w.read_request(node=2258 + i, reqid=10 + i, seq=10 + i),
              bytes(x for x in range(256) if chr(x) not in "MOCHAERF")),
}


@pytest.mark.parametrize("proto", sorted(PROTOS))
@SETTINGS
@given(garbage=st.binary(min_size=1, max_size=300), n=st.integers(1, 4))
def test_resynchronises_after_garbage(impl, proto, garbage, n):
    core_name, opening, make, alphabet = PROTOS[proto]
    garbage = bytes(alphabet[b % len(alphabet)] for b in garbage)
    core = getattr(load(proto, impl), core_name)({}, True, DEFAULT_LIMITS)
    out: list = []
    for side, data in opening:
        assert core.feed(side, data, 0, len(data), 0.0, 1, out) == 0
    assert core.confirmed
    core.feed(0, garbage, 0, len(garbage), 0.0, 2, out)
    # enough whole messages to outlast anything the garbage may have started
    msgs = [make(i) for i in range(30 if proto == "modbus" else n + 1)]
    for i, m in enumerate(msgs):
        out = []
        core.feed(0, m, 0, len(m), 0.0, 3 + i, out)
    raws = [r[5] for r in out if r[0] == 1]
    assert raws and raws[-1] == msgs[-1], (proto, out)
