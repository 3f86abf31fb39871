"""`otwatch baseline suggest-policy`: the draft from a learned baseline loads, raises no violation
on the traffic it was learned from, and flags the attacks it did not see."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.cli import cli
from otwatch.sensor.pipeline import Pipeline
from otwatch.sensor.policy import PolicyChecker, parse_policy, suggest_policy
from otwatch.sensor.policy.observed import from_baseline as seen_pairs

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = [ROOT / "pcaps" / n for n in ("demo-plant.pcap", "opcua-security.pcap", "protocol-corners.pcap.gz")]


def learned(pcap) -> Baseline:
    b = Baseline()
    p = Pipeline([Learner(b)])
    p.run_file(str(pcap))
    p.finish()
    return b


def check(text, pcap):
    sink = ListSink()
    p = Pipeline([PolicyChecker(parse_policy(text), sink)])
    p.run_file(str(pcap))
    p.finish()
    return sink.findings


@pytest.mark.parametrize("pcap", CAPTURES, ids=lambda p: p.name)
def test_draft_raises_nothing_on_what_was_learned(pcap):
    text = suggest_policy(seen_pairs(learned(pcap)))
    assert text == suggest_policy(seen_pairs(learned(pcap)))
    assert check(text, pcap) == []


def test_draft_flags_the_rogue(tmp_path):
    b = learned(CAPTURES[0])
    b.remove_entry("asset 10.10.0.66")           # as if learned before the rogue came
    findings = check(suggest_policy(seen_pairs(b)), CAPTURES[0])
    assert findings and {f.src for f in findings} == {"10.10.0.66"}


def test_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("OTWATCH_BASELINE", str(tmp_path / "b.yaml"))
    runner = CliRunner()
    assert runner.invoke(cli, ["baseline", "learn", str(CAPTURES[0])]).exit_code == 0
    out = tmp_path / "policy.yaml"
    r = runner.invoke(cli, ["baseline", "suggest-policy", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert runner.invoke(cli, ["rules", "check", str(out)]).exit_code == 0
    assert check(out.read_text(), CAPTURES[0]) == []
