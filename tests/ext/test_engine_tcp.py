"""TCP as Zeek and Suricata do it (issue 11): port reuse, keep-alives, FIN order, overlaps, RST.

Through the real pipeline on both kernel implementations (Modbus on 502, so
tshark can say which frames carry which message), on captures built here.
"""
from __future__ import annotations

import struct

import pytest

from support.tcpconv import (C, CM, S, SM, Conv, anomalies, messages, of, per_frame, run, tcp_frame,
                             tshark_available, tshark_frames, write)

needs_tshark = pytest.mark.skipif(not tshark_available(), reason="tshark not installed")


def mbap(tid, unit, fc, body):
    return struct.pack(">HHHBB", tid, 0, 2 + len(body), unit, fc) + body


def poll(c: Conv, tid: int):
    c.send(0, mbap(tid, 1, 3, b"\x00\x00\x00\x02"))
    c.send(1, mbap(tid, 1, 3, b"\x04\x00\x01\x00\x02"))


def reused(isn_delta):
    """Two polls, then (no FIN, no RST) a new handshake on the same ports with a new ISN and
    two more polls (tid 100, 101)."""
    first = Conv(502).handshake()
    poll(first, 1)
    poll(first, 2)
    second = Conv(502, isn_c=(1000 + isn_delta) & 0xFFFFFFFF, isn_s=9000, pkts=first.pkts).handshake()
    poll(second, 100)
    poll(second, 101)
    return second.close().pkts


@pytest.mark.parametrize("delta", [3_900_000, -700, 0x80000000 - 5], ids=["higher", "lower", "half_space"])
def test_a_new_isn_on_the_same_ports_starts_a_new_connection(tmp_path, impl, delta):
    path = write(tmp_path, reused(delta))
    obs, stats = run(path, impl)
    starts, ends = of(obs, "FlowStart"), of(obs, "FlowEnd")
    assert len(starts) == 2 and stats["flows.port_reused"] == 1
    assert ends[0].reason == "reused" and ends[0].messages == 4 and ends[0].gap_bytes == 0
    msgs = messages(obs, "modbus")
    assert [m.flow_id for m in msgs] == [starts[0].flow_id] * 4 + [starts[1].flow_id] * 4
    assert [m.frame for m in msgs[4:]] == [11, 12, 13, 14]     # as they arrive, not at the flow's end
    assert not [a for a in anomalies(obs) if a.startswith(("modbus.", "tcp."))]
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


def test_a_retransmitted_syn_is_not_a_new_connection(tmp_path, impl):
    c = Conv(502).handshake()
    c.pkts.append(tcp_frame(C, S, 40000, 502, 1000, "S"))      # the original SYN again
    poll(c, 1)
    obs, stats = run(write(tmp_path, c.close().pkts), impl)
    assert len(of(obs, "FlowStart")) == 1 and "flows.port_reused" not in stats
    assert len(messages(obs)) == 2


def test_keepalives_are_not_stream_data(tmp_path, impl):
    c = Conv(502).handshake()
    poll(c, 1)
    c.keepalive(0).keepalive(1)
    poll(c, 2)
    c.keepalive(0)
    poll(c, 3)
    obs, stats = run(write(tmp_path, c.close().pkts), impl)
    assert len(messages(obs)) == 6
    assert stats["tcp.keepalives"] == 3
    assert "tcp.overlap_inconsistent" not in anomalies(obs)


def test_zero_window_probe_byte_is_data(tmp_path, impl):
    """A zero-window probe carries the next byte; the retransmission with the rest repeats it."""
    c = Conv(502).handshake()
    req = mbap(1, 1, 3, b"\x00\x00\x00\x02")
    s0 = c.seq[0]
    c.send(0, req[:1])
    c.seq[0] = s0
    c.send(0, req)
    c.send(1, mbap(1, 1, 3, b"\x04\x00\x01\x00\x02"))
    obs, _ = run(write(tmp_path, c.close().pkts), impl)
    assert [m.direction for m in messages(obs)] == ["request", "response"]
    assert "tcp.overlap_inconsistent" not in anomalies(obs)


def test_fin_before_the_last_data_waits_for_it(tmp_path, impl):
    c = Conv(502).handshake()
    poll(c, 1)
    c.send(0, mbap(2, 1, 3, b"\x00\x00\x00\x02"))
    last = len(c.pkts)
    c.send(1, mbap(2, 1, 3, b"\x04\x00\x01\x00\x02"))
    c.pkts.append(c._frame(1, "FA"))            # the server's FIN overtakes its last response
    c.pkts[last], c.pkts[last + 1] = c.pkts[last + 1], c.pkts[last]
    c.seq[1] += 1
    c.pkts.append(c._frame(0, "FA"))
    obs, _ = run(write(tmp_path, c.pkts), impl)
    assert [m.direction for m in messages(obs)] == ["request", "response"] * 2
    assert not {"modbus.unanswered_request", "modbus.unsolicited_response"} & set(anomalies(obs))


def retransmitted_differently(tmp_path, order):
    c = Conv(502).handshake()
    poll(c, 1)
    s0 = c.seq[0]
    a = mbap(2, 1, 6, b"\x00\x28\x04\xd2")       # write 1234
    b = mbap(2, 1, 6, b"\x00\x28\x00\x00")       # the same write, 0
    nxt = mbap(3, 1, 3, b"\x00\x00\x00\x02")
    if order == "inorder_then_retx":
        c.send(0, a)
        c.seq[0] = s0
        c.send(0, b)
        c.send(0, nxt)
    elif order == "ooo_then_cover":
        c.seq[0] = s0 + len(a)
        c.send(0, nxt[:4])                      # a piece held ahead of the hole
        c.seq[0] = s0
        c.send(0, a + nxt[:4].replace(b"\x00\x03", b"\x00\x09"))     # covers it with other bytes
        c.send(0, nxt[4:])
    else:                                       # two copies held out of order
        c.seq[0] = s0 + 2
        c.send(0, a[2:])
        c.seq[0] = s0 + 2
        c.send(0, b[2:])
        c.seq[0] = s0
        c.send(0, a[:2])
        c.seq[0] = s0 + len(a)
        c.send(0, nxt)
    c.send(1, a)
    c.send(1, mbap(3, 1, 3, b"\x04\x00\x01\x00\x02"))
    return write(tmp_path, c.close().pkts)


@pytest.mark.parametrize("order", ["inorder_then_retx", "ooo_then_cover", "two_ooo_copies"])
def test_overlap_with_different_data_is_reported_and_the_first_copy_wins(tmp_path, impl, order):
    obs, stats = run(retransmitted_differently(tmp_path, order), impl)
    assert anomalies(obs).count("tcp.overlap_inconsistent") == 1
    assert stats["anomaly.tcp.overlap_inconsistent"] == 1
    writes = [m for m in messages(obs) if m.kind == "modbus.write_single_register" and m.direction == "request"]
    assert len(writes) == 1 and writes[0].event.values == (1234,)        # the first copy
    reads = [m.direction for m in messages(obs) if m.kind == "modbus.read_holding_registers"]
    assert reads == ["request", "response"] * 2         # the stream stays in step after the overlap


def test_rst_payload_is_not_stream_data(tmp_path, impl):
    c = Conv(502).handshake()
    poll(c, 1)
    c.pkts.append(c._frame(0, "RA", mbap(9, 1, 6, b"\x00\x01\x00\x01")))
    obs, stats = run(write(tmp_path, c.pkts), impl)
    assert len(messages(obs)) == 2 and stats["tcp.rst_payload_ignored"] == 1
