"""Hours of steady plant traffic with the timing of real stacks: learned on the first half, the
second half raises nothing; the same traffic with a stopped poll, a slower poll and a burst does.

The capture is generated (tests/support/steady_plant.py) with poll delays and response times
drawn from the demo plant's real pymodbus peers.
"""
from pathlib import Path

import pytest

from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.baseline.detect import Detector
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.pipeline import Pipeline, Settings
from support.steady_plant import demo_jitter, split, steady_plant

ROOT = Path(__file__).resolve().parents[3]
HOURS = 4.0
HALF = HOURS * 1800


@pytest.fixture(scope="module")
def jitter():
    delays, rtts = demo_jitter(ROOT / "pcaps" / "demo-plant.pcap")
    assert len(delays) > 100 and len(rtts) > 100 and max(delays) > 0
    return delays, rtts


def run(tmp_path, impl, cap: bytes):
    first, second = split(cap, HALF)
    a, b2 = tmp_path / "first.pcap", tmp_path / "second.pcap"
    a.write_bytes(first)
    b2.write_bytes(second)
    b = Baseline()
    learner = Learner(b, 60.0, quiet=30, min_duration=3600.0)
    settings = Settings(interval=60.0, implementation=impl)
    pipe = Pipeline([learner], settings)
    pipe.run_file(str(a))
    pipe.finish()
    sink = ListSink()
    pipe = Pipeline([Detector(b, sink, source=str(b2))], settings)
    pipe.run_file(str(b2))
    pipe.finish()
    return b, learner, sink.findings


def test_second_half_is_quiet(tmp_path, impl, jitter):
    b, learner, findings = run(tmp_path, impl, steady_plant(HOURS, 7, jitter))
    assert findings == []
    assert learner.stable                       # nothing new after the first minutes
    assert b.learning.curve[0] > 0 and sum(b.learning.curve[5:]) == 0
    polls = {rid: st for p in b.pairs.values() for rid, st in p.timing.items() if rid.startswith("request modbus")}
    assert len(polls) == 3
    for st in polls.values():                    # a 1 s poll, learned as such, with its spread
        assert st.n >= 100 and abs(1 / st.mean - 1.0) < 0.01 and st.std > 0


def test_departures_in_the_second_half_are_found(tmp_path, impl, jitter):
    changes = {"stop_fc": (4, HALF + 1800, HALF + 2400), "slow_fc": (1, HALF + 3600, HALF + 4200, 2),
               "burst": (HALF + 5000, 300)}
    _, _, findings = run(tmp_path, impl, steady_plant(HOURS, 7, jitter, changes))
    by_rule = {}
    for f in findings:
        by_rule.setdefault(f.rule, []).append(f)
    assert set(by_rule) == {"baseline.poll_stopped", "baseline.period_changed", "baseline.rate_out_of_band"}
    t0 = 1_790_000_000.0
    # a stopped poll's evidence is the last poll seen (just before it stopped), its interval in the details
    assert all("read_input_registers" in f.details["request"] and HALF + 1790 < f.evidence.ts - t0 <= HALF + 1800
               and f.evidence.frame > 0 and HALF + 1800 < f.details["interval"][1] - t0 <= HALF + 2460
               for f in by_rule["baseline.poll_stopped"])
    # interval findings point at a message of their interval, never at frame 0
    assert all(f.evidence.frame > 0 for fs in by_rule.values() for f in fs)
    coils = [f for f in by_rule["baseline.period_changed"] if "read_coils" in f.details["request"]]
    assert coils and all(HALF + 3600 < f.evidence.ts - t0 <= HALF + 4260 for f in coils)
    # the burst also changes the temperature topic's publishing period, and nothing else does
    others = [f for f in by_rule["baseline.period_changed"] if f not in coils]
    assert others and all("plant/line1/temperature" in f.details["request"] and
                          HALF + 5000 < f.evidence.ts - t0 <= HALF + 5060 for f in others)
    assert any(HALF + 5000 < f.evidence.ts - t0 <= HALF + 5060 and f.src == "10.50.0.71"
               for f in by_rule["baseline.rate_out_of_band"])
