"""``baseline.register_sweep`` is a walk outside the learned registers, not any run of reads outside them
(issue 14 leftovers, point 1): a master reading varied ranges that were not learned stays one
``baseline.read_outside_coverage`` alert per pair and table; one stepping through the addresses is a sweep."""
import random

from .helpers import detect, flow, learn, modbus_req


def normal():
    return [flow(1.0, 1), modbus_req(1.1, 2, address=0, quantity=10)]


def test_varied_reads_outside_the_learned_registers_are_no_sweep():
    b = learn(normal())
    rng = random.Random(3)
    obs = []
    for i in range(200):
        q = rng.randint(1, 125)
        obs.append(modbus_req(10 + i * 0.01, 100 + i, address=rng.randrange(100, 2000 - q), quantity=q))
    found = detect(b, obs)
    assert found and {f.rule for f in found} == {"baseline.read_outside_coverage"}
    assert len({f.alert_id for f in found}) == 1


def test_a_walk_outside_the_learned_registers_is_a_sweep():
    b = learn(normal())
    obs = [modbus_req(10 + i * 0.01, 100 + i, address=100 + 10 * i, quantity=10) for i in range(30)]
    found = detect(b, obs)
    sweeps = [f for f in found if f.rule == "baseline.register_sweep"]
    assert len(sweeps) == 30 - 15 and sweeps[0].evidence.frame == 115 and sweeps[0].details["walk"] == 1.0
    assert [f.rule for f in found[:15]] == ["baseline.read_outside_coverage"] * 15
