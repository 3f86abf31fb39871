"""Hypothesis: the kernel and the readers never raise, never over-read, and the
compiled kernel agrees with the pure one on any input."""
from __future__ import annotations

import os
import struct

import opcua_wire as w
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otwatch.ext import load
from otwatch.parsers.limits import Limits
from otwatch.parsers.opcua import spec
from otwatch.parsers.opcua.binary import DecodeError, Reader
from otwatch.parsers.opcua.decode import decode, to_dict

IMPLS = ["pure"] if os.environ.get("OTWATCH_NO_EXTENSIONS") else ["pure", "compiled"]
SEEDS = [w.hello(), w.acknowledge(), w.read_request(), w.read_response(), w.error(0x80000000, "x"),
         w.activate_session_plain_password("u", "p"), w.abort(0x80AB0000, "a"),
         *w.rechunk(w.read_request(reqid=3), 3)]
SMALL = Limits(stream_max_buffer=4096, opcua_max_message=8192, opcua_max_chunks=4)


def run_kernel(impl, pieces, limits=SMALL):
    mod = load("opcua", impl)
    seen: dict = {}
    core = mod.OPCUACore(seen, False, limits)
    out: list = []
    statuses = []
    for i, (side, data, gap) in enumerate(pieces):
        statuses.append(core.feed(side, data, 0, len(data), float(i), i + 1, out))
        if gap:
            statuses.append(core.gap(side, gap, float(i), i + 1, out))
    statuses.append(core.eof(0, 99.0, 99, out))
    statuses.append(core.eof(1, 99.0, 99, out))
    counters = (core.confirmed, core.messages, core.bytes_decoded, core.bytes_skipped, core.bytes_encrypted,
                core.mode, core.policy, core.channel_id)
    return out, statuses, seen, counters


def mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


pieces_st = st.lists(
    st.tuples(st.integers(0, 1),
              st.one_of(st.binary(max_size=300),
                        st.builds(mutate, st.sampled_from(SEEDS),
                                  st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4)),
                        st.sampled_from(SEEDS)),
              st.sampled_from([0, 0, 0, 5])),
    max_size=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces_st)
@example([(0, w.hello(), 0), (0, b"MSGF\xff\xff\xff\x7f", 0)])
@example([(0, b"HELF\x20\x00\x00\x00" + b"\x00" * 20 + b"\xff\xff\xff\x7f", 0)])
def test_kernel_total_and_compiled_equals_pure(pieces):
    results = [run_kernel(impl, pieces) for impl in IMPLS]
    out, statuses, seen, counters = results[0]
    for r in results[1:]:
        assert r == results[0]
    for s in statuses:
        assert s in (0, -1)
    for rec in out:
        if rec[0] == 1:
            key, raw, ctx = rec[4], rec[5], rec[6]
            assert isinstance(raw, bytes) and key[0] in set(spec.MessageType)
            e = decode(key, raw, ctx, rec[1])  # never raises
            to_dict(e)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([(spec.HEL,), (spec.ACK,), (spec.ERR,), (spec.RHE,), (spec.OPN,),
                                                 (spec.CLO,), (spec.MSG_ENCRYPTED,), (spec.MSG_ABORT,),
                                                 *[(spec.MSG_SERVICE, t) for t in sorted(spec.SERVICES)]]))
def test_decode_never_raises(body, key):
    e = decode(key, b"MSGF" + struct.pack("<I", 8 + len(body)) + body, (None, -1, 0), 0)
    assert e.side == 0
    to_dict(e)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6))
def test_decode_mutated_services(seed, edits):
    m = mutate(seed, edits)
    if m[:3] == b"MSG" and len(m) >= 24:
        decode((spec.MSG_SERVICE, 0), m, None, 0)


READERS = ["boolean", "byte", "int16", "uint32", "int64", "double", "string", "bytestring", "datetime", "guid",
           "nodeid", "expanded_nodeid", "qualified_name", "localized_text", "diagnostic_info", "extension_object",
           "variant", "data_value"]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(READERS))
def test_readers_only_raise_decode_error(data, name):
    r = Reader(data)
    try:
        getattr(r, name)()
    except DecodeError:
        pass
    assert 0 <= r.pos <= len(data)


@pytest.mark.parametrize("data", [
    struct.pack("<i", 0x7FFFFFFF) + b"abc",  # String / ByteString claiming 2^31 - 1
    struct.pack("<i", -2),
])
def test_huge_lengths_do_not_allocate(data):
    for name in ("string", "bytestring"):
        with pytest.raises(DecodeError):
            getattr(Reader(data), name)()
    with pytest.raises(DecodeError):
        Reader(data).array(Reader(data).uint32, 4)


def test_variant_array_claiming_2_31():
    for t in (6, 12, 22, 24):  # Int32, String, ExtensionObject, Variant
        data = bytes([0x80 | t]) + struct.pack("<i", 0x7FFFFFFF) + b"\x00" * 16
        with pytest.raises(DecodeError):
            Reader(data).variant()


def test_deep_nesting_is_bounded():
    data = b"\x40" * 100 + b"\x00"  # DiagnosticInfo with InnerDiagnosticInfo, 100 deep
    with pytest.raises(DecodeError, match="deeply"):
        Reader(data).diagnostic_info()
    data = b"\x18" * 100 + b"\x00"  # Variant of Variant of ...
    with pytest.raises(DecodeError, match="deeply"):
        Reader(data).variant()


def test_read_request_with_count_2_31_is_malformed():
    body = bytearray(w.read_request(node=2258))
    idx = bytes(body).find(b"\x01\x00\xd2\x08") - 4  # NodesToRead count, right before the first NodeId
    assert struct.unpack_from("<i", body, idx)[0] == 1
    body[idx:idx + 4] = struct.pack("<i", 0x7FFFFFFF)
    e = decode((spec.MSG_SERVICE, 631), bytes(body), None, 0)
    assert e.malformed.startswith("truncated NodesToRead")
