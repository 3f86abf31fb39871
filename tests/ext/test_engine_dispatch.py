"""Dispatch (issue 11): a protocol's port keeps its protocol; mid-stream starts resynchronise.

Through the real pipeline on both kernel implementations, on captures built
here; decodes compared frame by frame with tshark where tshark decodes them.
"""
from __future__ import annotations

import collections
import pathlib
import random
import struct
import sys

import pytest

from support import capbuild as cb
from support.tcpconv import (C, CM, S, SM, Conv, anomalies, messages, of, per_frame, run, tcp_frame,
                             tshark_available, tshark_frames, write)

for _d in ("mqtt", "opcua"):      # the protocol test builders (tests/parsers/<protocol>/)
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parsers" / _d))
import mqtt_build as mb      # noqa: E402
import opcua_wire as ow      # noqa: E402

needs_tshark = pytest.mark.skipif(not tshark_available(), reason="tshark not installed")


def mbap(tid, unit, fc, body=b"", length=None, pid=0):
    n = 2 + len(body) if length is None else length
    return struct.pack(">HHHBB", tid, pid, n, unit, fc) + body


# ---------------------------------------------------------------- Modbus on 502


def fc_sweep(port=502):
    """A function-code sweep from FC 0, answered with exceptions (illegal function)."""
    c = Conv(port).handshake()
    for fc in range(0, 128):
        c.send(0, mbap(fc + 1, 1, fc, b"\x00\x00\x00\x01"))
        c.send(1, mbap(fc + 1, 1, fc | 0x80, b"\x01"))
    return c.close().pkts


def test_function_code_sweep_from_fc0_decodes_every_message(tmp_path, impl):
    obs, stats = run(write(tmp_path, fc_sweep()), impl)
    msgs = messages(obs, "modbus")
    assert len(msgs) == 256
    assert [m.direction for m in msgs[:4]] == ["request", "response", "request", "response"]
    assert "dispatch.rejected" not in anomalies(obs)
    assert collections.Counter(anomalies(obs))["modbus.invalid_function_code"] == 2   # FC 0 both ways
    (end,) = of(obs, "FlowEnd")
    assert end.protocol == "modbus"


@needs_tshark
def test_function_code_sweep_matches_tshark_frame_by_frame(tmp_path, impl):
    path = write(tmp_path, fc_sweep())
    obs, _ = run(path, impl)
    assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


def test_function_code_sweep_on_a_port_given_with_port(tmp_path, impl):
    obs, _ = run(write(tmp_path, fc_sweep(5020)), impl, ports={5020: "modbus"})
    assert len(messages(obs, "modbus")) == 256


def fuzzed_modbus(seed, n=60):
    """Well-framed ADUs (protocol id 0, length 2..254) with random unit, function code and
    body, both ways, as a fuzzer sends them."""
    rnd = random.Random(seed)
    c = Conv(502).handshake()
    for i in range(n):
        body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))
        c.send(0, mbap(i, rnd.randrange(256), rnd.randrange(256), body))
        if rnd.random() < 0.7:
            body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 40)))
            c.send(1, mbap(i, rnd.randrange(256), rnd.randrange(256), body))
    return c.close().pkts


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_modbus_stream_decodes_every_adu(tmp_path, impl, seed):
    pkts = fuzzed_modbus(seed)
    path = write(tmp_path, pkts)
    obs, _ = run(path, impl)
    data_frames = sum(1 for p in pkts if len(p) > 54)
    assert len(messages(obs, "modbus")) == data_frames
    assert "dispatch.rejected" not in anomalies(obs)


@needs_tshark
def test_fuzzed_modbus_stream_matches_tshark(tmp_path, impl):
    path = write(tmp_path, fuzzed_modbus(7))
    obs, _ = run(path, impl)
    assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


@pytest.mark.parametrize("length", [0, 1, 255, 0xFFFF])
def test_bad_first_adu_length_does_not_hide_the_writes(tmp_path, impl, length):
    c = Conv(502).handshake()
    if length < 2:      # the header and as much of the PDU as the length claims
        c.send(0, mbap(1, 1, 3, length=length)[:6 + length])
    else:               # a read whose PDU is padded to the length (tshark decodes it)
        c.send(0, mbap(1, 1, 3, b"\x00\x00\x00\x0a" + bytes(min(length, 300) - 6), length=length))
    c.send(0, mbap(2, 1, 5, b"\x00\x07\xff\x00"))
    c.send(1, mbap(2, 1, 5, b"\x00\x07\xff\x00"))
    c.send(0, mbap(3, 1, 6, b"\x00\x28\x04\xd2"))
    c.send(1, mbap(3, 1, 6, b"\x00\x28\x04\xd2"))
    obs, _ = run(write(tmp_path, c.close().pkts), impl)
    kinds = [(m.kind, m.direction) for m in messages(obs, "modbus")]
    assert kinds[-4:] == [("modbus.write_single_coil", "request"), ("modbus.write_single_coil", "response"),
                          ("modbus.write_single_register", "request"),
                          ("modbus.write_single_register", "response")]
    assert "modbus.invalid_length" in anomalies(obs)
    assert "dispatch.rejected" not in anomalies(obs)


def test_garbage_between_adus_is_skipped_and_reported(tmp_path, impl):
    c = Conv(502).handshake()
    c.send(0, mbap(1, 1, 3, b"\x00\x00\x00\x01"))
    c.send(1, mbap(1, 1, 3, b"\x02\x00\x07"))
    c.send(0, b"\xde\xad\xbe\xef" * 5 + mbap(2, 1, 6, b"\x00\x28\x04\xd2"))
    c.send(1, mbap(2, 1, 6, b"\x00\x28\x04\xd2"))
    obs, _ = run(write(tmp_path, c.close().pkts), impl)
    assert [m.kind for m in messages(obs, "modbus")][-2:] == ["modbus.write_single_register"] * 2
    assert {"modbus.invalid_protocol_id", "modbus.resync"} <= set(anomalies(obs))


# ---------------------------------------------------------------- HTTP and TLS stay rejected

TLS_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
HTTP_GET = b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n"


@pytest.mark.parametrize("port,proto", [(502, "modbus"), (1883, "mqtt"), (4840, "opcua"), (5020, "modbus")])
@pytest.mark.parametrize("first", [TLS_HELLO, HTTP_GET], ids=["tls", "http"])
def test_http_and_tls_on_an_ot_port_are_rejected(tmp_path, impl, port, proto, first):
    c = Conv(port).handshake().send(0, first).send(1, b"HTTP/1.1 400 Bad Request\r\n\r\n").close()
    obs, stats = run(write(tmp_path, c.pkts), impl, ports={502: "modbus", 1883: "mqtt", 4840: "opcua",
                                                           5020: "modbus"})
    assert not messages(obs)
    assert "dispatch.rejected" in anomalies(obs)
    assert stats["dispatch.rejected." + proto] == 1
    (end,) = of(obs, "FlowEnd")
    assert end.protocol == "none"


# ---------------------------------------------------------------- MQTT on 1883


def test_mqtt5_connect_with_a_lying_property_length_keeps_its_connection(tmp_path, impl):
    good = mb.connect(level=5, client_id="c1")
    # CONNECT's property length (right after the keep-alive) says 50 bytes; there are none
    fixed = 2
    at = fixed + 6 + 1 + 1 + 2      # protocol name "MQTT", level, flags, keep-alive
    bad = good[:at] + b"\x32" + good[at + 1:]
    assert good[at] == 0
    c = Conv(1883).handshake()
    c.send(0, bad)
    c.send(1, mb.connack(0, properties=b""))
    c.send(0, mb.publish("plant/valve", b"open", properties=b""))
    c.send(0, mb.reason_packet(14, 0))
    obs, _ = run(write(tmp_path, c.close().pkts), impl)
    kinds = [m.kind for m in messages(obs, "mqtt")]
    assert kinds == ["mqtt.connect", "mqtt.connack", "mqtt.publish", "mqtt.disconnect"]
    assert "mqtt.malformed" in anomalies(obs) and "dispatch.rejected" not in anomalies(obs)


def test_mqtt_garbage_first_on_1883_resynchronises(tmp_path, impl):
    c = Conv(1883).handshake()
    c.send(0, b"\x00\x01\x02\x03garbage")
    c.send(0, mb.publish("plant/t1", b"20.5"))
    c.send(0, mb.publish("plant/t2", b"21.5"))
    obs, _ = run(write(tmp_path, c.close().pkts), impl)
    assert [m.kind for m in messages(obs, "mqtt")] == ["mqtt.publish", "mqtt.publish"]
    assert {"mqtt.invalid_header", "mqtt.resynchronised"} <= set(anomalies(obs))


# ---------------------------------------------------------------- mid-stream starts


def midstream(pkts, drop):
    """The capture starts *drop* packets into the connection."""
    return pkts[drop:]


def test_capture_starting_with_a_keepalive_decodes_the_polls(tmp_path, impl):
    c = Conv(502)
    c.seq = [1001, 5001]
    c.keepalive(0)
    for tid in range(1, 4):
        c.send(0, mbap(tid, 1, 3, b"\x00\x00\x00\x02"))
        c.send(1, mbap(tid, 1, 3, b"\x04\x00\x01\x00\x02"))
    path = write(tmp_path, c.pkts)
    obs, stats = run(path, impl)
    assert len(messages(obs, "modbus")) == 6
    assert stats["tcp.keepalives"] == 1
    assert of(obs, "FlowStart")[0].guessed


def test_capture_starting_inside_an_mqtt_publish(tmp_path, impl):
    big = mb.publish("plant/blob", bytes(range(256)) * 12)
    c = Conv(1883)
    c.seq = [1001, 5001]
    c.send(0, big[1000:2000])          # the capture starts here, inside the big PUBLISH
    c.send(0, big[2000:])
    for i in range(5):
        c.send(0, mb.publish("plant/t%d" % i, b"%d" % i))
    path = write(tmp_path, c.pkts)
    obs, _ = run(path, impl)
    assert [m.kind for m in messages(obs, "mqtt")] == ["mqtt.publish"] * 5
    assert "mqtt.resynchronised" in anomalies(obs)
    assert "dispatch.rejected" not in anomalies(obs)


def test_capture_starting_inside_an_opcua_chunk(tmp_path, impl):
    c = Conv(4840)
    c.seq = [1001, 5001]
    big = ow.read_response(seq=1, reqid=1) + bytes(3000)
    big = big[:4] + struct.pack("<I", len(big)) + big[8:]
    c.send(1, big[700:])                # the server side starts inside a chunk
    for i in range(2, 5):
        c.send(0, ow.read_request(seq=i, reqid=i))
        c.send(1, ow.read_response(seq=i, reqid=i))
    obs, _ = run(write(tmp_path, c.pkts), impl)
    kinds = [(m.kind, m.direction) for m in messages(obs, "opcua")]
    assert kinds == [("opcua.read_request", "request"), ("opcua.read_response", "response")] * 3
    assert "dispatch.rejected" not in anomalies(obs)


# ---------------------------------------------------------------- unknown ports stay strict


def test_telnet_negotiation_on_23_is_not_modbus(tmp_path, impl):
    c = Conv(23).handshake()
    for a, b in [(b"\xff\xfd\x18", b"\xff\xfb\x18"), (b"\xff\xfb\x01", b"\xff\xfd\x01")]:
        c.send(1, a)
        c.send(0, b)
    c.send(1, b"\r\nlogin: ")
    obs, stats = run(write(tmp_path, c.close().pkts), impl)
    assert not messages(obs)
    assert not [k for k in stats if k.startswith("dispatch.detected")]
    (end,) = of(obs, "FlowEnd")
    assert end.protocol == "none"


def test_modbus_on_an_unknown_port_is_still_found_by_content(tmp_path, impl):
    c = Conv(15020).handshake()
    c.send(0, mbap(1, 1, 3, b"\x00\x00\x00\x02")).send(1, mbap(1, 1, 3, b"\x04\x00\x01\x00\x02"))
    obs, stats = run(write(tmp_path, c.close().pkts), impl)
    assert len(messages(obs, "modbus")) == 2 and stats["dispatch.detected.modbus"] == 1
