"""Half-open records (ext/engine.py ``_HalfOpen``, limits.max_half_open), on both kernels.

A bare SYN whose flow a scan summary holds back (past ``scan_flows_per_*``) is kept as a compact
record, not a Flow with hosts, link and scan hook, until a packet with payload or a FIN makes it
that Flow.  What is checked: a flood of them is counted (flow ids, scan summary) and held in the
record table only; nothing observable changes against the same run with records turned off
(``max_half_open=0``, every SYN a Flow as before): observations, scan summaries and alerts alike,
a held-back handshake that then carries Modbus included (decoded from its first byte, its link
seen at the SYN's frame); the record table is bounded (oldest tenth evicted, counted, reported);
records time out as flows do; compiled and pure give the same observations.
"""
from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import capbuild as cb
from support.tcpconv import Conv, modbus_engine_records

from otwatch import ext
from otwatch.parsers.limits import Limits
from otwatch.sensor import observations as O
from otwatch.sensor.alerts.analysis import OfflineAlerts
from otwatch.sensor.pipeline import Pipeline, Settings

T0 = 1_700_000_000.0
PLC = "10.0.0.2"
PLC_MAC = "02:00:00:00:00:02"
ROUTER = "02:00:00:00:00:99"
LIM = Limits(scan_flows_per_source=20, scan_flows_per_target=30, scan_flows_per_interval=200)
OFF = replace(LIM, max_half_open=0)
MBAP_READ = bytes.fromhex("000100000006010300000001")      # tid 1, unit 1, FC 3, address 0, quantity 1
MBAP_REPLY = bytes.fromhex("000100000005010302002a")


def syn(i: int):
    """A SYN from a distinct source behind a router, as a flood sends it (bench/make_hostile.py)."""
    src = f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    return cb.eth(ROUTER, PLC_MAC, 0x0800, cb.ipv4(src, PLC, 6, cb.tcp(1024 + i % 60000, 502, 1000 + i, 0, "S")))


def synack(i: int):
    dst = f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    return cb.eth(PLC_MAC, ROUTER, 0x0800, cb.ipv4(PLC, dst, 6, cb.tcp(502, 1024 + i % 60000, 7000, 1001 + i, "SA")))


def flood(n: int, answered: bool = True) -> list:
    out = []
    for i in range(n):
        out += [syn(i), synack(i)] if answered else [syn(i)]
    return out


def modbus_conv(cport: int = 40000) -> list:
    """A whole Modbus/TCP connection (handshake, one answered read, FIN) between 10.0.0.1 and the PLC."""
    c = Conv(502, cport=cport)
    c.handshake().send(0, MBAP_READ).send(1, MBAP_REPLY).close()
    return c.pkts


def run(tmp_path, impl, pkts, limits=LIM, step=0.001, finish=True, alerts=False):
    """(observations, stats, state sizes before finish[, alerts]) of the pipeline over *pkts*."""
    path = tmp_path / "x.pcap"
    path.write_bytes(cb.pcap([(T0 + i * step, p) for i, p in enumerate(pkts)]))
    obs = []

    class C:
        def observe(self, o):
            obs.append(o)

    consumers = [C()]
    book = None
    if alerts:
        book = OfflineAlerts()
        book.start_file(str(path), 0)
        consumers += book.consumers
    p = Pipeline(consumers, Settings(implementation=impl, limits=limits, interval=60.0))
    p.run_file(str(path))
    sizes = p.state_sizes()
    if finish:
        p.finish()
    if alerts:
        book.finish()
        return obs, p.stats(), sizes, [(a.rule, a.src, a.dst, a.port, a.count, a.message) for a in book.alerts()]
    return obs, p.stats(), sizes


def same_but_link_ids(a: list, b: list) -> bool:
    """*a* and *b* are the same observations but for the link ids' values (opaque numbers: a link made
    by a flow held back took one before, a record takes none), numbered here by first appearance."""
    def canon(obs):
        ids: dict = {}
        return [dataclasses.replace(o, link_id=ids.setdefault(o.link_id, len(ids))) if getattr(o, "link_id", 0) else o
                for o in obs]
    return canon(a) == canon(b)


def of(obs, cls):
    return [o for o in obs if isinstance(o, cls)]


def test_a_bare_syn_flood_is_counted_in_records_not_flows(tmp_path, impl):
    obs, stats, sizes = run(tmp_path, impl, flood(500), finish=False)
    # 30 flows reported one by one (the target's budget), 470 held back as records
    assert sizes["flows"] == 30 and sizes["half_open"] == 470
    assert stats["flows.created"] == 500 and stats["flows.half_open"] == 470
    assert sizes["hosts"] == 31 and sizes["links"] == 30 and sizes["pipeline_links"] == 30
    assert "flows.half_open_promoted" not in stats


def test_observations_scan_summaries_and_alerts_are_those_of_flows(tmp_path, impl):
    """The same flood, and a plant connection during it, with and without records: the same
    observations (the PLC's traffic counts every SYN and SYN-ACK), the same alerts."""
    pkts = flood(1200) + modbus_conv() + flood(2400)[2400:]      # dos.flow_flood: 1,024 flows
    on = run(tmp_path, impl, pkts, alerts=True)
    off = run(tmp_path, impl, pkts, limits=OFF, alerts=True)
    assert same_but_link_ids(on[0], off[0]) and on[3] == off[3]
    (s,) = of(on[0], O.ScanSummary)
    assert s.flows == 2401 and s.flows_unreported == 2371
    assert [a[0] for a in on[3]] == ["dos.flow_flood"]
    plc = [h for h in of(on[0], O.HostTraffic) if h.ip == PLC]
    assert sum(h.packets_received for h in plc) == 2400 + 5 and sum(h.packets_sent for h in plc) == 2400 + 3
    assert on[2]["half_open"] > 0 and off[2]["half_open"] == 0


def test_a_held_back_handshake_that_carries_modbus_is_decoded_from_its_first_byte(tmp_path, impl):
    """SYN, SYN-ACK and ACK of a held-back flow stay a record; its first payload makes the Flow,
    whose stream starts at the SYN's sequence number: the request and the reply are decoded, the
    link is seen at the SYN's frame; all as without records."""
    pkts = flood(40, answered=False) + modbus_conv()
    on, stats, _ = run(tmp_path, impl, pkts)
    off, _, _ = run(tmp_path, impl, pkts, limits=OFF)
    assert same_but_link_ids(on, off)
    assert stats["flows.half_open_promoted"] == 1
    msgs = of(on, O.Message)
    assert [(m.direction, m.kind) for m in msgs][:2] == [("request", "modbus.read_holding_registers"),
                                                         ("response", "modbus.read_holding_registers")]
    (seen,) = [o for o in of(on, O.LinkSeen) if o.client == "10.0.0.1"]
    assert seen.frame == 41                              # the SYN, the first packet after the flood
    assert not [a for a in of(on, O.Anomaly) if a.id.startswith("tcp.")]


def test_the_record_table_is_bounded_and_its_evictions_reported(tmp_path, impl):
    lim = replace(LIM, max_half_open=50)
    obs, stats, sizes = run(tmp_path, impl, flood(1000), limits=lim, finish=False)
    assert sizes["half_open"] <= 50
    assert stats["flows.evicted_half_open"] >= 1000 - 30 - 50
    obs, stats, _ = run(tmp_path, impl, flood(1000), limits=lim)
    (rep,) = [a for a in of(obs, O.Anomaly) if a.id == "memcap.evicted"]
    assert f"flows.evicted_half_open {stats['flows.evicted_half_open']}" in rep.detail


def test_records_time_out_as_flows_do(tmp_path, impl):
    """Idle past flow_new_timeout (or past tcp_closed_linger after a RST) a record ends, counted as
    a flow is; a SYN after a RST on the same ports is a new connection."""
    lim = replace(LIM, flow_new_timeout=5.0)
    late = cb.eth(ROUTER, PLC_MAC, 0x0800, cb.ipv4("10.9.9.9", PLC, 6, cb.tcp(9, 502, 1, 0, "S")))
    pkts = flood(100) + [late]
    _, stats, sizes = run(tmp_path, impl, pkts, limits=lim, step=0.1, finish=False)     # 20 s of packet time
    assert sizes["half_open"] < 70 and stats["flows.evicted_idle"] >= 70 - sizes["half_open"]
    reset = cb.eth(PLC_MAC, ROUTER, 0x0800, cb.ipv4(PLC, "10.128.0.99", 6, cb.tcp(502, 1024 + 99, 0, 1100, "RA")))
    again = flood(100, answered=False) + [reset, syn(99)]
    _, stats, sizes = run(tmp_path, impl, again, finish=False)
    assert stats["flows.created"] == 101 and sizes["half_open"] == 70


def test_compiled_and_pure_give_the_same_observations(tmp_path):
    pkts = flood(200) + modbus_conv() + flood(400)[400:] + flood(20, answered=False)
    lim = replace(LIM, max_half_open=60)
    assert run(tmp_path, "compiled", pkts, limits=lim)[:2] == run(tmp_path, "pure", pkts, limits=lim)[:2]


ADDRS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
TINY = replace(LIM, scan_flows_per_source=1, scan_flows_per_target=1, scan_flows_per_interval=2, max_half_open=3,
               flow_new_timeout=20.0, tcp_closed_linger=5.0, max_flows=4)


@st.composite
def handshakes(draw):
    """TCP packets between a few addresses and ports: bare SYNs, answers, resets, data, FINs."""
    out, t = [], T0
    for _ in range(draw(st.integers(1, 40))):
        src, dst = draw(st.sampled_from(ADDRS)), draw(st.sampled_from(ADDRS))
        flags = draw(st.sampled_from(["S", "S", "SA", "A", "PA", "PA", "FA", "R", "RA"]))
        payload = draw(st.sampled_from([b"", MBAP_READ, MBAP_REPLY])) if "P" in flags else b""
        l4 = cb.tcp(draw(st.sampled_from([40000, 40001, 502])), draw(st.sampled_from([502, 40000])),
                    draw(st.sampled_from([1000, 1001, 1013, 5000])), 0, flags, payload)
        t += draw(st.sampled_from([0.001, 0.5, 12.0]))
        out.append((t, cb.eth("02:00:00:00:00:01", PLC_MAC, 0x0800, cb.ipv4(src, dst, 6, l4))))
    return out


@pytest.mark.skipif(ext.IMPLEMENTATION != "compiled", reason="compiled kernels not built")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(handshakes())
def test_compiled_equals_pure_on_records_promotions_and_evictions(pkts):
    assert modbus_engine_records(pkts, TINY, "compiled") == modbus_engine_records(pkts, TINY, "pure")


def test_flows_that_never_carried_data_end_after_the_new_timeout(tmp_path, impl):
    """Suricata's tcp new timeout (limits.flow_new_timeout): a reported SYN-only flow idle 61 s ends
    (idle) without a full table; a connection that carried data waits flow_idle_timeout."""
    c = Conv(502, cport=40000)
    c.handshake().send(0, MBAP_READ).send(1, MBAP_REPLY)
    pkts = [syn(1)] + c.pkts + [syn(2)]                     # the last SYN, 70 s later, sweeps
    path = tmp_path / "x.pcap"
    path.write_bytes(cb.pcap([(T0 + i * 0.01, p) for i, p in enumerate(pkts[:-1])] + [(T0 + 70.0, pkts[-1])]))
    obs = []

    class C:
        def observe(self, o):
            obs.append(o)

    p = Pipeline([C()], Settings(implementation=impl, limits=LIM, interval=60.0))
    p.run_file(str(path))
    ends = of(obs, O.FlowEnd)
    assert [(e.flow_id, e.reason, e.packets_client) for e in ends] == [(1, "idle", 1)]
    assert p.stats()["flows.evicted_idle"] == 1
