"""Detections that the capture tests do not reach, on hand-built observations; each can fail."""
from dataclasses import replace

from otwatch.sensor import observations as O
from otwatch.sensor.baseline.rules import RULES

from .helpers import C, S, aggregate, detect, device_id, flow, learn, modbus_exception, modbus_req


def rules(findings):
    return [f.rule for f in findings]


def normal():
    return [flow(1.0, 1), modbus_req(1.1, 2), device_id(1.2, 3, "v1.0")]


def test_known_traffic_raises_nothing():
    b = learn(normal())
    assert detect(b, normal()) == []


def test_identity_changed():
    b = learn(normal())
    f = detect(b, [device_id(5.0, 9, "v2.0")])
    assert rules(f) == ["baseline.identity_changed"]
    assert f[0].details == {"attribute": "MajorMinorRevision", "value": "v2.0", "learned": "v1.0"}
    assert f[0].evidence.frame == 9


def test_unit_id_sweep_folds_new_unit_ids():
    b = learn(normal())
    obs = [modbus_req(10 + i * 0.01, 100 + i, unit=2 + i) for i in range(12)]
    r = rules(detect(b, obs, unit_sweep=8))
    assert r.count("baseline.new_unit_id") == 7 and r.count("baseline.unit_id_sweep") == 5


def test_exception_storm_and_its_threshold():
    b = learn(normal())
    obs = [modbus_exception(10 + i * 0.1, 100 + i) for i in range(25)]
    assert rules(detect(b, obs, exception_storm=20)).count("baseline.exception_storm") == 6
    slow = [modbus_exception(10 + i * 2.0, 100 + i) for i in range(25)]   # one every 2 s: not a storm
    assert detect(b, slow, exception_storm=20) == []


def test_connection_flood():
    b = learn(normal())
    obs = [flow(10 + i * 0.01, 100 + i, fid=10 + i) for i in range(150)]
    f = detect(b, obs, conn_flood=100)
    assert rules(f).count("baseline.connection_flood") == 51


def test_host_sweep_and_new_asset_burst():
    b = learn(normal())
    obs = [flow(10 + i * 0.01, 100 + i, server=f"10.0.1.{i}", fid=10 + i) for i in range(40)]
    r = rules(detect(b, obs, host_sweep=10, new_asset_burst=32))
    assert r.count("baseline.new_pair") == 9 and r.count("baseline.host_sweep") == 31
    assert r.count("baseline.new_asset") == 40       # 32 one by one, then folded into one condition


def test_new_port_on_a_known_pair():
    b = learn(normal())
    f = detect(b, [flow(10, 100, port=102, protocol="none", fid=7)])
    assert rules(f) == ["baseline.new_port"]
    assert f[0].details["entry"] == f"pair {C}>{S} tcp/102"


def test_timing_poll_stopped_period_changed_rate():
    obs = normal()
    for i in range(8):   # eight full one-minute intervals, 60 polls each
        obs += [aggregate(C, S, "modbus.read_holding_registers", "unit=1/holding_registers/0+10", 60),
                O.IntervalEnd(i * 60.0, (i + 1) * 60.0)]
    b = learn(obs)
    assert b.learning.intervals == 8
    st = next(iter(b.pairs.values())).timing["request modbus.read_holding_registers unit=1/holding_registers/0+10"]
    assert st.n == 7 and abs(1 / st.mean - 1.0) < 1e-9           # the first interval of a key is not sampled
    same = [aggregate(C, S, "modbus.read_holding_registers", "unit=1/holding_registers/0+10", 61),
            O.IntervalEnd(600.0, 660.0)]
    assert detect(b, same) == []
    stopped = detect(b, [O.IntervalEnd(600.0, 660.0)])
    assert "baseline.poll_stopped" in rules(stopped) and "baseline.rate_out_of_band" in rules(stopped)
    assert stopped[0].evidence.frame == 0 and stopped[0].evidence.ts == 660.0
    slower = detect(b, [aggregate(C, S, "modbus.read_holding_registers", "unit=1/holding_registers/0+10", 30),
                        O.IntervalEnd(600.0, 660.0)])
    assert "baseline.period_changed" in rules(slower)
    short = detect(b, [O.IntervalEnd(600.0, 610.0)])       # the capture's last, short interval: not judged
    assert short == []


def test_learning_curve_and_stop_rule():
    from otwatch.sensor.baseline.learn import Learner
    from otwatch.sensor.baseline.model import Baseline

    b = Baseline()
    L = Learner(b, 60.0, quiet=3, min_duration=200.0)
    for o in normal():
        L.observe(o)
    L.observe(O.IntervalEnd(0.0, 60.0))
    for i in range(1, 4):
        assert not L.stable
        L.observe(O.IntervalEnd(i * 60.0, (i + 1) * 60.0))
    assert b.learning.curve[0] > 0 and b.learning.curve[1:] == [0, 0, 0]
    assert L.stable                              # 3 quiet intervals, 240 s learned
    L.observe(modbus_req(250.0, 50, fc=4))       # something new: the count starts again
    L.observe(O.IntervalEnd(240.0, 300.0))
    assert not L.stable and b.learning.curve[-1] == 2     # function code 4 and its input-register coverage


def test_every_raised_rule_is_in_the_catalogue():
    import inspect

    from otwatch.sensor.baseline import detect as D

    src = inspect.getsource(D)
    import re

    used = set(re.findall(r'"(baseline\.[a-z_]+)"', src))
    assert used and used <= set(RULES)


def test_interval_findings_point_at_the_messages_of_their_interval():
    """poll_stopped, period_changed and rate_out_of_band carried frame 0; now the aggregates' frames."""
    obs = normal()
    for i in range(8):
        obs += [aggregate(C, S, "modbus.read_holding_registers", "unit=1/holding_registers/0+10", 60),
                O.IntervalEnd(i * 60.0, (i + 1) * 60.0)]
    b = learn(obs)
    poll = aggregate(C, S, "modbus.read_holding_registers", "unit=1/holding_registers/0+10", 5)
    seen = replace(poll, last_frame=4321, last_ts=659.5)
    slower = detect(b, [seen, O.IntervalEnd(600.0, 660.0)])
    assert {f.rule: f.evidence.frame for f in slower} == {"baseline.period_changed": 4321,
                                                          "baseline.rate_out_of_band": 4321}
    det_findings = detect(b, [seen, O.IntervalEnd(600.0, 660.0), O.IntervalEnd(660.0, 720.0)])
    stopped = [f for f in det_findings if f.rule == "baseline.poll_stopped"]
    assert stopped and stopped[0].evidence.frame == 4321 and stopped[0].evidence.ts == 659.5
    assert stopped[0].details["interval"] == [660.0, 720.0]
