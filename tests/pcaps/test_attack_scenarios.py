"""The attack-scenario capture (pcaps/make_attack_scenarios.py) proves the baseline's detections.

* Learned on the normal part (the first ``normal_fraction`` of the scenario), detection on the
  whole capture raises each attack's expected finding, with its evidence frame inside the
  attack's window (measured by the attacking role, attack-scenarios.json), and nothing else:
  every finding lies inside some attack window, none in the normal part or in the normal
  traffic that goes on around the attacks.  On both kernel implementations.
* The README's tables are what the builder generates.
* ``netns``: the builder really runs the peers (root, ``ip netns``, tcpdump, mosquitto) and a
  short fresh capture gives the same result.
"""
from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from support.veth import netns_unavailable

from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.baseline.detect import Detector
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / "pcaps"
CAPTURE = PCAPS / "attack-scenarios.pcap"
WINDOWS = PCAPS / "attack-scenarios.json"
BUILDER = PCAPS / "make_attack_scenarios.py"
MAX_BYTES = 400 * 1024

ROGUE, EWS, SCADA = "10.40.0.66", "10.40.0.31", "10.40.0.22"
PLC1, PLC2, BROKER, OPCUA = "10.40.0.11", "10.40.0.12", "10.40.0.50", "10.40.0.60"

# attack -> [(rule, {finding attribute or details key: value})]: each must be raised inside the window
EXPECTED = {
    "register_write": [("baseline.first_write", {"src": ROGUE, "dst": PLC1}),
                       ("baseline.write_outside_coverage", {"src": ROGUE, "dst": PLC1})],
    "device_identification": [("baseline.device_identification_read", {"src": ROGUE, "dst": PLC1,
                                                                        "function_code": 43})],
    "function_code_sweep": [("baseline.new_function_code", {"src": ROGUE, "dst": PLC2, "function_code": 0}),
                            ("baseline.function_code_sweep", {"src": ROGUE, "dst": PLC2})],
    "register_sweep": [("baseline.register_sweep", {"src": ROGUE, "dst": PLC1})],
    "program_download": [("baseline.program_operation", {"src": EWS, "dst": PLC1, "function_code": 90}),
                         ("baseline.program_operation", {"src": EWS, "dst": PLC1,
                                                         "umas_function": "initialize_upload"})],
    "mqtt_brute_force": [("baseline.mqtt_brute_force", {"src": ROGUE, "dst": BROKER})],
    "wildcard_subscriber": [("baseline.wildcard_subscription", {"src": ROGUE, "dst": BROKER})],
    "opcua_write": [("baseline.new_service", {"src": SCADA, "dst": OPCUA, "service": "Write", "severity": "high"}),
                    ("baseline.new_node_written", {"src": SCADA, "dst": OPCUA})],
    "opcua_security_none": [("baseline.security_downgrade", {"src": SCADA, "dst": OPCUA, "mode": "None"})],
}


def frame_times(pcap: bytes) -> list[float]:
    out, pos = [], 24
    while pos + 16 <= len(pcap):
        sec, us, incl, _ = struct.unpack_from("<IIII", pcap, pos)
        out.append(sec + us / 1e6)
        pos += 16 + incl
    return out


def prefix_before(pcap: bytes, cut: float) -> bytes:
    pos = 24
    while pos + 16 <= len(pcap):
        sec, us, incl, _ = struct.unpack_from("<IIII", pcap, pos)
        if sec + us / 1e6 >= cut:
            break
        pos += 16 + incl
    return pcap[:pos]


def learn_and_detect(capture: Path, windows: dict, impl: str, tmp_path: Path):
    cut = windows["start"] + windows["normal_fraction"] * (windows["end"] - windows["start"])
    normal = tmp_path / "normal.pcap"
    normal.write_bytes(prefix_before(capture.read_bytes(), cut))
    b = Baseline()
    settings = Settings(interval=60.0, implementation=impl)
    pipe = Pipeline([Learner(b, 60.0)], settings)
    pipe.run_file(str(normal))
    pipe.finish()
    sink = ListSink()
    pipe = Pipeline([Detector(b, sink, source=str(capture))], settings)
    pipe.run_file(str(capture))
    pipe.finish()
    return b, sink.findings, cut, normal


def _matches(f, want: dict) -> bool:
    for k, v in want.items():
        got = getattr(f, k) if k in ("src", "dst", "severity", "rule") else f.details.get(k)
        if got != v:
            return False
    return True


def check_scenario(capture: Path, windows: dict, impl: str, tmp_path: Path) -> None:
    b, findings, cut, normal = learn_and_detect(capture, windows, impl, tmp_path)
    attacks = windows["attacks"]
    assert set(attacks) == set(EXPECTED)
    times = frame_times(capture.read_bytes())
    assert b.pairs and findings
    # evidence points at a real frame with that packet time
    for f in findings:
        ev = f.evidence
        assert ev.source == str(capture)
        assert 1 <= ev.frame <= len(times), f
        assert times[ev.frame - 1] == pytest.approx(ev.ts, abs=1e-6), f
    # nothing outside the attacks: not in the normal part, not in the normal traffic around them
    def window_of(ts):
        return next((a for a, (lo, hi) in attacks.items() if lo <= ts <= hi), None)

    stray = [(f.rule, f.evidence.frame, f.message) for f in findings if window_of(f.evidence.ts) is None]
    assert not stray, stray
    assert all(f.evidence.ts >= cut for f in findings)
    # every attack raised what it should, inside its own window
    for attack, wanted in EXPECTED.items():
        inside = [f for f in findings if window_of(f.evidence.ts) == attack]
        for rule, want in wanted:
            assert any(f.rule == rule and _matches(f, want) for f in inside), (
                attack, rule, want, sorted({(f.rule, f.src, f.dst) for f in inside}))
    # the normal part alone departs from nothing
    sink = ListSink()
    pipe = Pipeline([Detector(b, sink, source=str(normal))], Settings(interval=60.0, implementation=impl))
    pipe.run_file(str(normal))
    pipe.finish()
    assert sink.findings == []


def test_committed_capture(impl, tmp_path):
    assert CAPTURE.stat().st_size <= MAX_BYTES
    check_scenario(CAPTURE, json.loads(WINDOWS.read_text()), impl, tmp_path)


def load_builder():
    if "make_attack_scenarios" in sys.modules:
        return sys.modules["make_attack_scenarios"]
    spec = importlib.util.spec_from_file_location("make_attack_scenarios", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_readme_tables_match_the_capture():
    readme = (PCAPS / "README.md").read_text()
    start = readme.index("## attack-scenarios.pcap")
    nxt = readme.find("\n## ", start + 3)
    section = readme[start:] if nxt < 0 else readme[start:nxt]
    mod = load_builder()
    assert mod.host_table() in section
    assert mod.windows_table(WINDOWS) in section


def _netns_unavailable() -> str | None:
    return netns_unavailable(("tcpdump", "mosquitto", "mosquitto_passwd"), ("asyncua", "paho.mqtt", "pymodbus"))


@pytest.mark.netns
def test_builder_fresh_capture(tmp_path):
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    prefix = f"otwatk{os.getpid()}"
    r = subprocess.run([sys.executable, str(BUILDER), "--duration", "24", "--out", str(tmp_path),
                        "--prefix", prefix], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert prefix + "-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    pcap = tmp_path / "attack-scenarios.pcap"
    from otwatch import ext

    check_scenario(pcap, json.loads((tmp_path / "attack-scenarios.json").read_text()), ext.IMPLEMENTATION, tmp_path)
