"""The engine's memory budget (limits.max_flows, max_hosts, max_links, link_keys_total): every
cap and its eviction path on both kernels, with small caps so the tests are fast.

What is checked: the table never holds more than its cap (or, for hosts and links, than the live
flows hold), idle state goes first and the oldest next, nothing evicted is lost silently (its
counters and aggregates are reported first, the eviction is counted), and one ``memcap.evicted``
anomaly a interval says so."""
from __future__ import annotations

from dataclasses import replace

from support import capbuild as cb
from support.tcpconv import SM, Collect, Conv, of, tcp_frame

from otwatch.parsers.limits import Limits
from otwatch.sensor.pipeline import Pipeline, Settings

T0 = 1_700_000_000.0
PLC = "10.0.0.2"
ROUTER = "02:00:00:00:00:99"
MBAP_READ = bytes.fromhex("000100000006010300000001")      # tid 1, unit 1, FC 3, address 0, quantity 1
MBAP_REPLY = bytes.fromhex("00010000000501030200 2a".replace(" ", ""))


def syn(i: int, dport: int = 502):
    """A SYN from a distinct source (behind a router's MAC), as a flood sends it."""
    src = f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"
    return tcp_frame(src, PLC, 1024 + i % 60000, dport, 1000 + i, "S", smac=ROUTER, dmac=SM)


def arp(i: int):
    """An ARP request from a distinct MAC and address (a host with no flow)."""
    m = f"02:00:00:01:{(i >> 8) & 255:02x}:{i & 255:02x}"
    body = (bytes.fromhex("0001080006040001") + cb.mac(m) + cb.ip(f"10.1.{(i >> 8) & 255}.{i & 255}")
            + bytes(6) + cb.ip(PLC))
    return cb.eth(m, "ff:ff:ff:ff:ff:ff", 0x0806, body)


def run(tmp_path, impl, timed_pkts, limits: Limits, interval: float = 60.0, finish: bool = True):
    """(observations, stats, state sizes before finish) of the pipeline over (ts, frame) pairs."""
    path = tmp_path / "x.pcap"
    path.write_bytes(cb.pcap(timed_pkts))
    c = Collect()
    p = Pipeline([c], Settings(implementation=impl, limits=limits, interval=interval))
    p.run_file(str(path))
    sizes = p.state_sizes()
    if finish:
        p.finish()
    return c.obs, p.stats(), sizes


def stamp(pkts, t0=T0, step=0.001):
    return [(t0 + i * step, p) for i, p in enumerate(pkts)]


def modbus_conv(cport: int, client: str = "10.0.0.1"):
    """A Modbus/TCP connection with one answered read, left open."""
    c = Conv(502, cport=cport)
    c.handshake()
    c.send(0, MBAP_READ)
    c.send(1, MBAP_REPLY)
    return c.pkts


# --- flows ------------------------------------------------------------------------------

def test_flow_cap_evicts_flows_without_data_first(tmp_path, impl):
    lim = Limits(max_flows=20)
    pkts = modbus_conv(40000) + [syn(i) for i in range(200)]
    obs, stats, sizes = run(tmp_path, impl, stamp(pkts), lim)
    assert sizes["flows"] <= lim.max_flows
    ends = of(obs, "FlowEnd")
    capped = [e for e in ends if e.reason == "cap"]
    assert len(capped) == stats["flows.evicted_cap"] > 0
    # the flow that carried data outlived 200 SYNs: evicted last, it is still there at the end
    data_flow = [e for e in ends if e.payload_client > 0]
    assert len(data_flow) == 1 and data_flow[0].reason == "end_of_capture"
    assert len(ends) == 201


def test_flow_cap_evicts_the_oldest_when_all_carried_data(tmp_path, impl):
    lim = Limits(max_flows=5)
    pkts = []
    for i in range(12):
        pkts += modbus_conv(40000 + i)
    obs, stats, sizes = run(tmp_path, impl, stamp(pkts), lim)
    capped = [e for e in of(obs, "FlowEnd") if e.reason == "cap"]
    starts = {s.flow_id: s.client_port for s in of(obs, "FlowStart")}
    assert capped and stats["flows.evicted_cap"] == len(capped)
    # oldest first: the evicted ones are the earliest connections
    assert sorted(starts[e.flow_id] for e in capped) == [40000 + i for i in range(len(capped))]


def test_flow_cap_uses_emergency_timeouts_before_evicting_by_age(tmp_path, impl):
    lim = Limits(max_flows=4)
    # one SYN every 11 s of packet time: past flow_emergency_new_timeout (10 s), well within the
    # normal idle timeout (300 s)
    obs, stats, _ = run(tmp_path, impl, stamp([syn(i) for i in range(10)], step=11.0), lim, interval=1000.0)
    assert stats["flows.evicted_emergency"] > 0
    assert "flows.evicted_cap" not in stats and "flows.evicted_idle" not in stats
    reasons = [e.reason for e in of(obs, "FlowEnd")]
    assert reasons.count("idle") == stats["flows.evicted_emergency"]
    assert set(reasons) == {"idle", "end_of_capture"}


def test_a_syn_only_flow_on_an_ot_port_has_no_kernel(tmp_path, impl):
    pkts = [syn(i) for i in range(50)] + modbus_conv(40000)
    obs, stats, sizes = run(tmp_path, impl, stamp(pkts), Limits())
    assert sizes["flows"] == 51 and sizes["kernels"] == 1
    # the link is still named at the SYN (FlowStart says modbus and its link)
    starts = of(obs, "FlowStart")
    assert all(s.protocol == "modbus" and s.link_id > 0 for s in starts)
    assert len(of(obs, "Message")) >= 1


# --- hosts ------------------------------------------------------------------------------

def test_host_cap_evicts_idle_hosts_oldest_first_and_reports_their_traffic(tmp_path, impl):
    lim = Limits(max_hosts=30)
    obs, stats, sizes = run(tmp_path, impl, stamp([arp(i) for i in range(100)]), lim, finish=False)
    assert sizes["hosts"] <= lim.max_hosts
    assert stats["hosts.evicted"] >= 70
    # every evicted host's packet was reported (HostTraffic) before it was forgotten
    traffic = of(obs, "HostTraffic")
    assert len(traffic) == stats["hosts.evicted"]
    assert all(t.packets_sent == 1 for t in traffic)
    evicted_ips = [t.ip for t in traffic]
    assert evicted_ips[:3] == ["10.1.0.0", "10.1.0.1", "10.1.0.2"]      # the oldest went first


def test_hosts_of_live_flows_are_not_evicted(tmp_path, impl):
    lim = Limits(max_hosts=10, max_flows=1000)
    obs, stats, sizes = run(tmp_path, impl, stamp([syn(i) for i in range(60)]), lim)
    assert "hosts.evicted" not in stats
    assert stats["hosts.over_cap"] >= 1
    assert sizes["hosts"] == 61       # 60 sources + the PLC: held by their flows
    # and the table is looked at again only after it grew by a tenth of the cap, not per host
    assert stats["hosts.over_cap"] <= 60


# --- links ------------------------------------------------------------------------------

def closed_modbus(cport: int, client: str):
    c = Conv(502, cport=cport)
    c.handshake()
    c.send(0, MBAP_READ)
    c.send(1, MBAP_REPLY)
    c.close()
    return [p.replace(cb.ip("10.0.0.1"), cb.ip(client)) for p in c.pkts]


def test_link_cap_evicts_idle_links_after_flushing_their_aggregates(tmp_path, impl):
    lim = Limits(max_links=4)
    pkts = []
    for i in range(10):
        pkts += closed_modbus(40000 + i, f"10.0.1.{i + 1}")
    # closed flows end after tcp_closed_linger (5 s): space the links out
    timed = []
    for i in range(10):
        timed += stamp(pkts[i * 10:(i + 1) * 10], t0=T0 + i * 10.0)
    obs, stats, sizes = run(tmp_path, impl, timed, lim, finish=False)
    assert stats["links.evicted"] > 0
    assert sizes["links"] <= lim.max_links and sizes["pipeline_links"] == sizes["links"]
    # the evicted links' requests were counted in Aggregates before they were forgotten
    evicted_lids = {s.link_id for s in of(obs, "LinkSeen")} - set()
    aggs = of(obs, "Aggregate")
    assert {a.link_id for a in aggs if a.direction == "request"} >= set(sorted(evicted_lids)[:stats["links.evicted"]])


def test_a_link_seen_again_after_eviction_is_a_new_link(tmp_path, impl):
    lim = Limits(max_links=2)
    a = closed_modbus(40000, "10.0.1.1")
    b = closed_modbus(40001, "10.0.1.2")
    c = closed_modbus(40002, "10.0.1.3")
    a2 = closed_modbus(40003, "10.0.1.1")
    timed = stamp(a, T0) + stamp(b, T0 + 10) + stamp(c, T0 + 20) + stamp(a2, T0 + 30)
    obs, stats, _ = run(tmp_path, impl, timed, lim)
    seen = [(x.client, x.link_id) for x in of(obs, "LinkSeen")]
    assert [cl for cl, _ in seen] == ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.1"]
    assert len({lid for _, lid in seen}) == 4
    assert stats["links.evicted"] >= 1


def test_link_keys_total_evicts_idle_links_at_the_interval(tmp_path, impl):
    lim = Limits(link_keys_total=6)
    timed = []
    for i in range(8):        # each link: one request key and one response key
        timed += stamp(closed_modbus(40000 + i, f"10.0.1.{i + 1}"), T0 + i * 10.0)
    obs, stats, sizes = run(tmp_path, impl, timed, lim, interval=15.0, finish=False)
    assert stats["links.evicted_keys"] > 0
    # the cap, plus the keys of links still bound to a lingering flow or made since the last flush
    # (at most three here); 8 links without the cap would hold 16
    assert sizes["keys"] <= lim.link_keys_total + 3 * 2


# --- reassembly -------------------------------------------------------------------------

def held_behind_a_hole(cport: int, held: int = 2):
    """A Modbus/TCP connection whose client loses one segment, then sends *held* segments that
    the engine must keep out of order (192 bytes each), left open."""
    c = Conv(502, cport=cport)
    c.handshake()
    c.send(0, MBAP_READ)
    c.seq[0] += len(MBAP_READ)          # lost on the way: a hole
    for _ in range(held):
        c.send(0, MBAP_READ * 16)
    return c.pkts


def test_reassembly_total_bounds_what_all_flows_hold(tmp_path, impl):
    per_flow = 2 * (192 + 128)          # two held segments, each with its counted overhead
    pkts = []
    for i in range(30):
        pkts += held_behind_a_hole(40000 + i)
    # without a global bound every flow keeps its two segments
    _, stats, sizes = run(tmp_path, impl, stamp(pkts), Limits(), finish=False)
    assert sizes["reassembly_held"] == 30 * per_flow and sizes["reassembly_bytes"] == 30 * 2 * 192
    assert "reassembly.memcap_drains" not in stats
    lim = Limits(reassembly_total_bytes=5 * per_flow)
    obs, stats, sizes = run(tmp_path, impl, stamp(pkts), lim, finish=False)
    assert sizes["reassembly_held"] <= lim.reassembly_total_bytes
    assert 20 <= stats["reassembly.memcap_drains"] <= 30
    # the flows that gave up their segments declared the hole a gap and delivered what they held
    assert stats["reassembly.gap_bytes"] == stats["reassembly.memcap_drains"] * len(MBAP_READ)
    # and the accounting comes back to nothing when the flows end
    c = Collect()
    p = Pipeline([c], Settings(implementation=impl, limits=lim))
    p.run_file(str(tmp_path / "x.pcap"))
    p.finish()
    assert p.state_sizes()["reassembly_held"] == 0
    reports = [a for a in of(c.obs, "Anomaly") if a.id == "memcap.evicted"]
    assert reports and "reassembly.memcap_drains" in reports[0].detail


# --- reporting --------------------------------------------------------------------------

def test_evictions_are_reported_once_per_interval(tmp_path, impl):
    lim = Limits(max_flows=10)
    # 3 intervals of 10 s, 300 SYNs in each
    timed = []
    for k in range(3):
        timed += stamp([syn(k * 300 + i) for i in range(300)], t0=T0 + k * 10.0, step=0.01)
    obs, stats, _ = run(tmp_path, impl, timed, lim, interval=10.0)
    reports = [a for a in of(obs, "Anomaly") if a.id == "memcap.evicted"]
    intervals = of(obs, "IntervalEnd")
    assert 3 <= len(reports) <= len(intervals)
    assert stats["anomaly.memcap.evicted"] == len(reports)
    assert all("flows.evicted_cap" in a.detail for a in reports)
    total = sum(int(a.detail.split("flows.evicted_cap ")[1].split(",")[0].split(" ")[0]) for a in reports)
    assert total == stats["flows.evicted_cap"]


def test_state_stays_bounded_as_a_flood_grows(tmp_path, impl):
    """The RSS-ish bound: what the engine and pipeline hold after a flood of 2,000 and of 8,000
    new sources is the same (capped), not four times more."""
    lim = Limits(max_flows=200, max_hosts=500, max_links=250, link_keys_total=400)
    sizes = []
    for n in (2000, 8000):
        pkts = modbus_conv(40000) + [syn(i) for i in range(n)]
        _, _, s = run(tmp_path, impl, stamp(pkts), lim, finish=False)
        sizes.append(s)
    small, big = sizes
    for k in ("flows", "hosts", "links", "pipeline_links", "pipeline_flows"):
        assert big[k] <= max(small[k] * 1.1, 1), (k, small, big)
    assert big["flows"] <= lim.max_flows and big["links"] <= lim.max_links
    assert big["hosts"] <= lim.max_hosts and big["kernels"] <= 1


def test_default_limits_are_unchanged_for_a_plant(tmp_path, impl):
    """Nothing is evicted for ordinary traffic: the budget only bites at its caps."""
    pkts = []
    for i in range(5):
        pkts += modbus_conv(40000 + i)
    _, stats, _ = run(tmp_path, impl, stamp(pkts), replace(Limits(), max_flows=100))
    assert not [k for k in stats if "evicted" in k or "over_cap" in k]


def test_python_side_caches_are_sized_from_the_budget(tmp_path, impl):
    """The pipeline's address-text cache holds at most max_hosts addresses and its describe cache
    at most link_keys_total keys (the budget's per-host and per-key costs count them)."""
    lim = Limits(max_hosts=40, max_flows=20, max_links=30, link_keys_total=3)
    pkts = []
    for i in range(6):
        pkts += closed_modbus(40000 + i, f"10.0.1.{i + 1}")
        pkts += [tcp_frame("10.0.1.1", PLC, 41000 + i, 502, 1, "PA",
                           bytes.fromhex("%04x000000060103%04x0001" % (i + 2, 100 * i)))]
    pkts += [syn(i) for i in range(300)]
    _, _, sizes = run(tmp_path, impl, stamp(pkts), lim, finish=False)
    assert 0 < sizes["ip_cache"] <= lim.max_hosts
    assert 0 < sizes["describe_cache"] <= lim.link_keys_total
    # and with room, the same run remembers more of both
    _, _, roomy = run(tmp_path, impl, stamp(pkts), Limits(), finish=False)
    assert roomy["ip_cache"] > lim.max_hosts and roomy["describe_cache"] > lim.link_keys_total
