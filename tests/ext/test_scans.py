"""Scans and floods arrive aggregated (issue 12, point 3), on both kernels.

Per interval, past ``limits.scan_*`` budgets new flows (per source, per target, per interval)
and new message keys (per source) are not reported one by one but in one ``scan.summary`` per
scanning source or flooded target, with distinct targets/ports/units/codes, counts and first/
last frame.  The number of observations per interval stays bounded however long the attack:
counted on the adversarial captures of bench/make_hostile.py at two lengths.
"""
from __future__ import annotations

import collections
import importlib.util
from pathlib import Path

import pytest
from support import capbuild as cb
from support.tcpconv import T0

from otwatch.parsers.limits import Limits
from otwatch.sensor import jsonout
from otwatch.sensor import observations as O
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_hostile", ROOT / "bench" / "make_hostile.py")
make_hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_hostile)

SMALL = Limits(link_keys_max=256, coverage_max_runs=8, scan_flows_per_source=20, scan_flows_per_target=30,
               scan_flows_per_interval=200, scan_keys_per_source=16, scan_keys_per_interval=100, scan_tracked_max=64,
               scan_distinct_max=4096)
INTERVAL = 1.0


def run(path, impl, limits=SMALL, interval=INTERVAL):
    obs = []

    class C:
        def observe(self, o):
            obs.append(o)

    p = Pipeline([C()], Settings(implementation=impl, limits=limits, interval=interval))
    p.run_file(str(path))
    p.finish()
    return obs, p.stats()


def per_interval(obs) -> list[collections.Counter]:
    out, cur = [], collections.Counter()
    for o in obs:
        cur[o.type] += 1
        if isinstance(o, O.IntervalEnd):
            out.append(cur)
            cur = collections.Counter()
    return out


def scans(obs):
    return [o for o in obs if isinstance(o, O.ScanSummary)]


def syn(src, dst, sport, dport, smac="08:00:27:66:66:01", dmac="00:80:f4:10:00:01"):
    return cb.eth(smac, dmac, 0x0800, cb.ipv4(src, dst, 6, cb.tcp(sport, dport, 1000, 0, "S")))


def rst(src, dst, sport, dport):
    return cb.eth("00:80:f4:10:00:01", "08:00:27:66:66:01", 0x0800,
                  cb.ipv4(src, dst, 6, cb.tcp(sport, dport, 0, 1001, "RA")))


def capture(tmp_path, pkts, name="scan.pcap", step=0.001):
    f = tmp_path / name
    f.write_bytes(cb.pcap([(T0 + i * step, p) for i, p in enumerate(pkts)]))
    return f


def test_a_host_and_port_scan_is_one_summary_per_interval(tmp_path, impl):
    pkts, dsts = [], []
    for i in range(300):       # 100 hosts x 3 ports, each answered by RST
        dst, port = f"10.20.0.{1 + i // 3}", (502, 102, 44818)[i % 3]
        dsts.append(dst)
        pkts += [syn("10.10.9.66", dst, 40000 + i, port), rst(dst, "10.10.9.66", port, 40000 + i)]
    obs, stats = run(capture(tmp_path, pkts), impl)     # 0.6 s: one interval
    starts = [o for o in obs if isinstance(o, O.FlowStart)]
    ends = [o for o in obs if isinstance(o, O.FlowEnd)]
    assert len(starts) == len(ends) == SMALL.scan_flows_per_source
    (s,) = scans(obs)
    assert (s.source, s.target, s.port) == ("10.10.9.66", "", 0)
    assert s.flows == 300 and s.flows_unreported == 280
    assert s.hosts == 100 and s.ports == 3
    assert (s.first_frame, s.last_frame) == (1, 599) and s.first_ts == T0 and not s.capped
    # the held-back flows' endpoints, for the policy: the 280 distinct ones but 256 at most
    assert len(s.held_back) == 256 and s.held_back_unlisted == 280 - 256
    assert all(c == "10.10.9.66" and t == "tcp" and p in (502, 102, 44818) for c, _, t, p in s.held_back)
    # hosts first seen in held-back flows get no host.seen (the scanner and the first targets do)
    assert len([o for o in obs if isinstance(o, O.HostSeen)]) == 1 + len(set(dsts[:SMALL.scan_flows_per_source]))
    assert stats["scans.hosts_unreported"] > 0


def test_a_host_first_seen_in_a_held_back_flow_is_seen_when_it_talks_for_itself(tmp_path, impl):
    pkts = [syn("10.10.9.66", f"10.20.0.{i}", 40000 + i, 502) for i in range(1, 40)]
    pkts.append(syn("10.20.0.33", "10.10.1.11", 50000, 502))     # a target held back, now a client
    obs, _ = run(capture(tmp_path, pkts), impl)
    seen = [o for o in obs if isinstance(o, O.HostSeen) and o.ip == "10.20.0.33"]
    assert len(seen) == 1 and seen[0].frame == len(pkts)


def test_a_syn_flood_from_many_sources_is_one_target_summary(tmp_path, impl):
    cap = tmp_path / "syn.pcap"
    make_hostile.build("syn-flood", str(cap), 4000, quiet=True)
    obs, _ = run(cap, impl, interval=60.0)
    (s,) = scans(obs)
    assert (s.source, s.target, s.port) == ("", "10.10.1.11", 502)
    assert s.flows == 2000 and s.flows_unreported == 2000 - SMALL.scan_flows_per_target
    assert s.hosts == 2000 and s.first_frame == 1
    assert len([o for o in obs if isinstance(o, O.FlowStart)]) == SMALL.scan_flows_per_target
    assert len([o for o in obs if isinstance(o, O.LinkSeen)]) == SMALL.scan_flows_per_target


def test_the_interval_budget_bounds_flows_from_many_sources_to_many_targets(tmp_path, impl):
    pkts = [syn(f"10.30.{i // 250}.{i % 250 + 1}", f"10.40.{i // 250}.{i % 250 + 1}", 40000, 502)
            for i in range(500)]
    lim = Limits(scan_flows_per_interval=100, scan_tracked_max=1000)
    obs, _ = run(capture(tmp_path, pkts), impl, lim)
    assert len([o for o in obs if isinstance(o, O.FlowStart)]) == 100
    (s,) = scans(obs)
    assert (s.source, s.target, s.flows, s.flows_unreported) == ("", "", 500, 400)


def test_a_unit_id_sweep_is_summarised_past_the_key_budget(tmp_path, impl):
    cap = tmp_path / "units.pcap"
    make_hostile.build("modbus-units", str(cap), 3000, quiet=True)
    obs, _ = run(cap, impl, interval=3600.0)
    (s,) = scans(obs)
    assert s.source == "10.10.9.66" and s.protocols == ("modbus",)
    assert s.keys_unreported == s.keys - SMALL.scan_keys_per_source > 0
    assert s.units >= 255 and s.codes == 1
    requests = [o for o in obs if isinstance(o, O.Message) and o.direction == "request"]
    exceptions = [o for o in obs if isinstance(o, O.Message) and o.direction == "response"]
    # the key budget is the source's, requests and exceptions alike
    assert len(requests) + len(exceptions) <= SMALL.scan_keys_per_source + 1    # + unit 1 answering with data


@pytest.mark.parametrize("kind", ["mqtt-topics", "opcua-nodes", "modbus-registers"])
def test_protocol_sweeps_are_summarised(tmp_path, impl, kind):
    cap = tmp_path / f"{kind}.pcap"
    make_hostile.build(kind, str(cap), 3000, quiet=True)
    obs, _ = run(cap, impl, interval=3600.0)
    (s,) = scans(obs)
    assert s.keys_unreported > 0 and s.protocols == (kind.split("-")[0],)
    assert 1 <= s.first_frame <= s.last_frame


def test_without_a_budget_problem_nothing_changes(tmp_path, impl):
    """The demo plant (real peers): the default budgets hold nothing back."""
    obs, stats = run(ROOT / "pcaps" / "demo-plant.pcap", impl, Limits(), 60.0)
    assert scans(obs) == [] and stats["scans.untracked"] == 0


@pytest.mark.parametrize("kind", make_hostile.KINDS)
def test_observations_per_interval_are_bounded_at_two_sizes(tmp_path, kind):
    """The most observations in any interval is the same at two lengths of the attack (and
    below what the budgets allow): nothing grows with the file."""
    worst = []
    for n in (6000, 18000):
        cap = tmp_path / f"{kind}-{n}.pcap"
        make_hostile.build(kind, str(cap), n, quiet=True)
        obs, _ = run(cap, None, interval=0.1)
        counts = per_interval(obs)
        assert len(counts) >= 3
        # the last interval also ends every flow still in the table (end of capture): how many
        # live flows a flood leaves is the flow table's bound (limits.max_flows, evictions)
        worst.append(max(sum(c.values()) for c in counts[:-1]))
        last = counts[-1]
        assert sum(last.values()) - last["flow.end"] <= worst[-1]
        assert max(c["scan.summary"] for c in counts) <= 2 * SMALL.scan_tracked_max + 1
        assert max(c["flow.start"] for c in counts) <= SMALL.scan_flows_per_interval
    # links x cap bounds the aggregates and messages; the rest is per interval
    bound = 2 * SMALL.scan_flows_per_interval * 3 + 4 * SMALL.link_keys_max + 2 * SMALL.scan_tracked_max + 64
    assert worst[1] <= bound and worst[0] <= bound
    assert worst[1] <= worst[0] * 1.1 + 16, worst


@pytest.mark.parametrize("kind", make_hostile.KINDS)
def test_compiled_equals_pure_with_summaries(tmp_path, kind):
    from otwatch import ext
    if ext.IMPLEMENTATION != "compiled":
        pytest.skip("compiled kernels not built")
    cap = tmp_path / f"{kind}.pcap"
    make_hostile.build(kind, str(cap), 5000, quiet=True)
    a, sa = run(cap, "pure", interval=0.5)
    b, sb = run(cap, "compiled", interval=0.5)
    assert [jsonout.dumps(o) for o in a] == [jsonout.dumps(o) for o in b]
    assert sa == sb
    assert scans(a)


def test_scan_summary_json():
    s = O.ScanSummary(1.0, 2.0, "10.0.0.1", "", 0, 1.1, 3, 1.9, 99, 50, 30, 40, 2, 10, 5, 3, 2, ("modbus",), False,
                      (("10.0.0.1", "10.0.0.2", "tcp", 502),), 0)
    d = jsonout.jsonable(s)
    assert d["type"] == "scan.summary" and d["protocols"] == ["modbus"] and d["last_frame"] == 99
    assert d["held_back"] == [["10.0.0.1", "10.0.0.2", "tcp", 502]]
