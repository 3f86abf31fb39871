"""suggest_policy: a deterministic, commented draft that loads and allows exactly what was seen."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.pipeline import Pipeline
from otwatch.sensor.policy import PolicyChecker, parse_policy, suggest_policy
from otwatch.sensor.policy.observed import PairCollector, SeenPair
from otwatch.sensor.policy.suggest import MAX_LISTED_TOPICS

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = [ROOT / "pcaps" / "demo-plant.pcap", ROOT / "pcaps" / "opcua-security.pcap",
            ROOT / "pcaps" / "protocol-corners.pcap.gz"]


def seen(pcap) -> list[SeenPair]:
    c = PairCollector()
    p = Pipeline([c])
    p.run_file(str(pcap))
    p.finish()
    return c.seen()


def check(text: str, pcap) -> list:
    sink = ListSink()
    pipe = Pipeline([PolicyChecker(parse_policy(text), sink)])
    pipe.run_file(str(pcap))
    pipe.finish()
    return sink.findings


@pytest.mark.parametrize("pcap", CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("zones", [None, "host"])
def test_draft_loads_and_raises_nothing_on_its_own_traffic(pcap, zones):
    text = suggest_policy(seen(pcap), zones=zones)
    assert check(text, pcap) == []


def test_draft_flags_what_it_did_not_see():
    """Learned without the rogue host, the draft flags the rogue's traffic (it is not a blanket allow)."""
    pairs = [p for p in seen(CAPTURES[0]) if p.client != "10.10.0.66"]
    findings = check(suggest_policy(pairs), CAPTURES[0])
    assert findings and {f.src for f in findings} == {"10.10.0.66"}
    assert {"policy.flow_denied", "policy.operation_denied"} <= {f.rule for f in findings}


def test_deterministic_whatever_the_input_order():
    pairs = seen(CAPTURES[0])
    a = suggest_policy(pairs)
    random.Random(1).shuffle(pairs)
    assert suggest_policy(pairs) == a
    assert a.startswith("# Draft segmentation policy suggested by otwatch")
    assert "# 3 pairs, " in a and "first seen 2026-" in a


def test_simple_dict_input_and_given_zones():
    pairs = [
        {"client": "10.1.0.5", "server": "10.2.0.7", "protocol": "modbus", "port": 502, "count": 42,
         "first_seen": 1_700_000_000.0, "operations": ["read", "write"], "function_codes": [3, 6, 16],
         "units": [1], "registers": {"holding_registers": [(0, 9), (10, 19), (100, 100)]}},
        {"client": "10.1.0.5", "server": "10.2.0.8", "protocol": "opcua", "port": 4840, "count": 3,
         "services": ["Read", "CreateSession"], "security_modes": ["SignAndEncrypt", "Sign"]},
        {"client": "10.3.0.9", "server": "10.2.0.9", "protocol": "mqtt", "port": 1883,
         "publish": ["a/b", "a/c"], "subscribe": ["cmd/+"]},
        {"client": "10.1.0.5", "server": "10.2.0.7", "protocol": "tcp", "port": 22},
        {"client": "10.1.0.5", "server": "10.2.0.7", "protocol": "tcp", "port": 23},
    ]
    text = suggest_policy(pairs, zones={"cell": ["10.2.0.0/24"], "ops": ["10.1.0.5"]})
    p = parse_policy(text)
    assert set(p.zones) == {"cell", "ops", "field-devices"}
    (c,) = [c for c in p.conduits if c.sources == ("ops",) and c.targets == ("cell",)]
    mb = next(r for r in c.rules if r.protocol == "modbus")
    assert mb.modbus.function_codes.spans == ((3, 3), (6, 6), (16, 16))
    assert mb.modbus.registers["holding_registers"].spans == ((0, 19), (100, 100))
    assert mb.modbus.operations == {"read", "write"} and mb.modbus.units.spans == ((1, 1),)
    ua = next(r for r in c.rules if r.protocol == "opcua")
    assert ua.opcua.services == {"Read"} and ua.opcua.min_security_mode == 2      # the weakest seen
    tcp = next(r for r in c.rules if r.protocol == "tcp")
    assert tcp.ports.spans == ((22, 23),)
    assert "# 42 flows and requests, first seen 2023-11-14T22:13:20Z: 10.1.0.5 → 10.2.0.7" in text


def test_many_topics_are_folded_and_odd_ones_unrestricted():
    names = [f"site/line{i % 7}/tag{i}" for i in range(500)]
    text = suggest_policy([SeenPair("10.0.0.1", "10.0.0.2", "mqtt", 1883, publish=set(names))])
    (r,) = parse_policy(text).conduits[0].rules
    assert len(r.mqtt.publish) <= MAX_LISTED_TOPICS and "site/line3/#" in r.mqtt.publish
    odd = suggest_policy([SeenPair("10.0.0.1", "10.0.0.2", "mqtt", 1883, publish={"a/b+c", 'x"\n#y'})])
    (r,) = parse_policy(odd).conduits[0].rules
    assert r.mqtt.publish is None and "publish not restricted" in odd
    assert 'x"' not in odd.split("zones:")[0]            # wire strings never reach a comment


def test_wire_strings_are_quoted_yaml():
    nasty = 'plant/"q"/\\/\u2028/line'
    text = suggest_policy([SeenPair("10.0.0.1", "10.0.0.2", "mqtt", 1883, publish={nasty})])
    (r,) = parse_policy(text).conduits[0].rules
    assert r.mqtt.publish == (nasty,)
    assert "\u2028" not in text


class _Key(tuple):
    pass


def _baseline_like():
    """The shape of sensor/baseline/model.py: Baseline.pairs = {PairKey: PairProfile}, read by attribute."""
    from types import SimpleNamespace as NS
    from typing import NamedTuple

    class PairKey(NamedTuple):
        client: str
        server: str
        protocol: str
        port: int

    return NS(pairs={
        PairKey("10.0.3.5", "10.0.1.5", "modbus", 502): NS(
            first_ts=1_700_000_000.0, flows=2,
            sets={"units": {1}, "function_codes": {3, 6}, "op_classes": {"read", "write"}},
            coverage={"read unit=1/holding_registers": [(0, 9)], "write unit=1/holding_registers": [(100, 101)],
                      "read unit=2/coils": [(0, 15)]}),
        PairKey("10.0.3.5", "10.0.1.5", "modbus", 5020): NS(
            first_ts=0.0, flows=1, sets={"units": {9}, "function_codes": {90}, "op_classes": {"program"}}, coverage={}),
        PairKey("10.0.3.6", "10.0.2.9", "opcua", 4840): NS(
            first_ts=0.0, flows=1, sets={"services": {"Read", "CreateSession"},
                                         "session_security": {"Sign/Basic256Sha256", "SignAndEncrypt/Basic256Sha256"}},
            coverage={}),
        PairKey("10.0.3.6", "10.0.1.5", "ip/1", 0): NS(first_ts=0.0, flows=1, sets={}, coverage={}),
        PairKey("10.0.3.6", "10.0.2.9", "mqtt", 1883): NS(
            first_ts=0.0, flows=1, sets={"publish": {"a/b"}, "subscribe": {"c/#"}}, coverage={}),
    })


def test_nothing_seen_is_an_error_not_an_invalid_draft():
    with pytest.raises(ValueError, match="nothing to draft"):
        suggest_policy([])


def test_flow_labels_other_than_the_languages_become_tcp():
    text = suggest_policy([SeenPair("10.0.0.1", "10.0.0.2", "tls", 8883, 1)])
    (r,) = parse_policy(text).conduits[0].rules
    assert r.protocol == "tcp" and r.ports.spans == ((8883, 8883),)


def test_a_learned_baseline_is_accepted_directly():
    text = suggest_policy(_baseline_like(), zones="host")
    p = parse_policy(text)
    c = next(c for c in p.conduits if c.sources == ("h10-0-3-5",))
    mb = next(r for r in c.rules if r.ports.spans == ((502, 502),))
    assert mb.modbus.registers["holding_registers"].spans == ((0, 9), (100, 101))
    assert mb.modbus.registers["coils"].spans == ((0, 15),)
    assert mb.modbus.units.spans == ((1, 1),) and mb.modbus.operations == {"read", "write"}
    c2 = next(c for c in p.conduits if c.sources == ("h10-0-3-6",) and c.targets == ("h10-0-2-9",))
    ua = next(r for r in c2.rules if r.protocol == "opcua")
    assert ua.opcua.min_security_mode == 2 and ua.opcua.services == {"Read"}
    c3 = next(c for c in p.conduits if c.targets == ("h10-0-1-5",) and c.sources == ("h10-0-3-6",))
    assert [r.protocol for r in c3.rules] == ["icmp"]


@pytest.mark.parametrize("pcap", CAPTURES, ids=lambda p: p.name)
def test_learned_by_the_baseline_the_draft_is_quiet(pcap):
    learn = pytest.importorskip("otwatch.sensor.baseline.learn")
    from otwatch.sensor.baseline.model import Baseline

    b = Baseline()
    pipe = Pipeline([learn.Learner(b)])
    pipe.run_file(str(pcap))
    pipe.finish()
    malformed = set()

    class Malformed:
        def observe(self, o):
            if o.type == "message" and getattr(o.event, "malformed", None):
                malformed.add(o.frame)

    sink = ListSink()
    pipe = Pipeline([Malformed(), PolicyChecker(parse_policy(suggest_policy(b)), sink)])
    pipe.run_file(str(pcap))
    pipe.finish()
    # the baseline does not learn malformed requests (the rogue's sweep bodies), so those alone may be flagged
    assert {f.evidence.frame for f in sink.findings} <= malformed, [f.message for f in sink.findings]
