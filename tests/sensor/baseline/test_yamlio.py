"""YAML export/import: deterministic, export -> import -> export identical, strict, escaped."""
from pathlib import Path

import pytest

from otwatch.sensor.baseline import yamlio
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.baseline.store import load_baseline, save_baseline
from otwatch.sensor.pipeline import Pipeline, Settings

PCAPS = Path(__file__).resolve().parents[3] / "pcaps"


def learned(name: str, interval: float) -> Baseline:
    b = Baseline()
    pipe = Pipeline([Learner(b, interval)], Settings(interval=interval))
    pipe.run_file(str(PCAPS / name))
    pipe.finish()
    return b


@pytest.mark.parametrize("name,interval", [("demo-plant.pcap", 5.0), ("opcua-security.pcap", 2.0),
                                           ("protocol-corners.pcap.gz", 1.0), ("attack-scenarios.pcap", 10.0)])
def test_export_import_export_identical(name, interval, tmp_path):
    b = learned(name, interval)
    text = yamlio.dump(b)
    assert yamlio.dump(learned(name, interval)) == text          # deterministic
    again = yamlio.load(text, name)
    assert yamlio.dump(again) == text
    assert again.pairs.keys() == b.pairs.keys() and again.assets.keys() == b.assets.keys()
    for pk, p in b.pairs.items():
        assert again.pairs[pk].sets == {k: v for k, v in p.sets.items() if v}
        assert again.pairs[pk].coverage == p.coverage
    # the store writes the same text and reads it back
    path = save_baseline(b, str(tmp_path / "sub" / "b.yaml"))
    assert Path(path).read_text() == text
    assert yamlio.dump(load_baseline(path)) == text


def test_wire_strings_are_escaped():
    b = learned("protocol-corners.pcap.gz", 1.0)
    text = yamlio.dump(b)
    assert "\x1b" not in text and all(ch == "\n" or 0x20 <= ord(ch) < 0x7F for ch in text)
    assert any("\x1b" in t for p in yamlio.load(text).pairs.values() for t in p.sets.get("publish", ()))


@pytest.mark.parametrize("text,needle,where", [
    ("version: 1\nbogus: 1\n", "(top).bogus: unknown key", "2:1"),
    ("version: 7\n", "unsupported version", "1:1"),
    ("version: 1\npairs:\n- pair: nonsense\n", "pairs[0].pair: not a pair", "3:3"),
    ("version: 1\npairs:\n- pair: 1.2.3.4>5.6.7.8 modbus/502\n  function_codes: [x]\n",
     "pairs[0].function_codes: expected an integer", "4:3"),
    ("version: 1\npairs:\n- pair: 1.2.3.4>5.6.7.8 modbus/502\n  coverage: {read unit=1/coils: 9-1}\n",
     "pairs[0].coverage.read unit=1/coils", "4:14"),
    ("version: 1\npairs:\n- pair: 1.2.3.4>5.6.7.8 modbus/502\n  colour: red\n", "pairs[0].colour: unknown key", "4:3"),
    ("version: 1\nlearning: {status: maybe}\n", "learning.status", "2:12"),
    ("version: 1\npending: {abc: not an entry}\n", "pending.abc", "2:11"),
    ("version: 1\nassets:\n  10.0.0.5:\n    first_seen: soon\n", "assets.10.0.0.5.first_seen: expected a number",
     "4:5"),
    ("version: 1\ninterval: -5\n", "interval: expected a positive number", "2:1"),
    ("[unclosed\n", "YAML syntax", "2:1"),
    ("version: 1\nversion: 1\n", "duplicate key 'version'", "2:1"),
    ("version: 1\nlearning: &a {status: ready}\npending: *a\n", "anchors and aliases", "2:11"),
    ("version: !!binary x\n", "YAML", "1:10"),
    ("", "empty file", "1:1"),
])
def test_import_errors(text, needle, where):
    with pytest.raises(yamlio.BaselineFormatError) as e:
        yamlio.load(text, "b.yaml")
    assert needle in str(e.value) and str(e.value).startswith(f"b.yaml:{where}: "), str(e.value)


def test_all_errors_at_once():
    with pytest.raises(yamlio.BaselineFormatError) as e:
        yamlio.load("version: 1\nbogus: 1\npairs:\n- pair: x\n- colour: 1\n", "b.yaml")
    assert len(e.value.errors) >= 3
