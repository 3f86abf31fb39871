"""Idle links and hosts leave the engine (ext/engine.py ``_expire_idle``), on both kernels.

At every interval flush a link no flow is bound to and a host no flow counts into are forgotten
once quiet: those of TCP handshakes without data (a flood's reported SYNs) soon, the others after
``limits.link_idle_timeout`` / ``host_idle_timeout``.  What is checked: a flood's reported SYNs
leave no link or source host behind once their flows ended, the flooded PLC stays; a link that
carried data goes after its timeout, its aggregates flushed first, and comes back as a new link
whose keys are new again; a quiet host goes after its own timeout, its traffic reported first;
every expiry is counted (``links.expired_idle``, ``hosts.expired_idle``) and none is a memory-budget
eviction (no ``memcap.evicted``); negative timeouts turn it off; compiled == pure.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import capbuild as cb
from support.tcpconv import Conv, modbus_engine_records

from otwatch import ext
from otwatch.parsers.limits import Limits
from otwatch.sensor import observations as O
from otwatch.sensor.pipeline import Pipeline, Settings

T0 = 1_700_000_000.0
PLC = "10.0.0.2"
PLC_MAC = "02:00:00:00:00:02"
ROUTER = "02:00:00:00:00:99"
TICKER_MAC = "02:00:00:00:00:77"
MBAP_READ = bytes.fromhex("000100000006010300000001")
MBAP_REPLY = bytes.fromhex("000100000005010302002a")


def syn(i: int):
    src = f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    return cb.eth(ROUTER, PLC_MAC, 0x0800, cb.ipv4(src, PLC, 6, cb.tcp(1024 + i % 60000, 502, 1000 + i, 0, "S")))


def synack(i: int):
    dst = f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    return cb.eth(PLC_MAC, ROUTER, 0x0800, cb.ipv4(PLC, dst, 6, cb.tcp(502, 1024 + i % 60000, 7000, 1001 + i, "SA")))


def tick():
    """An ARP announcement of one host: moves packet time on (sweeps, interval flushes)."""
    body = (bytes.fromhex("0001080006040001") + cb.mac(TICKER_MAC) + cb.ip("10.0.0.77")
            + bytes(6) + cb.ip("10.0.0.77"))
    return cb.eth(TICKER_MAC, "ff:ff:ff:ff:ff:ff", 0x0806, body)


def modbus_conv(cport: int) -> list:
    """A whole Modbus/TCP connection (handshake, one answered read, FIN) between 10.0.0.1 and the PLC."""
    c = Conv(502, cport=cport)
    c.handshake().send(0, MBAP_READ).send(1, MBAP_REPLY).close()
    return c.pkts


def ticks(start: float, end: float, step: float = 5.0) -> list:
    out, t = [], start
    while t < end:
        out.append((t, tick()))
        t += step
    return out


def run(tmp_path, impl, timed, limits=Limits(), finish=True):
    """(observations, stats, state sizes before finish) of the pipeline over (ts, frame) pairs."""
    path = tmp_path / "x.pcap"
    path.write_bytes(cb.pcap(sorted(timed, key=lambda x: x[0])))
    obs = []

    class C:
        def observe(self, o):
            obs.append(o)

    p = Pipeline([C()], Settings(implementation=impl, limits=limits, interval=60.0))
    p.run_file(str(path))
    sizes = p.state_sizes()
    if finish:
        p.finish()
    return obs, p.stats(), sizes


def of(obs, cls):
    return [o for o in obs if isinstance(o, cls)]


def answered_flood(n: int, t0: float = T0, first: int = 0) -> list:
    """*n* answered SYNs from distinct sources (numbered from *first*), a millisecond apart."""
    out = []
    for k in range(n):
        i = first + k
        out += [(t0 + k * 0.001, syn(i)), (t0 + k * 0.001 + 0.0005, synack(i))]
    return out


def test_a_floods_reported_handshakes_leave_no_link_or_source_host_behind(tmp_path, impl):
    # 50 answered SYNs, all reported (within the scan budget); they end after flow_new_timeout
    # (60 s, at a sweep), their links and sources go at the next flush; the PLC stays
    obs, stats, sizes = run(tmp_path, impl, answered_flood(50) + ticks(T0 + 1, T0 + 200), finish=False)
    assert [e.reason for e in of(obs, O.FlowEnd)] == ["idle"] * 50
    assert stats["links.expired_idle"] == 50 and sizes["links"] == 0 and sizes["pipeline_links"] == 0
    assert stats["hosts.expired_idle"] == 50
    assert sizes["hosts"] == 2          # the PLC (a server) and the ARP ticker
    # the PLC was seen once, and its traffic (every SYN and SYN-ACK) reported
    assert [h.ip for h in of(obs, O.HostSeen)].count(PLC) == 1
    plc = [t for t in of(obs, O.HostTraffic) if t.ip == PLC]
    assert sum(t.packets_received for t in plc) == 50 and sum(t.packets_sent for t in plc) == 50
    # every source's two packets were reported before it went
    srcs = [t for t in of(obs, O.HostTraffic) if t.ip.startswith("10.128.")]
    assert len({t.ip for t in srcs}) == 50 and sum(t.packets_sent + t.packets_received for t in srcs) == 100
    # a timeout, not a memory-budget eviction
    assert not [a for a in of(obs, O.Anomaly) if a.anomaly == "memcap.evicted"]
    assert "links.evicted" not in stats and "hosts.evicted" not in stats


def test_the_flood_leaves_the_same_state_at_two_lengths(tmp_path, impl):
    """Every minute a new wave of reported handshakes: what is held at the end does not grow with the
    number of waves (without expiry every wave's links and sources stayed)."""
    def waves(n):
        timed = []
        for w in range(n):
            timed += answered_flood(40, T0 + w * 60.0, first=w * 40)      # new sources every wave
        return timed + ticks(T0 + 1, T0 + n * 60.0 + 30)
    _, _, small = run(tmp_path, impl, waves(3), finish=False)
    _, _, large = run(tmp_path, impl, waves(9), finish=False)
    for k in ("links", "hosts", "pipeline_links", "flows"):
        assert large[k] == small[k], k
    assert large["links"] <= 2 * 40


def test_a_data_link_goes_after_link_idle_timeout_and_comes_back_new(tmp_path, impl):
    lim = Limits(link_idle_timeout=100.0, host_idle_timeout=100.0)
    first = [(T0 + i * 0.001, p) for i, p in enumerate(modbus_conv(40000))]
    again = [(T0 + 300 + i * 0.001, p) for i, p in enumerate(modbus_conv(40001))]
    obs, stats, _ = run(tmp_path, impl, first + ticks(T0 + 1, T0 + 299) + again, lim)
    seen = of(obs, O.LinkSeen)
    assert [(s.client, s.server) for s in seen] == [("10.0.0.1", PLC)] * 2
    assert seen[0].link_id != seen[1].link_id
    # its keys are new again on the new link: the read and its answer as Messages twice
    msgs = of(obs, O.Message)
    assert len(msgs) == 4 and {m.link_id for m in msgs} == {seen[0].link_id, seen[1].link_id}
    assert stats["links.expired_idle"] == 1
    # the client and the PLC went quiet for 100 s too: gone, and seen again
    assert stats["hosts.expired_idle"] == 2
    assert [h.ip for h in of(obs, O.HostSeen)].count(PLC) == 2
    # nothing was lost: both connections' packets are in the hosts' traffic
    plc = [t for t in of(obs, O.HostTraffic) if t.ip == PLC]
    assert sum(t.packets_sent + t.packets_received for t in plc) == 2 * len(modbus_conv(40000))


def test_the_default_timeouts_keep_a_data_link_and_its_hosts(tmp_path, impl):
    first = [(T0 + i * 0.001, p) for i, p in enumerate(modbus_conv(40000))]
    again = [(T0 + 300 + i * 0.001, p) for i, p in enumerate(modbus_conv(40001))]
    obs, stats, _ = run(tmp_path, impl, first + ticks(T0 + 1, T0 + 299) + again)
    assert len(of(obs, O.LinkSeen)) == 1 and len(of(obs, O.Message)) == 2
    assert "links.expired_idle" not in stats and "hosts.expired_idle" not in stats


def test_negative_timeouts_turn_expiry_off_but_for_handshake_only_state(tmp_path, impl):
    lim = Limits(link_idle_timeout=-1.0, host_idle_timeout=-1.0)
    first = [(T0 + i * 0.001, p) for i, p in enumerate(modbus_conv(40000))]
    _, stats, sizes = run(tmp_path, impl, first + ticks(T0 + 1, T0 + 5000, 50.0), lim, finish=False)
    assert "links.expired_idle" not in stats and "hosts.expired_idle" not in stats
    assert sizes["links"] == 1 and sizes["hosts"] == 3


def test_a_link_with_a_live_flow_is_not_expired(tmp_path, impl):
    lim = Limits(link_idle_timeout=10.0, host_idle_timeout=10.0)
    c = Conv(502, cport=40000)
    c.handshake().send(0, MBAP_READ).send(1, MBAP_REPLY)            # left open: the flow lives 300 s
    timed = [(T0 + i * 0.001, p) for i, p in enumerate(c.pkts)] + ticks(T0 + 1, T0 + 200)
    _, stats, sizes = run(tmp_path, impl, timed, lim, finish=False)
    assert sizes["links"] == 1 and sizes["flows"] == 1
    assert "links.expired_idle" not in stats
    assert stats.get("hosts.expired_idle", 0) == 0        # both ends count the live flow


def test_compiled_and_pure_give_the_same_observations(tmp_path):
    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    lim = Limits(link_idle_timeout=30.0, host_idle_timeout=45.0)
    timed = (answered_flood(30) + [(T0 + 5 + i * 0.001, p) for i, p in enumerate(modbus_conv(40000))]
             + [(T0 + 150 + i * 0.001, p) for i, p in enumerate(modbus_conv(40001))] + ticks(T0 + 1, T0 + 260, 7.0))
    assert run(tmp_path, "compiled", timed, lim)[:2] == run(tmp_path, "pure", timed, lim)[:2]


ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
SMALL = Limits(scan_flows_per_source=1, scan_flows_per_target=2, scan_flows_per_interval=3, max_half_open=3,
               flow_new_timeout=20.0, tcp_closed_linger=5.0, max_flows=4, link_idle_timeout=25.0,
               host_idle_timeout=40.0)


@st.composite
def traffic(draw):
    """TCP packets between a few addresses: bare SYNs, answers, resets, data, FINs, long pauses."""
    out, t = [], T0
    for _ in range(draw(st.integers(1, 40))):
        src, dst = draw(st.sampled_from(ADDRS)), draw(st.sampled_from(ADDRS))
        flags = draw(st.sampled_from(["S", "S", "SA", "A", "PA", "PA", "FA", "R"]))
        payload = draw(st.sampled_from([b"", MBAP_READ, MBAP_REPLY])) if "P" in flags else b""
        l4 = cb.tcp(draw(st.sampled_from([40000, 40001, 502])), draw(st.sampled_from([502, 40000])),
                    draw(st.sampled_from([1000, 1001, 1013])), 0, flags, payload)
        t += draw(st.sampled_from([0.001, 0.5, 12.0, 35.0]))
        out.append((t, cb.eth("02:00:00:00:00:01", PLC_MAC, 0x0800, cb.ipv4(src, dst, 6, l4))))
    return out


@pytest.mark.skipif(ext.IMPLEMENTATION != "compiled", reason="compiled kernels not built")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_compiled_equals_pure_with_expiry(pkts):
    assert modbus_engine_records(pkts, SMALL, "compiled") == modbus_engine_records(pkts, SMALL, "pure")



def test_a_scanner_whose_reported_flows_ended_keeps_its_host_while_its_records_count_into_it(tmp_path, impl):
    """One source, a bare SYN a second to a new port for 50 s: two flows are reported (the scan budget),
    the rest are half-open records counting into the scanner's host.  At the 120 s flush its reported
    flows have ended, but a record that absorbed a retransmitted SYN at 100 s still counts into it: the
    host stays until it is idle flow_new_timeout, so every record ends with its hosts in the table."""
    lim = Limits(scan_flows_per_source=2, scan_flows_per_target=2, scan_flows_per_interval=100,
                 max_half_open=1000)

    def scan_syn(port):
        return cb.eth(ROUTER, PLC_MAC, 0x0800, cb.ipv4("10.9.9.9", PLC, 6, cb.tcp(40000, port, 1000 + port, 0, "S")))

    timed = [(T0 + i, scan_syn(1 + i)) for i in range(51)] + [(T0 + 100, scan_syn(51))]
    obs, stats, _ = run(tmp_path, impl, timed + ticks(T0 + 0.5, T0 + 250), lim)
    assert stats["flows.created"] == 51 and stats.get("flows.half_open_promoted", 0) == 0
    assert len(of(obs, O.FlowStart)) == 2
    assert [h.ip for h in of(obs, O.HostSeen)].count("10.9.9.9") == 1
    assert sum(t.packets_sent for t in of(obs, O.HostTraffic) if t.ip == "10.9.9.9") == 52
    assert stats.get("scans.hosts_unreported", 0) == 0      # every record ended with both its hosts in the table
    assert stats["hosts.expired_idle"] == 1                 # the scanner, once quiet (the PLC stays)
