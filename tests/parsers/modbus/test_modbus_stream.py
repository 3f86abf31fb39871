"""Stream behaviour: pairing, anomalies, resync, gaps, violations, the kernel's
tallies and records, probe() and describe(); for both implementations."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

from otwatch.parsers.common import FEED_OK, FEED_VIOLATION, REC_ANOMALY, REC_MSG, T_COUNT, T_FIRST_FRAME
from otwatch.parsers.limits import Limits
from otwatch.parsers.modbus import (
    Anomaly,
    ModbusConnection,
    ModbusExceptionResponse,
    ModbusRequest,
    ModbusResponse,
    describe,
    spec,
)

_h = importlib.util.spec_from_file_location(
    "otwatch_test_parsers_helpers", pathlib.Path(__file__).resolve().parents[1] / "helpers.py")
helpers = importlib.util.module_from_spec(_h)
_h.loader.exec_module(helpers)


def adu(pdu_hex: str, tid: int = 1, unit: int = 1) -> bytes:
    pdu = bytes.fromhex(pdu_hex.replace(" ", ""))
    return tid.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes([unit]) + pdu


REQ3 = adu("03 006B 0003")
RESP3 = adu("03 06 022B 0000 0064")


def conn(impl, **limits):
    return ModbusConnection(Limits(**limits) if limits else Limits(), implementation=impl)


def anomalies(events):
    return [e.id for e in events if isinstance(e, Anomaly)]


def messages(events):
    return [e for e in events if not isinstance(e, Anomaly)]


# --- pairing ---------------------------------------------------------------------


def test_pairing_uses_request_frame_and_time(impl):
    c = conn(impl)
    assert len(c.feed(REQ3, 0, ts=10.0, frame=5)) == 1
    (resp,) = c.feed(RESP3, 1, ts=10.25, frame=6)
    assert isinstance(resp, ModbusResponse)
    assert (resp.request_frame, resp.response_time, resp.address, resp.quantity) == (5, 0.25, 107, 3)
    assert c.core.pending == {}
    assert c.eof(1) == []


def test_pairing_by_transaction_and_unit(impl):
    c = conn(impl)
    c.feed(adu("03 0000 0001", tid=7, unit=1) + adu("03 0010 0002", tid=7, unit=2), 0)
    got = c.feed(adu("03 04 0001 0002", tid=7, unit=2) + adu("03 02 0009", tid=7, unit=1), 1)
    assert [(e.unit, e.address, e.values) for e in got] == [(2, 16, (1, 2)), (1, 0, (9,))]


def test_unsolicited_response(impl):
    c = conn(impl)
    got = c.feed(RESP3, 1)
    assert anomalies(got) == ["modbus.unsolicited_response"]
    (resp,) = messages(got)
    assert resp.request_frame is None and resp.address is None and resp.values == (555, 0, 100)
    assert c.core.unsolicited == 1


def test_unsolicited_exception(impl):
    got = conn(impl).feed(adu("83 02"), 1)
    assert anomalies(got) == ["modbus.unsolicited_response"]
    assert isinstance(got[0], ModbusExceptionResponse) and got[0].exception_code == 2


def test_response_mismatch(impl):
    c = conn(impl)
    c.feed(REQ3, 0)
    got = c.feed(adu("04 02 0001"), 1)
    assert anomalies(got) == ["modbus.response_mismatch"]
    assert messages(got)[0].request_frame is None


def test_unanswered_at_server_eof(impl):
    c = conn(impl)
    c.feed(REQ3, 0, frame=3)
    assert c.eof(0) == []          # a client FIN is a half-close: the answer may still come
    got = c.eof(1, frame=9)
    assert got == [Anomaly("modbus.unanswered_request", 1,
                           "1 request(s) never answered; oldest: unit=1 fc=3 frame=3")]
    assert c.core.unanswered == 1
    assert c.eof(1) == []          # reported once


def test_listen_only_unanswered_is_not_reported(impl):
    c = conn(impl)
    c.feed(adu("08 0004 0000"), 0)
    assert c.eof(1) == []          # Force Listen Only Mode expects no answer [APP §6.8.1]
    assert c.core.unanswered == 0


def test_listen_only_answer_is_paired_not_unsolicited(impl):
    """Devices that answer FC 8 sub-function 4 anyway: the reply pairs with its request (tshark pairs it)."""
    c = conn(impl)
    c.feed(adu("08 0004 0000", tid=7), 0)
    got = c.feed(adu("08 0004 0000", tid=7), 1)
    assert anomalies(got) == []
    assert c.core.unsolicited == 0
    assert c.eof(1) == []


def test_pending_overflow(impl):
    c = conn(impl, modbus_max_pending=3)
    got = []
    for tid in range(6):
        got += c.feed(adu("03 0000 0001", tid=tid), 0)
    assert anomalies(got) == ["modbus.pending_overflow"]   # once per connection
    assert len(c.core.pending) == 3
    # the oldest were dropped: tid 0 is now unsolicited, tid 5 pairs
    assert anomalies(c.feed(adu("03 02 0000", tid=0), 1)) == ["modbus.unsolicited_response"]
    assert anomalies(c.feed(adu("03 02 0000", tid=5), 1)) == []
    (a,) = c.eof(1)
    assert a.id == "modbus.unanswered_request" and a.detail.startswith("5 request(s) never answered")


# --- not Modbus ---------------------------------------------------------------------


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n",
    bytes.fromhex("1603010200010001fc0303") + bytes(40),     # TLS ClientHello
    b"SSH-2.0-OpenSSH_9.6\r\n",
    adu("03 0000 0001")[:4] + b"\x01\x00" + bytes(10),        # length 256
    adu("00 0000"),                                           # function code 0
    adu("83 02"),                                             # exception from the client
])
def test_port_502_not_modbus(impl, payload):
    for chunks in helpers.chunkings(payload):
        c = conn(impl)
        got = []
        for chunk in chunks:
            got += c.feed(chunk, 0)
        assert anomalies(got) == ["modbus.not_modbus"] and messages(got) == []
        assert not c.confirmed
        assert c.feed(REQ3, 0) == []       # detached: nothing more is decoded
        assert c.core.messages == 0


def test_kernel_violation_status(kernels):
    m = kernels("modbus")
    core = m.ModbusCore({}, False)
    data = b"xxGET / HTTP/1.1\r\n\r\n"
    assert core.feed(0, data, 2, len(data), 0.0, 1, []) == FEED_VIOLATION
    assert "not Modbus" in core.violation
    assert core.feed(0, REQ3, 0, len(REQ3), 0.0, 2, []) == FEED_VIOLATION
    assert core.bytes_skipped == len(data) - 2 + len(REQ3)


def test_confirmed_connection_reports_invalid_function_code(impl):
    c = conn(impl)
    c.feed(REQ3, 0)
    got = c.feed(adu("83 02", tid=2), 0)
    assert anomalies(got) == ["modbus.invalid_function_code"]
    assert isinstance(got[0], ModbusRequest) and got[0].op == "read"


# --- resync and gaps ------------------------------------------------------------------


GARBAGE = bytes.fromhex("deadbeef000102")


def test_resync_after_garbage(impl):
    helpers.assert_decodes(
        lambda: conn(impl), 0, GARBAGE + adu("06 0001 0003", tid=2),
        [Anomaly("modbus.invalid_protocol_id", 0, "protocol id 48879"),
         Anomaly("modbus.resync", 0, "skipped 7 byte(s) to the next plausible MBAP header"),
         ModbusConnection().feed(adu("06 0001 0003", tid=2), 0)[0]],
        prime=[(0, REQ3)])


def test_resync_after_bad_length(impl):
    c = conn(impl)
    c.feed(REQ3, 0)
    bad = b"\x00\x05\x00\x00\x01\x00\x01\x03"           # length 256
    got = c.feed(bad + REQ3, 0)
    assert anomalies(got) == ["modbus.invalid_length", "modbus.resync"]
    assert [type(e) for e in messages(got)] == [ModbusRequest]
    assert c.core.bytes_skipped == len(bad)


def test_gap_drops_partial_and_resyncs(impl):
    c = conn(impl)
    c.feed(REQ3, 0)
    assert c.feed(REQ3[:5], 0) == []
    assert c.core.buffered(0) == 5
    assert c.gap(100, 0) == []
    assert c.core.buffered(0) == 0
    got = c.feed(REQ3[5:] + REQ3, 0)       # the tail of the lost ADU, then a clean one
    assert anomalies(got) == ["modbus.resync"]
    assert len(messages(got)) == 1
    assert c.core.bytes_skipped == 5 + 100 + len(REQ3) - 5


def test_gap_at_boundary_is_silent(impl):
    c = conn(impl)
    c.feed(REQ3, 0)
    c.gap(12, 0)
    assert [type(e) for e in c.feed(REQ3, 0)] == [ModbusRequest]


def test_unconfirmed_gap_then_garbage_is_a_violation(impl):
    c = conn(impl, probe_max_bytes=64)
    c.gap(10, 0)
    got = c.feed(b"\x01" * 100, 0)
    assert anomalies(got) == ["modbus.not_modbus"]


def test_truncated_at_eof(impl):
    c = conn(impl)
    c.feed(REQ3, 0)
    c.feed(RESP3, 1)
    c.feed(RESP3[:9], 1)
    assert anomalies(c.eof(1)) == ["modbus.truncated"]


def test_largest_adu(impl):
    data = bytes(range(252))                     # fc + 252 bytes = 253-byte PDU, length field 254
    wire = adu("41" + data.hex())
    assert wire[4:6] == b"\x00\xfe" and len(wire) == spec.MAX_ADU_LEN
    helpers.assert_decodes(lambda: conn(impl), 0, wire, [ModbusConnection().feed(wire, 0)[0]])
    assert ModbusConnection().feed(wire, 0)[0].data == data


# --- kernel records and tallies ------------------------------------------------------------


def test_kernel_tallies_and_novelty(kernels):
    m = kernels("modbus")
    seen = {}
    core = m.ModbusCore(seen, False)
    out = []
    for i in range(3):
        assert core.feed(0, REQ3, 0, len(REQ3), float(i), 10 + 2 * i, out) == FEED_OK
        assert core.feed(1, RESP3, 0, len(RESP3), i + 0.5, 11 + 2 * i, out) == FEED_OK
    # only the first request and the first response are new
    assert [r[0] for r in out] == [REC_MSG, REC_MSG]
    req_key = (spec.MSG_REQUEST, 1, 3, 107, 3)
    assert out[0] == (REC_MSG, 0, 0.0, 10, req_key, REQ3, None)
    assert out[1] == (REC_MSG, 1, 0.5, 11, (spec.MSG_RESPONSE,) + req_key[1:], RESP3, (req_key, 10, 0.0, 0.5))
    assert seen[req_key] == [3, 3 * len(REQ3), 0.0, 2.0, 3, 3 * len(REQ3), 10, 14]
    assert seen[req_key][T_COUNT] == 3 and seen[req_key][T_FIRST_FRAME] == 10
    assert core.messages == 6 and core.bytes_decoded == 3 * (len(REQ3) + len(RESP3))
    assert core.requests == 3 and core.responses == 3 and core.confirmed


def test_kernel_always_detailed(kernels):
    m = kernels("modbus")
    core = m.ModbusCore({}, False)
    out = []
    wires = [(0, adu("06 0001 0003")), (1, adu("06 0001 0003")), (0, adu("2B 0E 01 00")),
             (1, adu("83 02")), (0, adu("5A 00 02"))]
    for _ in range(2):
        for side, w in wires:
            core.feed(side, w, 0, len(w), 0.0, 1, out)
    msgs = [r for r in out if r[0] == REC_MSG]
    # FC 43 request and programming function: twice; the FC 6 write and its echo once (the
    # second writes a register already written: register coverage); the exception once (new
    # by its key, repeats counted)
    assert [r[4][2] for r in msgs] == [6, 6, 43, 3, 90, 43, 90]


def test_kernel_keys(kernels):
    m = kernels("modbus")
    core = m.ModbusCore({}, True)
    out = []
    for w in [adu("17 0003 0006 000E 0003 06 00FF 00FF 00FF"), adu("2B 0E 04 05"), adu("08 0004 0000"),
              adu("14 07 06 0004 0001 0002"), adu("18 04DE"), adu("07"), adu("03 00"), adu("2B")]:
        core.feed(0, w, 0, len(w), 0.0, 1, out)
    assert [r[4] for r in out if r[0] == REC_MSG] == [
        (1, 1, 23, 3, 6, 14, 3), (1, 1, 43, 14, 4, 5), (1, 1, 8, 4, 0), (1, 1, 20, 4, 1),
        (1, 1, 24, 1246, 0), (1, 1, 7, 0, 0), (1, 1, 3, -1, -1), (1, 1, 43, -1, -1, -1)]
    w = adu("83 02")
    core.feed(1, w, 0, len(w), 0.0, 1, out)
    assert out[-2][4] == (spec.MSG_EXCEPTION, 1, 3, 2)


def test_kernel_reads_only_its_window(kernels):
    m = kernels("modbus")
    core = m.ModbusCore({}, True)
    out = []
    data = b"\xff" * 5 + REQ3 + REQ3[:4] + b"\xff" * 5
    assert core.feed(0, data, 5, 5 + len(REQ3) + 4, 0.0, 1, out) == FEED_OK
    assert len(out) == 1 and core.buffered(0) == 4
    assert core.feed(0, data, 0, 0, 0.0, 1, out) == FEED_OK


def test_anomaly_records(kernels):
    m = kernels("modbus")
    core = m.ModbusCore({}, False)
    out = []
    core.feed(1, RESP3, 0, len(RESP3), 1.5, 4, out)
    assert out[-1] == (REC_ANOMALY, 1, 1.5, 4, "modbus.unsolicited_response", "tid=1 unit=1 fc=3")


# --- probe and describe ------------------------------------------------------------------


def test_probe(kernels):
    probe = kernels("modbus").probe
    assert probe(REQ3, 0, len(REQ3)) == 2
    assert probe(REQ3 + RESP3, 0, len(REQ3) + 5) == 2
    assert probe(REQ3 + b"zzzzzzzz", 0, len(REQ3) + 8) == 1
    assert probe(REQ3, 0, 5) == 1
    assert probe(b"", 0, 0) == 0
    assert probe(b"GET / HTTP/1.1\r\n", 0, 16) == 0
    assert probe(adu("00 00"), 0, 9) == 0
    assert probe(b"xx" + REQ3, 2, 2 + len(REQ3)) == 2
    assert probe(REQ3, 0, 1000) == 2


@pytest.mark.parametrize("key,expected", [
    ((1, 1, 3, 0, 10), ("modbus.read_holding_registers", "read", "unit=1/holding_registers/0+10")),
    ((2, 1, 3, -1, -1), ("modbus.read_holding_registers", "read", "unit=1/holding_registers/?+?")),
    ((1, 1, 5, 17, 1), ("modbus.write_single_coil", "write", "unit=1/coils/17+1")),
    ((1, 1, 23, 0, 10, 100, 2), ("modbus.read_write_multiple_registers", "write",
                                 "unit=1/holding_registers/100+2/read=0+10")),
    ((1, 1, 8, 4, 0), ("modbus.diagnostics", "diagnostic", "unit=1/diagnostics/sub=4")),
    ((1, 1, 20, 4, 7), ("modbus.read_file_record", "read", "unit=1/file/4/7")),
    ((1, 1, 24, 1246, 0), ("modbus.read_fifo_queue", "read", "unit=1/fifo/1246")),
    ((1, 1, 43, 14, 1, 0), ("modbus.encapsulated_interface_transport", "diagnostic",
                            "unit=1/device_id/code=1/object=0")),
    ((1, 1, 43, 13, 0, 0), ("modbus.encapsulated_interface_transport", "diagnostic", "unit=1/mei=13")),
    ((1, 1, 17, 0, 0), ("modbus.report_server_id", "diagnostic", "unit=1/fc=17")),
    ((1, 1, 90, 0, 0), ("modbus.program_function_90", "program", "unit=1/fc=90")),
    ((1, 1, 66, 0, 0), ("modbus.user_defined_function_66", "other", "unit=1/fc=66")),
    ((3, 1, 3, 2), ("modbus.exception", "read", "unit=1/holding_registers/fc=3/exception=2")),
    ((3, 1, 17, -1), ("modbus.exception", "diagnostic", "unit=1/fc=17/exception=?")),
    (("junk",), ("modbus.unknown", "other", "?")),
])
def test_describe(key, expected):
    assert describe(key) == expected

