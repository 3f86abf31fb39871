"""IPv6 fragment reassembly (issue 11): TCP carried in non-atomic IPv6 fragments is reassembled
with the IPv4 bounds (one table, limits.ip_frag_*), then its remaining extension headers are
walked and the stream is decoded as if it had never been fragmented.

Modbus/TCP (502) and MQTT (1883) conversations over IPv6 built with scapy (``fragment6``), the
client's messages fragmented: in order, out of order, with an overlapping copy that carries other
bytes, with a lost fragment (its datagram times out; TCP sends it again), with extension headers
before and after the Fragment header.  Through the real pipeline on both kernel implementations,
compared with the same conversation unfragmented and with tshark (which reassembles IPv6 too).
"""
from __future__ import annotations

import pathlib
import struct
import sys
from dataclasses import replace

import pytest

scapy_all = pytest.importorskip("scapy.all")
from scapy.all import (IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, TCP,  # noqa: E402
                       Ether, Raw, fragment6)

from support import capbuild as cb  # noqa: E402
from support.tcpconv import (CM, SM, T0, anomalies, messages, per_frame, run, split_ipv4, tcp_frame,  # noqa: E402
                             tshark_available, tshark_frames, write)
from otwatch.parsers.limits import DEFAULT_LIMITS  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "parsers" / "mqtt"))
import mqtt_build as mb  # noqa: E402

C6, S6 = "fd00::1", "fd00::2"


def mbap(tid, unit, fc, body):
    return struct.pack(">HHHBB", tid, 0, 2 + len(body), unit, fc) + body


def modbus_talk():
    """Three Modbus exchanges whose requests are long enough to fragment: write multiple
    registers (FC 16, 20 registers), read holding registers, write multiple registers again."""
    regs = b"".join(struct.pack(">H", 1000 + i) for i in range(20))
    return [
        (0, mbap(1, 1, 16, struct.pack(">HHB", 100, 20, 40) + regs)), (1, mbap(1, 1, 16, struct.pack(">HH", 100, 20))),
        (0, mbap(2, 1, 3, struct.pack(">HH", 0, 10))), (1, mbap(2, 1, 3, bytes([20]) + bytes(range(20)))),
        (0, mbap(3, 1, 16, struct.pack(">HHB", 200, 20, 40) + regs[::-1])),
        (1, mbap(3, 1, 16, struct.pack(">HH", 200, 20))),
    ]


def mqtt_talk():
    return [(0, mb.connect(level=4, client_id="plc-gateway-7")), (1, mb.connack(0)),
            (0, mb.publish("plant/line1/temperature", b"{\"t\": 21.5, \"pad\": \"" + b"x" * 200 + b"\"}")),
            (0, mb.publish("plant/line1/pressure", b"1.013" * 30)),
            (0, mb.reason_packet(14))]


class Conv6:
    """One TCP connection fd00::1:cport -> fd00::2:sport as scapy builds it; ``pkts`` are frames.
    ``send(..., frag=...)`` fragments the segment's IPv6 packet with ``fragment6``."""

    def __init__(self, sport: int, cport: int = 40000):
        self.sport, self.cport = sport, cport
        self.seq = [1000, 5000]
        self.pkts: list[bytes] = []
        self.ident = 0x1000

    def _ip(self, side):
        if side == 0:
            return Ether(src=CM, dst=SM) / IPv6(src=C6, dst=S6)
        return Ether(src=SM, dst=CM) / IPv6(src=S6, dst=C6)

    def _tcp(self, side, flags, payload=b""):
        sp, dp = (self.cport, self.sport) if side == 0 else (self.sport, self.cport)
        t = TCP(sport=sp, dport=dp, seq=self.seq[side], ack=self.seq[1 - side], flags=flags, window=8192)
        return t / Raw(payload) if payload else t

    def handshake(self):
        self.pkts.append(bytes(self._ip(0) / TCP(sport=self.cport, dport=self.sport, seq=self.seq[0], flags="S")))
        self.seq[0] += 1
        self.pkts.append(bytes(self._ip(1) / TCP(sport=self.sport, dport=self.cport, seq=self.seq[1],
                                                 ack=self.seq[0], flags="SA")))
        self.seq[1] += 1
        self.pkts.append(bytes(self._ip(0) / self._tcp(0, "A")))
        return self

    def fragments(self, side, payload, size=80, before=(), after=()):
        """The segment as IPv6 fragments (``fragment6`` with *size*), extension headers *before*
        (unfragmentable) and *after* (fragmentable) the Fragment header."""
        self.ident += 1
        pkt = self._ip(side)
        for h in before:
            pkt = pkt / h
        pkt = pkt / IPv6ExtHdrFragment(id=self.ident)
        for h in after:
            pkt = pkt / h
        return [bytes(f) for f in fragment6(pkt / self._tcp(side, "PA", payload), size)]

    def send(self, side, payload, frag=None, **kw):
        """*frag*: None (one packet) or a function (list of fragments) -> the frames to send."""
        if frag is None:
            self.pkts.append(bytes(self._ip(side) / self._tcp(side, "PA", payload)))
        else:
            self.pkts += frag(self.fragments(side, payload, **kw))
        self.seq[side] = (self.seq[side] + len(payload)) & 0xFFFFFFFF
        return self

    def close(self):
        self.pkts.append(bytes(self._ip(0) / self._tcp(0, "FA")))
        self.seq[0] += 1
        self.pkts.append(bytes(self._ip(1) / self._tcp(1, "FA")))
        self.seq[1] += 1
        self.pkts.append(bytes(self._ip(0) / self._tcp(0, "A")))
        return self


def conversation(talk, port, frag=None, **kw):
    c = Conv6(port).handshake()
    for side, payload in talk:
        c.send(side, payload, frag if side == 0 else None, **kw)
    return c.close().pkts


def decoded(obs):
    return [(m.protocol, m.kind, m.direction, m.target) for m in messages(obs)]


TALKS = {"modbus": (modbus_talk, 502), "mqtt": (mqtt_talk, 1883)}


def clean(tmp_path, impl, proto):
    talk, port = TALKS[proto]
    obs, _ = run(write(tmp_path, conversation(talk(), port), name="clean.pcap"), impl)
    want = decoded(obs)
    assert len(want) == len(talk())
    return want


def in_order(frags):
    assert len(frags) >= 2
    return frags


def reverse(frags):
    return frags[::-1]


def middle_first(frags):
    return frags[1:2] + frags[2:] + frags[:1]


@pytest.mark.parametrize("proto", ["modbus", "mqtt"])
@pytest.mark.parametrize("order", [in_order, reverse, middle_first], ids=["in_order", "reversed", "middle_first"])
def test_tcp_in_ipv6_fragments_decodes_like_the_clean_conversation(tmp_path, impl, proto, order):
    talk, port = TALKS[proto]
    pkts = conversation(talk(), port, frag=order)
    path = write(tmp_path, pkts)
    obs, stats = run(path, impl)
    assert decoded(obs) == clean(tmp_path, impl, proto)
    n_client = sum(1 for side, _ in talk() if side == 0)
    assert stats["decode.ipv6_reassembled"] == n_client
    assert stats["decode.ipv6_fragments"] > n_client        # every request took 2 fragments or more
    assert not anomalies(obs)
    assert "decode.ipv6_fragments_dropped" not in stats and "decode.ipv6_fragments_timeout" not in stats
    assert all(m.client == C6 and m.server == S6 for m in messages(obs))
    assert not [k for k in stats if k.startswith("dispatch.rejected")]
    if tshark_available():
        assert per_frame(obs, proto) == tshark_frames(path, proto)


def test_extension_headers_before_and_after_the_fragment_header(tmp_path, impl):
    # hop-by-hop options before the Fragment header (unfragmentable: in every fragment),
    # destination options after it (fragmentable: only in the reassembled packet)
    talk, port = TALKS["modbus"]
    pkts = conversation(talk(), port, frag=reverse, before=[IPv6ExtHdrHopByHop()], after=[IPv6ExtHdrDestOpt()])
    path = write(tmp_path, pkts)
    obs, stats = run(path, impl)
    assert decoded(obs) == clean(tmp_path, impl, "modbus")
    assert stats["decode.ipv6_reassembled"] == 3
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(path, "modbus")


@pytest.mark.parametrize("proto", ["modbus", "mqtt"])
def test_overlapping_ipv6_fragments_first_copy_wins_and_are_reported(tmp_path, impl, proto):
    # each message's second fragment comes first, then a copy of it carrying other bytes (an
    # evasion: a monitor that kept the later copy would decode something else), then the rest
    def evil(frags):
        f1 = frags[1]
        hdr = 14 + 40 + 8                                  # Ethernet, IPv6, Fragment header
        forged = f1[:hdr] + bytes(b ^ 0x5A for b in f1[hdr:])
        return [f1, forged] + frags[2:] + frags[:1]
    talk, port = TALKS[proto]
    n_client = sum(1 for side, _ in talk() if side == 0)
    obs, stats = run(write(tmp_path, conversation(talk(), port, frag=evil)), impl)
    assert decoded(obs) == clean(tmp_path, impl, proto)
    assert anomalies(obs).count("ip.fragment_overlap") == n_client
    assert stats["decode.ipv6_fragment_overlaps"] == n_client
    assert stats["decode.ipv6_reassembled"] == n_client
    (a, *_) = [o for o in obs if type(o).__name__ == "Anomaly" and o.id == "ip.fragment_overlap"]
    assert "IPv6 id" in a.detail and "first copy is kept" in a.detail


def test_lost_fragment_times_out_and_the_retransmission_decodes(tmp_path, impl):
    # the second request's last fragment is lost; 40 s later (past limits.ip_frag_timeout) TCP
    # sends the segment again, fragmented anew; the stale fragments are dropped as timed out
    talk, port = TALKS["modbus"]
    c = Conv6(port).handshake()
    timed = []
    t = T0

    def emit(frames, gap=0.01):
        nonlocal t
        for f in frames:
            t += gap
            timed.append((t, f))
    emit(c.pkts)
    for i, (side, payload) in enumerate(talk()):
        if side == 1:
            c.pkts = []
            c.send(1, payload)
            emit(c.pkts)
            continue
        frags = c.fragments(0, payload)
        if i == 2:
            lost = len(frags) - 1
            emit(frags[:-1])                              # the last fragment never arrives
            t += 40.0
            frags = c.fragments(0, payload)               # TCP's retransmission, a new IPv6 id
        emit(frags)
        c.seq[0] += len(payload)
    c.pkts = []
    emit(c.close().pkts)
    f = tmp_path / "lost.pcap"
    f.write_bytes(cb.pcap(timed))
    obs, stats = run(str(f), impl)
    assert decoded(obs) == clean(tmp_path, impl, "modbus")
    assert stats["decode.ipv6_fragments_timeout"] == lost >= 1
    assert stats["decode.ipv6_reassembled"] == 3
    if tshark_available():
        assert per_frame(obs, "modbus") == tshark_frames(str(f), "modbus")


def frag6_frame(ident, off, more, data, nh=6, src=C6, dst=S6):
    """One Ethernet/IPv6 frame with a Fragment header written by hand (for what scapy will not
    build: offsets past 64 KiB, lengths that are not a multiple of 8)."""
    fh = struct.pack("!BBHI", nh, 0, off | (1 if more else 0), ident)
    return cb.eth(CM, SM, 0x86DD, cb.ipv6(src, dst, 44, fh + data))


def test_malformed_ipv6_fragments_are_counted_skips(tmp_path, impl):
    talk, port = TALKS["modbus"]
    bad = [frag6_frame(7, 65528, False, b"A" * 16),     # ends past 65,535 bytes (RFC 8200 4.5)
           frag6_frame(8, 0, True, b"B" * 12),          # not the last, not a multiple of 8
           frag6_frame(9, 0, True, b""),                # empty first fragment: held, never whole
           cb.eth(CM, SM, 0x86DD, cb.ipv6(C6, S6, 44, struct.pack("!BBHI", 6, 0, 9, 10)))[:-4]]  # header cut
    obs, stats = run(write(tmp_path, bad + conversation(talk(), port, frag=reverse)), impl)
    assert decoded(obs) == clean(tmp_path, impl, "modbus")
    assert stats["decode.ipv6_fragments_too_long"] == 1
    assert anomalies(obs).count("ip.fragment_too_long") == 1
    assert stats["decode.ipv6_fragments_bad_length"] == 1
    assert stats["decode.truncated_l3"] == 1


def test_nested_fragment_header_in_a_reassembled_packet_is_dropped(tmp_path, impl):
    # the fragmentable part of a reassembled packet starts with another Fragment header, not
    # atomic: counted and dropped (a fragment of a fragment is no packet)
    inner = struct.pack("!BBHI", 6, 0, 1, 99) + bytes(16)
    pkts = [frag6_frame(11, 8, False, inner[8:], nh=44), frag6_frame(11, 0, True, inner[:8], nh=44)]
    obs, stats = run(write(tmp_path, pkts), impl)
    assert stats["decode.ipv6_reassembled"] == 1
    assert stats["decode.ipv6_fragments_nested"] == 1
    assert stats.get("decode.tcp", 0) == 0


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_fragment_memory_stays_within_the_byte_bound(tmp_path, impl, family):
    """A flood of incomplete datagrams, and one datagram fed the same large piece over and over
    (overlaps with identical bytes are legal), hold at most limits.ip_frag_max_bytes in all; the
    oldest datagrams go first and are counted; a conversation after the flood still decodes."""
    cap = 64 * 1024
    lim = replace(DEFAULT_LIMITS, ip_frag_max_bytes=cap, ip_frag_max_datagrams=1024)
    big = bytes(1400)
    if family == "ipv6":
        flood = [frag6_frame(0x10000 + i, 0, True, big) for i in range(100)]
        flood += [frag6_frame(0x20000, 1400, True, big) for _ in range(120)]
        talk, port = TALKS["modbus"]
        after = conversation(talk(), port, frag=reverse)
    else:
        seg = tcp_frame("10.0.0.1", "10.0.0.2", 40000, 502, 1, "PA", big + bytes(64))
        flood = [split_ipv4(seg, 1400, 0x1000 + i)[0] for i in range(100)]
        first = split_ipv4(seg, 1400, 0x0FFF)[0]
        flood += [first] * 120
        after = []
    path = write(tmp_path, flood + after)
    from otwatch.sensor.pipeline import Pipeline, Settings
    from support.tcpconv import Collect

    c = Collect()
    p = Pipeline([c], Settings(implementation=impl, limits=lim, detail_all=True))
    p.run_file(path)
    sizes = p.state_sizes()
    p.finish()
    stats = p.stats()
    assert 0 < sizes["fragment_bytes"] <= cap
    assert stats[f"decode.{family}_fragments_dropped"] >= 100 * 1400 // cap
    if family == "ipv6":
        assert decoded(c.obs) == clean(tmp_path, impl, "modbus")
