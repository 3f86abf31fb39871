"""IP and link layers (issue 11): IPv4 reassembly, atomic IPv6 fragments, TSO, VLAN after
Linux cooked headers, FCS bits, signed pcapng time offsets, per-direction VLANs, and
mid-stream orientation between two protocols' ports.

Modbus conversations on 502 through the real pipeline, both kernel implementations,
compared with tshark where tshark decodes the capture.  pcapng ``if_fcslen``: the FCS cut from
Enhanced and Simple Packet Blocks (IPv6 fragments: tests/ext/test_engine_ipv6_frag.py).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import replace

import pytest

from support import capbuild as cb
from support.tcpconv import (C, CM, S, SM, T0, Conv, anomalies, messages, of, per_frame, run, split_ipv4, stamp,
                             tshark_available, tshark_frames, write)
from otwatch.parsers.limits import DEFAULT_LIMITS

needs_tshark = pytest.mark.skipif(not tshark_available(), reason="tshark not installed")


def mbap(tid, unit, fc, body):
    return struct.pack(">HHHBB", tid, 0, 2 + len(body), unit, fc) + body


def polls(n=3, port=502, **kw):
    c = Conv(port, **kw).handshake()
    for tid in range(1, n + 1):
        c.send(0, mbap(tid, 1, 3, b"\x00\x00\x00\x02"))
        c.send(1, mbap(tid, 1, 3, b"\x04\x00\x01\x00\x02"))
    return c.close().pkts


def ipv4(src, dst, proto, payload, ident=1, frag=0, total=None):
    tl = 20 + len(payload) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, tl, ident, frag, 64, proto, 0, cb.ip(src), cb.ip(dst)) + payload


def fragmented(size=16, order=None, extra_for=None):
    """polls() with every client request IP-fragmented."""
    out = []
    ident = 100
    for p in polls():
        if len(p) > 54 and p[34:36] == b"\x9c\x40":     # client → server with payload
            ident += 1
            out += split_ipv4(p, size, ident, order, extra_for(p) if extra_for else ())
        else:
            out.append(p)
    return out


def test_ipv4_fragments_are_reassembled(tmp_path, impl):
    path = write(tmp_path, fragmented())
    obs, stats = run(path, impl)
    assert [m.direction for m in messages(obs)] == ["request", "response"] * 3
    assert stats["decode.ipv4_reassembled"] == 3 and not anomalies(obs)
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


def test_ipv4_fragments_out_of_order(tmp_path, impl):
    obs, stats = run(write(tmp_path, fragmented(order=[1, 0])), impl)
    assert [m.direction for m in messages(obs)] == ["request", "response"] * 3


def test_overlapping_fragments_first_copy_wins_and_are_reported(tmp_path, impl):
    # each request's second (last) fragment comes first, then a copy of it with other bytes,
    # then the first fragment
    def evil(p):
        body = p[34:]
        return [(16, bytes(b ^ 0xFF for b in body[16:32]))]
    obs, stats = run(write(tmp_path, fragmented(order=[1, 2, 0], extra_for=evil)), impl)
    assert [m.direction for m in messages(obs)] == ["request", "response"] * 3
    assert anomalies(obs).count("ip.fragment_overlap") == 3
    assert stats["decode.ipv4_fragment_overlaps"] == 3


def test_fragment_bounds_and_timeout_are_counted(tmp_path, impl):
    frames = fragmented()
    # a lone first fragment that never completes, 40 s before the conversation
    first_frag = [p for p in frames if len(p) > 34 and (p[20] & 0x20)][0]
    lone = first_frag[:18] + b"\x03\xe7" + first_frag[20:]           # another IPv4 id
    pk = [(T0, lone)] + [(T0 + 40 + i * 0.01, p) for i, p in enumerate(frames)]
    f = tmp_path / "x.pcap"
    f.write_bytes(cb.pcap(pk))
    obs, stats = run(str(f), impl)
    assert stats["decode.ipv4_fragments_timeout"] == 1
    assert len(messages(obs)) == 6
    lim = replace(DEFAULT_LIMITS, ip_frag_max_datagrams=1)
    obs, stats = run(write(tmp_path, fragmented(order=[1, 0])[:4] + [lone] + fragmented()), impl, limits=lim)
    assert stats["decode.ipv4_fragments_dropped"] >= 1


def test_ipv4_total_length_zero_is_taken_from_the_frame(tmp_path, impl):
    pk = []
    for p in polls():
        if len(p) > 54:
            p = p[:16] + b"\x00\x00" + p[18:]        # TSO: the capturing host saw total length 0
        pk.append(p)
    path = write(tmp_path, pk)
    obs, stats = run(path, impl)
    assert len(messages(obs)) == 6 and stats["decode.ipv4_tso_length0"] == 6
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


def to_ipv6_atomic(frame):
    """The same TCP segment over IPv6 with an atomic Fragment header (offset 0, M=0)."""
    ip = frame[14:]
    src = "fd00::1" if ip[12:16] == cb.ip(C) else "fd00::2"
    dst = "fd00::2" if src == "fd00::1" else "fd00::1"
    seg = ip[20:]
    frag_hdr = struct.pack("!BBHI", 6, 0, 0, 0x1234)
    return frame[:12] + b"\x86\xdd" + cb.ipv6(src, dst, 6, seg, ext=frag_hdr, ext_nh=44)


def test_ipv6_atomic_fragments_are_whole_packets(tmp_path, impl):
    path = write(tmp_path, [to_ipv6_atomic(p) for p in polls()])
    obs, stats = run(path, impl)
    assert len(messages(obs)) == 6 and stats["decode.ipv6_atomic_fragments"] > 0
    assert "decode.ipv6_fragments" not in stats
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


@pytest.mark.parametrize("cooked", ["sll", "sll2"])
def test_vlan_tag_after_linux_cooked_header(tmp_path, impl, cooked):
    pk = []
    for p in polls():
        tagged = struct.pack("!HH", 30, 0x0800) + p[14:]
        pk.append(cb.sll(tagged, 0x8100, CM) if cooked == "sll" else cb.sll2(tagged, 0x8100, CM))
    path = write(tmp_path, pk, linktype=113 if cooked == "sll" else 276)
    obs, stats = run(path, impl)
    assert len(messages(obs)) == 6
    assert of(obs, "FlowStart")[0].vlan == 30
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


def test_pcap_linktype_with_fcs_bits(tmp_path, impl):
    pk = [p + b"\xde\xad\xbe\xef" for p in polls()]      # every frame ends in a 4-byte FCS
    blob = bytearray(cb.pcap(stamp(pk)))
    struct.pack_into("<I", blob, 20, 0x24000001)        # FCS present, 2 16-bit words; Ethernet
    f = tmp_path / "fcs.pcap"
    f.write_bytes(bytes(blob))
    obs, stats = run(str(f), impl)
    assert len(messages(obs)) == 6
    assert not [k for k in stats if k.startswith("decode.unsupported_linktype")]


def pcapng_fcs(frames, fcslen, simple=False):
    """A pcapng whose interface says (if_fcslen) that frames end in an FCS; each frame gets its
    CRC-32 appended, in an Enhanced or a Simple Packet Block."""
    e = "<"
    shb = cb._block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack(e + "HH", 13, 1) + bytes([fcslen, 0, 0, 0]) + struct.pack(e + "HH", 0, 0)
    out = [shb, cb._block(e, 1, struct.pack(e + "HHI", 1, 0, 0) + opts)]
    for ts, p in stamp(frames):
        f = p + struct.pack("<I", zlib.crc32(p))
        if simple:
            out.append(cb._block(e, 3, struct.pack(e + "I", len(f)) + cb._pad(f)))
        else:
            t = int(ts * 1e6)
            out.append(cb._block(e, 6, struct.pack(e + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(f), len(f))
                                 + cb._pad(f)))
    return b"".join(out)


@pytest.mark.parametrize("fcslen", [4, 32], ids=["octets", "bits"])
@pytest.mark.parametrize("block", ["epb", "spb"])
def test_pcapng_if_fcslen_strips_the_fcs(tmp_path, impl, fcslen, block):
    # IPv4 total length 0 (TSO): the frame's end is the datagram's end, so only cutting the FCS
    # keeps its 4 bytes out of the TCP payload (and out of the Modbus stream)
    frames = [p[:16] + b"\x00\x00" + p[18:] if len(p) > 54 else p for p in polls()]
    f = tmp_path / "fcs.pcapng"
    f.write_bytes(pcapng_fcs(frames, fcslen, simple=block == "spb"))
    obs, stats = run(str(f), impl)
    assert [m.direction for m in messages(obs)] == ["request", "response"] * 3
    assert not anomalies(obs)
    assert stats["capture.bytes"] == sum(len(p) for p in frames)        # wire lengths without the FCS
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(str(f), "modbus")


def test_pcapng_if_fcslen_of_no_known_unit_is_counted_and_ignored(tmp_path, impl):
    f = tmp_path / "fcs.pcapng"
    f.write_bytes(pcapng_fcs(polls(), 7))
    obs, stats = run(str(f), impl)
    assert len(messages(obs)) == 6
    assert stats["capture.fcslen_unknown"] == 1
    assert stats["capture.bytes"] == sum(len(p) + 4 for p in polls())


def test_pcapng_negative_if_tsoffset(tmp_path, impl):
    frame = polls()[0]
    e = "<"
    shb = cb._block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack(e + "HHq", 14, 8, -1_000_000) + struct.pack(e + "HH", 0, 0)    # -10^6 s
    idb = cb._block(e, 1, struct.pack(e + "HHI", 1, 0, 0) + opts)
    t = int(T0 * 1e6)
    epb = cb._block(e, 6, struct.pack(e + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    f = tmp_path / "off.pcapng"
    f.write_bytes(shb + idb + epb)
    obs, _ = run(str(f), impl)
    assert of(obs, "FlowStart")[0].ts == pytest.approx(T0 - 1_000_000, abs=1e-3)


def test_per_direction_vlan_tags_are_one_flow(tmp_path, impl):
    pk = []
    for p in polls():
        vl = 10 if p[26:30] == cb.ip(C) else 20          # client → server on VLAN 10, back on 20
        pk.append(p[:12] + struct.pack("!HH", 0x8100, vl) + p[12:])
    obs, _ = run(write(tmp_path, pk), impl)
    assert len(of(obs, "FlowStart")) == 1
    assert [m.direction for m in messages(obs)] == ["request", "response"] * 3


def test_midstream_client_on_another_protocols_port_is_oriented_by_content(tmp_path, impl):
    pk = polls(cport=4840)[4:-3]           # no handshake; the first packet is the PLC's response
    assert pk[0][34:36] == b"\x01\xf6"     # from 502
    path = write(tmp_path, pk)
    obs, stats = run(path, impl)
    (start,) = of(obs, "FlowStart")
    assert (start.server_port, start.client_port, start.guessed) == (502, 4840, True)
    assert [m.direction for m in messages(obs)] == ["response", "request", "response", "request", "response"]
    assert stats["flows.oriented_by_content"] == 1
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


@pytest.mark.parametrize("first", ["response", "request"])
def test_midstream_with_502_on_both_sides_is_oriented_by_message_shape(tmp_path, impl, first):
    pk = polls(cport=502)[3:-3]            # no handshake
    if first == "response":
        pk = pk[1:]                        # the first packet is a PLC's response
    obs, stats = run(write(tmp_path, pk), impl)
    (start,) = of(obs, "FlowStart")
    assert (start.client, start.server, start.guessed) == (C, S, True)
    assert not [a for a in anomalies(obs) if a in ("modbus.unsolicited_response", "modbus.unanswered_request")
                and first == "request"]
    dirs = [m.direction for m in messages(obs)]
    assert dirs == (["request", "response"] * 3)[1 if first == "response" else 0:]
