"""Hypothesis: the compiled engine and the pure one give the same records on any input
(and, interpreted, the struct reads and the byte reads give the same records)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwatch import ext
from otwatch.parsers.limits import DEFAULT_LIMITS
from support import capbuild as cb
from support.echo_kernel import EchoCore, probe

needs_compiled = pytest.mark.skipif(ext.IMPLEMENTATION != "compiled", reason="compiled kernels not built")

ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


@st.composite
def packets(draw):
    out = []
    for i in range(draw(st.integers(1, 30))):
        src, dst = draw(st.sampled_from(ADDRS)), draw(st.sampled_from(ADDRS))
        payload = draw(st.binary(max_size=40))
        if draw(st.booleans()):
            l4 = cb.tcp(draw(st.sampled_from([40000, 40001, 7777])), draw(st.sampled_from([7777, 40000, 80])),
                        draw(st.integers(0, 2**32 - 1)), 0, draw(st.sampled_from(["S", "SA", "A", "PA", "FA", "R"])),
                        payload)
            ip = cb.ipv4(src, dst, 6, l4)
        else:
            ip = cb.ipv4(src, dst, 17, cb.udp(draw(st.integers(1, 65535)), draw(st.sampled_from([53, 67, 5353, 9])),
                                              payload))
        frame = cb.eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800, ip,
                       vlans=draw(st.sampled_from([(), (5,)])))
        cut = draw(st.integers(0, len(frame)))
        if draw(st.booleans()):
            frame = frame[:cut]                     # truncated headers
        elif draw(st.integers(0, 9)) == 0:
            frame = bytearray(frame)
            frame[draw(st.integers(0, len(frame) - 1))] ^= draw(st.integers(1, 255))
            frame = bytes(frame)                    # a flipped byte anywhere
        out.append((1_700_000_000 + i * draw(st.floats(0, 50)), frame))
    return out


def _run(impl, blob, struct_reads=True):
    E = ext.load("engine", impl)
    if impl == "pure":
        E.STRUCT_READS = struct_reads
    EchoCore.log = []
    eng = E.Engine({1: (EchoCore, probe)}, DEFAULT_LIMITS, {7777: 1}, {}, False, 30.0)
    try:
        eng.feed(blob, True)
    except ValueError as exc:
        return ("error", str(exc))
    finally:
        E.STRUCT_READS = True
    eng.finish()
    return eng.take(), eng.stats(), list(EchoCore.log)


def _frames(pkts, linktype):
    if linktype == 101:
        return [(t, f[14:]) for t, f in pkts]
    if linktype == 113:
        return [(t, cb.sll(f[14:], 0x0800)) for t, f in pkts]
    return pkts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets(), st.sampled_from([1, 101, 113]), st.booleans())
@needs_compiled
def test_compiled_equals_pure(pkts, linktype, big):
    # big: a big-endian pcap, whose record headers the compiled walk reads in place (_rd32)
    blob = cb.pcap(_frames(pkts, linktype), linktype=linktype, big=big)
    assert _run("pure", blob) == _run("compiled", blob)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
@needs_compiled
def test_garbage_files_same_outcome(blob):
    assert _run("pure", blob) == _run("compiled", blob)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets(), st.sampled_from([1, 101, 113]), st.booleans())
def test_interpreted_struct_reads_equal_the_byte_reads(pkts, linktype, big):
    """Interpreted, the engine reads the pcap record, Ethernet type, IPv4 and TCP headers with one
    ``struct`` call each (STRUCT_READS); the byte arithmetic the compiled path uses must
    give the same records.  Runs without the compiled build."""
    blob = cb.pcap(_frames(pkts, linktype), linktype=linktype, big=big)
    assert _run("pure", blob, struct_reads=True) == _run("pure", blob, struct_reads=False)
