"""OPCUACore behaviour: framing, keys, tallies, limits, anomalies, probe — both implementations."""
from __future__ import annotations

import struct

import opcua_wire as w
import pytest
from helpers import assert_decodes

from otwatch.parsers.common import FEED_OK, FEED_VIOLATION, REC_ANOMALY, REC_MSG, T_COUNT, T_FIRST_FRAME
from otwatch.parsers.limits import Limits
from otwatch.parsers.opcua import events as ev
from otwatch.parsers.opcua import spec


def _fnv(nodes) -> int:
    h = 0xCBF29CE484222325
    for b in nodes:
        for x in b + bytes([len(b) & 0xFF]):
            h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


READ = (spec.MSG_SERVICE, 631, 1, _fnv([b"\x01\x00" + struct.pack("<HI", 2258, 13)]))
"""The key of opcua_wire.read_request(): one node (four-byte NodeId i=2258, AttributeId Value),
its FNV-1a digest computed here independently of the kernel (docs/protocols/opcua.md)."""


def run(core, items, out=None):
    out = [] if out is None else out
    for i, (side, data) in enumerate(items):
        core.feed(side, data, 0, len(data), float(i), i + 1, out)
    return out


def anomalies(out):
    return [r[4] for r in out if r[0] == REC_ANOMALY]


def msgs(out):
    return [r for r in out if r[0] == REC_MSG]


def test_keys_and_tallies(kernels):
    seen = {}
    core = kernels("opcua").OPCUACore(seen, False)
    items = [(0, w.hello()), (1, w.acknowledge())]
    for i in range(5):
        items += [(0, w.read_request(reqid=i + 1)), (1, w.read_response(reqid=i + 1))]
    out = run(core, items)
    keys = [r[4] for r in msgs(out)]
    # always-detailed HEL/ACK, then Read request/response only when new
    assert keys == [(spec.HEL,), (spec.ACK,), READ, (spec.MSG_SERVICE, 634)]
    assert seen[READ][T_COUNT] == 5 and seen[READ][T_FIRST_FRAME] == 3
    assert core.messages == 12 and core.confirmed
    assert core.bytes_decoded == sum(len(d) for _, d in items) and core.bytes_encrypted == 0
    rec = msgs(out)[2]
    assert rec[1] == 0 and rec[3] == 3 and rec[5] == items[2][1] and rec[6] == (None, -1, 1)


def test_always_detailed_services(kernels):
    core = kernels("opcua").OPCUACore({}, False)
    write = w.activate_session_plain_password("u", "p")
    out = run(core, [(0, write), (0, write)])
    assert len(msgs(out)) == 2


def test_data_slice_offsets_respected(kernels):
    core = kernels("opcua").OPCUACore({}, True)
    m = w.read_request()
    buf = b"garbage" + m + b"trailing"
    out = []
    assert core.feed(0, buf, 7, 7 + len(m), 0.0, 1, out) == FEED_OK
    assert [r[5] for r in msgs(out)] == [m]


def test_not_opcua_is_violation_until_confirmed(kernels):
    core = kernels("opcua").OPCUACore({}, False)
    assert core.feed(0, b"GET / HTTP/1.1\r\n\r\n", 0, 18, 0.0, 1, []) == FEED_VIOLATION
    assert not core.confirmed


def test_bad_header_after_confirmed_resyncs(kernels):
    core = kernels("opcua").OPCUACore({}, True)
    out = run(core, [(0, w.hello()), (0, b"XXXXXXXXXXXXXXXX"), (0, w.read_request())])
    assert anomalies(out) == ["opcua.bad_header"]
    assert [r[4] for r in msgs(out)] == [(spec.HEL,), READ]
    assert core.bytes_skipped == 16


def test_chunk_too_large_is_skipped(kernels):
    lim = Limits(stream_max_buffer=1000)
    core = kernels("opcua").OPCUACore({}, True, lim)
    big = w.symmetric(b"\x01\x00\x77\x02" + b"\x00" * 3000)
    out = run(core, [(0, w.hello()), (0, big[:500]), (0, big[500:]), (0, w.read_request())])
    assert anomalies(out) == ["opcua.chunk_too_large"]
    assert [r[4] for r in msgs(out)] == [(spec.HEL,), READ]
    assert core.bytes_skipped == len(big)


def test_chunk_limits(kernels):
    core = kernels("opcua").OPCUACore({}, True, Limits(opcua_max_chunks=2))
    chunks = w.rechunk(w.read_request(), 4)
    out = run(core, [(0, c) for c in chunks] + [(0, w.read_request(reqid=9))])
    assert anomalies(out) == ["opcua.too_many_chunks"]
    assert [r[4] for r in msgs(out)] == [READ]
    core = kernels("opcua").OPCUACore({}, True, Limits(opcua_max_message=60))
    out = run(core, [(0, c) for c in w.rechunk(w.read_request(), 4)])
    assert anomalies(out) == ["opcua.message_too_large"] and not msgs(out)


def test_negotiated_limits(kernels):
    core = kernels("opcua").OPCUACore({}, True)
    out = run(core, [(0, w.hello()), (1, w.acknowledge(rbuf=40, maxchunks=2))]
              + [(0, c) for c in w.rechunk(w.read_request(), 3)])
    assert "opcua.negotiated_limit_exceeded" in anomalies(out)
    assert msgs(out)[-1][4] == READ


def test_abort_clears_assembly(kernels):
    core = kernels("opcua").OPCUACore({}, True)
    chunks = w.rechunk(w.read_request(reqid=7), 3)
    out = run(core, [(0, chunks[0]), (0, chunks[1]), (0, w.abort(0x80AB0000, "stop", reqid=7)), (0, chunks[2])])
    keys = [r[4] for r in msgs(out)]
    # the abort is a message; the orphan final chunk then stands alone: on a channel whose
    # policy is unknown a body that does not read as a service is taken as encrypted
    assert keys == [(spec.MSG_ABORT,), (spec.MSG_ENCRYPTED,)]


def test_gap_and_eof(kernels):
    core = kernels("opcua").OPCUACore({}, True)
    m = w.read_request()
    out = run(core, [(0, w.hello()), (0, m[:30])])
    core.gap(0, 100, 1.0, 5, out)
    assert anomalies(out) == ["opcua.gap_in_message"]
    out = run(core, [(0, m), (0, m[:10])])
    assert [r[4] for r in msgs(out)] == [READ]
    core.eof(0, 2.0, 9, out)
    assert anomalies(out) == ["opcua.truncated_chunk"]


def test_channel_mismatch(kernels):
    core = kernels("opcua").OPCUACore({}, True)
    out = run(core, [(0, w.symmetric(w.read_request()[24:], channel=5)),
                     (0, w.symmetric(w.read_request()[24:], channel=6)),
                     (0, w.symmetric(w.read_request()[24:], channel=7))])
    assert anomalies(out) == ["opcua.secure_channel_mismatch"]


def test_too_many_partial_messages(kernels):
    core = kernels("opcua").OPCUACore({}, True)
    items = [(0, w.rechunk(w.read_request(reqid=i), 2)[0]) for i in range(spec.MAX_PENDING_MESSAGES + 1)]
    out = run(core, items)
    assert anomalies(out) == ["opcua.too_many_partial_messages"]


def test_probe(kernels):
    probe = kernels("opcua").probe
    h = w.hello()
    assert probe(h, 0, len(h)) == 2
    assert probe(h, 0, 3) == 1 and probe(b"HELF", 0, 4) == 1
    assert probe(w.reverse_hello("urn:x", "opc.tcp://x"), 0, 40) == 2
    assert probe(w.read_request(), 0, 91) == 1
    assert probe(w.hello(version=99), 0, 60) == 1
    assert probe(b"GET / HTTP/1.1", 0, 14) == 0 and probe(b"", 0, 0) == 0
    assert probe(b"HELX\x00\x00\x00\x00", 0, 8) == 0
    assert probe(b"HELF\x05\x00\x00\x00", 0, 8) == 0
    assert probe(h, 0, 1000) == 2 and probe(h, -5, len(h)) == 2


ERR = w.error(0x80080000, "message too large")
RHE = w.reverse_hello("urn:plc", "opc.tcp://plc:4840/")
ABORT = w.abort(0x80AB0000, "cancelled")


@pytest.mark.parametrize("side,wire,expected", [
    (0, w.hello(), [ev.OPCUAHello(side=0, receive_buffer_size=65535, send_buffer_size=65535,
                                   endpoint_url="opc.tcp://plc:4840/")]),
    (1, w.acknowledge(maxmsg=1 << 20, maxchunks=16),
     [ev.OPCUAAcknowledge(side=1, receive_buffer_size=65535, send_buffer_size=65535, max_message_size=1 << 20,
                          max_chunk_count=16)]),
    (1, ERR, [ev.OPCUAError(side=1, status_code=0x80080000, status_name="BadEncodingLimitsExceeded",
                            reason="message too large")]),
    (1, RHE, [ev.OPCUAReverseHello(side=1, server_uri="urn:plc", endpoint_url="opc.tcp://plc:4840/")]),
])
def test_transport_vectors(make_conn, side, wire, expected):
    assert_decodes(make_conn, side, wire, expected)


def test_abort_vector(make_conn):
    prime = [(0, w.rechunk(w.read_request(reqid=7), 2)[0])]  # the message being aborted
    expected = [ev.OPCUAAbort(side=0, secure_channel_id=1, request_id=7, status_code=0x80AB0000,
                              status_name="BadInvalidArgument", reason="cancelled")]
    assert_decodes(make_conn, 0, ABORT, expected, prime=prime)
    # unknown policy and nothing pending: cannot tell, so treated as encrypted
    (e,) = make_conn().feed(ABORT, 0)
    assert e == ev.OPCUAAbort(side=0, secure_channel_id=1, encrypted=True)


def test_truncated_hello_is_malformed(make_conn):
    bad = b"HELF" + struct.pack("<I", 34) + struct.pack("<IIIII", 0, 1, 1, 0, 0) + struct.pack("<i", 100) + b"ab"
    (e,) = make_conn().feed(bad, 0)
    assert isinstance(e, ev.OPCUAHello) and e.malformed.startswith("truncated String")


def test_connection_reports_not_opcua(make_conn):
    got = make_conn().feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 0)
    assert got == [ev.Anomaly("opcua.not_opcua", 0, "9 bytes are not OPC UA binary")]


def test_any_buffer_type(kernels, tmp_path):
    import mmap

    m = w.hello() + w.read_request() + w.read_response()
    path = tmp_path / "buf"
    path.write_bytes(b"xx" + m)
    results = []
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for buf in (b"xx" + m, bytearray(b"xx" + m), memoryview(b"xx" + m), mm):
            core = kernels("opcua").OPCUACore({}, True)
            out = []
            assert core.feed(0, buf, 2, 2 + len(m), 0.0, 1, out) == FEED_OK
            assert kernels("opcua").probe(buf, 2, 2 + len(m)) == 2
            results.append(out)
    assert all(r == results[0] for r in results) and len(results[0]) == 3
