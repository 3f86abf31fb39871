"""Reproducers of what bench/fuzz.py found (docs/fuzzing.md, "What it found").

The seven bugs in the engine and the kernels (ext/) were kept here as strict
xfails until the kernels' developer fixed them; all are fixed now and stay as
regression tests, with the hostnames bound (fixed in parsers/hostnames.py).
The ext/ tests run against both implementations (the ``impl`` fixture).
"""
from __future__ import annotations

import struct

import pytest

from otwatch import ext
from otwatch.ext import load
from otwatch.parsers.limits import DEFAULT_LIMITS, Limits
from support import capbuild as cb

PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def _kernels(impl):
    out = {}
    for name, app, core in (("modbus", 1, "ModbusCore"), ("mqtt", 2, "MQTTCore"), ("opcua", 3, "OPCUACore")):
        mod = load(name, impl)
        out[app] = (getattr(mod, core), mod.probe)
    return out


def _engine(impl, interval=60.0, limits=DEFAULT_LIMITS):
    E = load("engine", impl)
    return E.Engine(_kernels(impl), limits, {502: 1, 1883: 2, 4840: 3}, {8883: 2}, False, interval)


def _feed(eng, chunks):
    carry = b""
    recs = []
    for c in chunks:
        buf = carry + c
        used = eng.feed(buf, False)
        carry = buf[used:]
    eng.feed(carry, True)
    eng.finish()
    recs += eng.take()
    return recs


def _frame(payload=b"\x00" * 12):
    return cb.eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800,
                  cb.ipv4("10.0.0.1", "10.0.0.2", 17, cb.udp(1000, 2000, payload)))


# --- engine ------------------------------------------------------------------------
# Bug 1 (ext/engine.py): after capture.corrupt_record the walker returned len(buf) and
# walked the NEXT chunk as if it began on a record boundary: analyze reads 4 MiB
# chunks, so the rest of a large damaged file was decoded as garbage packets.
def test_corrupt_record_skips_the_rest_of_the_file_also_across_chunks(impl):
    corrupt = struct.pack("<IIII", 0, 0, 0x7FFFFFFF, 60)           # caplen 2 GiB: corrupt, rest skipped
    good = struct.pack("<IIII", 1_700_000_000, 0, 46, 46) + _frame()  # what follows must stay skipped
    whole = _engine(impl)
    rw = _feed(whole, [PCAP_HDR + corrupt + good])
    chunked = _engine(impl)
    rc = _feed(chunked, [PCAP_HDR + corrupt, good])
    assert whole.stats()["capture.packets"] == 0
    assert chunked.stats()["capture.packets"] == 0
    assert [r for r in rc if r[0] != 19] == [r for r in rw if r[0] != 19]


# Bug 2 (ext/engine.py): an Enhanced Packet Block with block length 12 (shorter than its
# fixed fields) was read past the block and the buffer: IndexError escaped Engine.feed.
def test_pcapng_packet_block_shorter_than_its_fields(impl):
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 0) + struct.pack("<I", 20)
    epb = struct.pack("<III", 6, 12, 12)                             # EPB with no room for its 20 bytes of fields
    eng = _engine(impl)
    eng.feed(shb + idb + epb, True)
    eng.finish()
    assert any(r[0] == 16 and r[7] == "capture.corrupt_record" for r in eng.take())


# Bug 3 (ext/engine.py _flush_interval): (now - start) // interval on doubles is floor(a/b)
# compiled (cdivision) but the exact floor in Python: interval records differed.
@pytest.mark.skipif(ext.IMPLEMENTATION != "compiled", reason="compiled kernels not built")
def test_interval_start_compiled_equals_pure():
    res = {}
    for impl in ("pure", "compiled"):
        eng = _engine(impl, interval=0.1)
        pk = [(1_700_000_000.0, _frame()), (1_700_000_001.0, _frame()), (1_700_000_001.05, _frame()),
              (1_700_000_002.0, _frame())]
        res[impl] = [r for r in _feed(eng, [cb.pcap(pk)]) if r[0] == 19]
    assert res["pure"] == res["compiled"]


# --- OPC UA kernel --------------------------------------------------------------------
def _ua_chunk(ct: bytes, size: int) -> bytes:
    return b"MSG" + ct + struct.pack("<I", size) + bytes(size - 8)


def _account(core):
    return core.bytes_decoded + core.bytes_skipped + core.bytes_encrypted


# Bug 4 (ext/opcua.py): chunks of a message dropped for too_many_chunks were counted when
# framed (encrypted/decoded) and again as skipped when dropped.
def test_opcua_dropped_message_bytes_counted_once(impl):
    core = load("opcua", impl).OPCUACore({}, False, Limits(opcua_max_chunks=1))
    data = _ua_chunk(b"C", 45) + _ua_chunk(b"C", 47) + _ua_chunk(b"F", 47)
    out: list = []
    core.feed(0, data, 0, len(data), 0.0, 1, out)
    core.eof(0, 0.0, 2, out)
    core.eof(1, 0.0, 2, out)
    assert any(r[4] == "opcua.too_many_chunks" for r in out if r[0] == 2)
    assert _account(core) == len(data)


# Bug 5 (ext/opcua.py): an oversized first chunk on an unconfirmed connection was counted
# as skipped, then the violation counted the whole segment as skipped again.
def test_opcua_oversized_chunk_then_violation_counted_once(impl):
    core = load("opcua", impl).OPCUACore({}, False, Limits(stream_max_buffer=64, opcua_max_message=64))
    data = _ua_chunk(b"F", 90) + b"\x00" * 8
    out: list = []
    st = core.feed(1, data, 0, len(data), 0.0, 1, out)
    core.eof(0, 0.0, 2, out)
    core.eof(1, 0.0, 2, out)
    assert st == -1
    assert _account(core) == len(data)


# --- MQTT kernel ------------------------------------------------------------------------
def test_mqtt_violating_bytes_are_counted_in_one_segment(impl):
    core = load("mqtt", impl).MQTTCore({}, False, DEFAULT_LIMITS)
    out: list = []
    data = b"\x31\x01\x00"                 # PUBLISH whose topic overruns the packet
    st = core.feed(0, data, 0, len(data), 0.0, 1, out)
    assert st == -1 and not core.confirmed
    assert _account(core) == len(data)


# Bug 6 (ext/mqtt.py): when the packet proving 'not MQTT' before confirmation came in
# several segments, the bytes buffered from the earlier ones were counted nowhere.
def test_mqtt_violating_bytes_are_counted_across_segments(impl):
    core = load("mqtt", impl).MQTTCore({}, False, DEFAULT_LIMITS)
    out: list = []
    sts = [core.feed(0, b, 0, 1, 0.0, 1, out) for b in (b"\x31", b"\x01", b"\x00")]
    assert sts[-1] == -1 and not core.confirmed
    assert _account(core) == 3


# --- Modbus kernel ------------------------------------------------------------------------
# Bug 7 (ext/modbus.py _die): 'not Modbus' on one side dropped the OTHER side's buffered
# bytes uncounted.
def test_modbus_violation_counts_the_other_sides_buffer(impl):
    core = load("modbus", impl).ModbusCore({}, False, DEFAULT_LIMITS)
    out: list = []
    fed = 0
    for side, data in ((1, b"\x00"), (0, b"\x00\x00\x00\x01")):     # server: 1 byte held; client: protocol id 1
        core.feed(side, data, 0, len(data), 0.0, 1, out)
        fed += len(data)
    core.eof(0, 0.0, 2, out)
    core.eof(1, 0.0, 2, out)
    assert not core.confirmed and core.violation
    assert _account(core) == fed


# --- parsers/hostnames.py (fixed) -----------------------------------------------------------
# Names are documented as "cut at 255 chars", but the cut was made on the bytes
# before decoding, and every invalid UTF-8 byte decodes to four characters
# ("\xNN"): up to 1020 characters came out.  Found by the hostnames target.
DHCP_NAME_OF_INVALID_BYTES = (bytes(236) + b"\x63\x82\x53\x63" + b"\x32\x01\x00" + b"\x0c\xf7" + b"\xf7" * 64)
LLDP_NAME_OF_INVALID_BYTES = (b"\x0a\x0a" + bytes(10) + b"\x0a\x0a" + bytes(10) + b"\x0a\xf0" + b"\xf0" * 64)


@pytest.mark.parametrize("kind, payload", [("dhcp", DHCP_NAME_OF_INVALID_BYTES),
                                           ("lldp", LLDP_NAME_OF_INVALID_BYTES)])
def test_hostnames_names_are_cut_after_decoding(kind, payload):
    from otwatch.parsers import hostnames

    got = hostnames.names(kind, payload, 0)
    assert got and all(len(name) <= hostnames.MAX_NAME for name, _ip, _mac in got)
    assert got[0][0].startswith("\\x")


def test_hostnames_dns_name_of_invalid_bytes_is_cut():
    from otwatch.parsers import hostnames

    label = b"\x3f" + b"\xfe" * 63
    dns = (b"\x00\x00\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00" + label * 3 + b"\x00"
           + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x0a\x00\x00\x01")
    got = hostnames.names("mdns", dns, 1)
    assert got and len(got[0][0]) == hostnames.MAX_NAME and got[0][1] == "10.0.0.1"


# Bug 9 (ext/mqtt.py), found by run 4 on the fixed kernels: the same as bug 7, in MQTT.
# When one side proves "not MQTT" before confirmation, the bytes the OTHER side had
# buffered (here the first byte of a SUBSCRIBE) were counted nowhere (bug 9, fixed).
def test_mqtt_violation_counts_the_other_sides_buffer(impl):
    core = load("mqtt", impl).MQTTCore({}, False, DEFAULT_LIMITS)
    out: list = []
    core.feed(0, b"\x82", 0, 1, 0.0, 1, out)          # client: a SUBSCRIBE's first byte, held
    st = core.feed(1, b"\x00", 0, 1, 0.0, 2, out)     # server: reserved packet type 0
    core.eof(0, 0.0, 3, out)
    core.eof(1, 0.0, 3, out)
    assert st == -1 and not core.confirmed
    assert _account(core) == 2


# The OPC UA twin of bugs 7 and 9: after a violation the engine detaches the kernel and
# calls no eof, so the other direction's held-back bytes must be counted at the violation.
def test_opcua_violation_counts_the_other_sides_buffer(impl):
    core = load("opcua", impl).OPCUACore({}, False, DEFAULT_LIMITS)
    out: list = []
    core.feed(0, b"HELF", 0, 4, 0.0, 1, out)                  # client: half a header, held
    st = core.feed(1, b"\x00" * 8, 0, 8, 0.0, 2, out)        # server: not OPC UA
    assert st == -1 and not core.confirmed
    assert _account(core) == 12                               # counted without any eof
