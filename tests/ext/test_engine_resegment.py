"""The re-segmentation property (issue 11): however a conversation is cut into segments and
packets, the engine decodes the same messages.

Hypothesis draws a Modbus, MQTT or OPC UA conversation and a way to mangle its
transport: messages split at random points, several of a side coalesced into
one segment, pieces duplicated, reordered (held out of order), IP-fragmented
(the capture over IPv4 or IPv6, IPv6 fragments behind a Fragment header), and the whole conversation repeated on the same ports with a new ISN and no
FIN (port reuse).  The messages decoded from the mangled capture must be the
ones decoded from the clean capture (one message a segment), on both kernel
implementations.
"""
from __future__ import annotations

import os
import pathlib
import struct
import sys
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from support import capbuild as cb
from support.tcpconv import C, CM, S, SM, Conv, messages, run, split_ipv4, split_ipv6, stamp, to_ipv6

for _d in ("mqtt", "opcua"):      # the protocol test builders (tests/parsers/<protocol>/)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parsers" / _d))
import mqtt_build as mb      # noqa: E402
import opcua_wire as ow      # noqa: E402

PORTS = {"modbus": 502, "mqtt": 1883, "opcua": 4840}


def mbap(tid, unit, fc, body):
    return struct.pack(">HHHBB", tid, 0, 2 + len(body), unit, fc) + body


@st.composite
def modbus_conv(draw):
    out = []
    for tid in range(1, draw(st.integers(1, 8)) + 1):
        unit = draw(st.integers(0, 3))
        fc = draw(st.sampled_from([1, 3, 4, 6, 16]))
        addr = draw(st.integers(0, 500))
        if fc in (1, 3, 4):
            qty = draw(st.integers(1, 10))
            out.append((0, mbap(tid, unit, fc, struct.pack(">HH", addr, qty))))
            nb = (qty + 7) // 8 if fc == 1 else 2 * qty
            out.append((1, mbap(tid, unit, fc, bytes([nb]) + bytes(nb))))
        elif fc == 6:
            pdu = struct.pack(">HH", addr, draw(st.integers(0, 65535)))
            out += [(0, mbap(tid, unit, fc, pdu)), (1, mbap(tid, unit, fc, pdu))]
        else:
            vals = draw(st.lists(st.integers(0, 65535), min_size=1, max_size=8))
            out.append((0, mbap(tid, unit, fc, struct.pack(">HHB", addr, len(vals), 2 * len(vals))
                                + b"".join(struct.pack(">H", v) for v in vals))))
            out.append((1, mbap(tid, unit, fc, struct.pack(">HH", addr, len(vals)))))
    return out


@st.composite
def mqtt_conv(draw):
    level = draw(st.sampled_from([4, 5]))
    props = b"" if level == 5 else None
    out = [(0, mb.connect(level=level, client_id="c%d" % draw(st.integers(0, 9)))),
           (1, mb.connack(0, properties=b"\x00" if level == 5 else None))]
    for i in range(draw(st.integers(1, 6))):
        qos = draw(st.integers(0, 1))
        topic = "plant/%s" % draw(st.sampled_from(["t1", "t2", "valve", "line/3"]))
        payload = draw(st.binary(max_size=300))
        out.append((0, mb.publish(topic, payload, qos=qos, pid=i + 1 if qos else None,
                                  properties=b"\x00" if level == 5 else props)))
        if qos:
            out.append((1, mb.ack(4, i + 1)))
    out.append((0, mb.reason_packet(14, 0 if level == 5 else None)))
    return out


@st.composite
def opcua_conv(draw):
    out = [(0, ow.hello()), (1, ow.acknowledge())]
    for i in range(draw(st.integers(1, 5))):
        node = draw(st.integers(1, 5000))
        out.append((0, ow.read_request(node=node, reqid=i + 1, seq=i + 1)))
        out.append((1, ow.read_response(value=float(draw(st.integers(0, 100))), reqid=i + 1, seq=i + 1)))
    return out


CONVS = {"modbus": modbus_conv(), "mqtt": mqtt_conv(), "opcua": opcua_conv()}


@st.composite
def mangling(draw, conv):
    """For each message: its cut points, which pieces are duplicated, whether adjacent pieces
    swap, whether it is coalesced with the next message of its side, which packets are
    IP-fragmented; and whether the conversation is repeated with port reuse."""
    plan = []
    for side, msg in conv:
        cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(msg) - 1)), max_size=3)))) if len(msg) > 1 else []
        plan.append({
            "cuts": [c for c in cuts if 0 < c < len(msg)],
            "dup": draw(st.booleans()),
            "swap": draw(st.booleans()),
            "coalesce": draw(st.booleans()),
            "frag": draw(st.sampled_from([0, 0, 8, 16, 24])),
        })
    return plan, draw(st.booleans())


def clean_capture(conv, repeat):
    pkts = []
    for r in range(2 if repeat else 1):
        c = Conv(PORTS[conv[0]], isn_c=1000 + r * 7_000_000, isn_s=5000 + r * 3_000_000, pkts=pkts).handshake()
        for side, msg in conv[1]:
            c.send(side, msg)
        c.close()
    return pkts


def mangled_capture(conv, plan, repeat, family="ipv4"):
    """The conversation mangled by *plan*, over IPv4 or (*family* "ipv6") IPv6, where the
    fragmented packets become IPv6 fragments."""
    proto, msgs = conv
    v6 = family == "ipv6"
    pkts = []
    for r in range(2 if repeat else 1):
        c = Conv(PORTS[proto], isn_c=1000 + r * 7_000_000, isn_s=5000 + r * 3_000_000, pkts=pkts).handshake()
        i = 0
        while i < len(msgs):
            side, data = msgs[i]
            p = plan[i]
            # coalesce with the next message when it is the same side's
            while p["coalesce"] and i + 1 < len(msgs) and msgs[i + 1][0] == side:
                i += 1
                data += msgs[i][1]
                p = dict(p, coalesce=plan[i]["coalesce"])
            bounds = [0] + [x for x in plan[i]["cuts"] if x < len(data)] + [len(data)]
            pieces = [(c.seq[side] + a, data[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]
            if p["swap"] and len(pieces) >= 2:
                pieces[0], pieces[1] = pieces[1], pieces[0]
            if p["dup"]:
                pieces.append(pieces[0])
            for seq, chunk in pieces:
                frame = c._frame(side, "PA", chunk, seq=seq & 0xFFFFFFFF)
                if v6:
                    frame = to_ipv6(frame)
                    if p["frag"] and len(frame) - 54 > p["frag"]:
                        pkts.extend(split_ipv6(frame, p["frag"], ident=len(pkts)))
                    else:
                        pkts.append(frame)
                elif p["frag"] and len(frame) - 34 > p["frag"]:
                    pkts.extend(split_ipv4(frame, p["frag"], ident=len(pkts) & 0xFFFF))
                else:
                    pkts.append(frame)
            c.seq[side] = (c.seq[side] + len(data)) & 0xFFFFFFFF
            i += 1
        if not repeat or r == 1:
            c.close()            # (the first of two conversations ends without FIN or RST)
    if v6:                       # the handshakes and FINs Conv wrote, over IPv6 too
        pkts = [to_ipv6(p) if p[12:14] == b"\x08\x00" else p for p in pkts]
    return pkts


def decoded(pkts, impl):
    fd, path = tempfile.mkstemp(suffix=".pcap")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cb.pcap(stamp(pkts)))
        obs, _ = run(path, impl)
    finally:
        os.unlink(path)
    return [(m.protocol, m.direction, m.kind, m.target) for m in messages(obs)]


@st.composite
def cases(draw):
    proto = draw(st.sampled_from(sorted(CONVS)))
    conv = draw(CONVS[proto])
    plan, repeat = draw(mangling(conv))
    return (proto, conv), plan, repeat, draw(st.sampled_from(["ipv4", "ipv6"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_resegmented_conversations_decode_the_same(impl, case):
    conv, plan, repeat, family = case
    clean = decoded(clean_capture(conv, repeat), impl)
    assert len(clean) == len(conv[1]) * (2 if repeat else 1)
    assert decoded(mangled_capture(conv, plan, repeat, family), impl) == clean
