"""`otwatch baseline ...` end to end on the attack-scenario capture (CliRunner, a temporary store)."""
import json

import pytest
from click.testing import CliRunner
from support.attack_capture import CAPTURE, normal_part

from otwatch.sensor.cli import cli


@pytest.fixture
def env(tmp_path, monkeypatch):
    normal = normal_part(tmp_path / "normal.pcap")
    store = tmp_path / "store" / "baseline.yaml"
    monkeypatch.setenv("OTWATCH_BASELINE", str(store))
    monkeypatch.setenv("OTWATCH_DB", str(tmp_path / "inventory.db"))
    return CliRunner(), normal, store, tmp_path


def test_learn_status_check_accept_unlearn(env):
    runner, normal, store, tmp = env
    r = runner.invoke(cli, ["baseline", "learn", str(normal)])
    assert r.exit_code == 0, r.output
    assert store.is_file() and "pairs" in r.output
    r = runner.invoke(cli, ["baseline", "status", "--json"])
    info = json.loads(r.output)
    assert info["status"] == "ready" and info["pairs"] == 6 and info["sources"] == [str(normal)]
    assert "new entries per interval" in runner.invoke(cli, ["baseline", "status"]).output
    # nothing departs in the normal part; the attacks do
    assert runner.invoke(cli, ["baseline", "check", str(normal)]).exit_code == 0
    r = runner.invoke(cli, ["baseline", "check", str(CAPTURE)])
    assert r.exit_code == 1
    line = next(ln for ln in r.output.splitlines() if "baseline.wildcard_subscription" in ln)
    alert_id = line.split()[3]
    r = runner.invoke(cli, ["baseline", "accept", alert_id])
    assert r.exit_code == 0 and "subscribe #" in r.output
    r = runner.invoke(cli, ["baseline", "check", str(CAPTURE)])
    assert "baseline.wildcard_subscription" not in r.output and "baseline.mqtt_brute_force" in r.output
    assert runner.invoke(cli, ["baseline", "accept", alert_id]).exit_code == 2       # once only
    entry = "pair 10.40.0.66>10.40.0.50 mqtt/1883 subscribe #"
    assert runner.invoke(cli, ["baseline", "unlearn", entry]).exit_code == 0
    assert runner.invoke(cli, ["baseline", "unlearn", entry]).exit_code == 2
    assert runner.invoke(cli, ["baseline", "unlearn", "pair nonsense"]).exit_code == 2
    r = runner.invoke(cli, ["baseline", "check", str(CAPTURE)])
    assert "baseline.wildcard_subscription" in r.output


def test_export_import_diff(env):
    runner, normal, store, tmp = env
    assert runner.invoke(cli, ["baseline", "learn", str(normal)]).exit_code == 0
    out = tmp / "b.yaml"
    assert runner.invoke(cli, ["baseline", "export", "-o", str(out)]).exit_code == 0
    text = out.read_text()
    assert runner.invoke(cli, ["baseline", "import", str(out)]).exit_code == 0
    assert runner.invoke(cli, ["baseline", "export"]).output == text
    bad = tmp / "bad.yaml"
    bad.write_text("version: 1\nbogus: 2\npairs: 3\n")
    r = runner.invoke(cli, ["baseline", "import", str(bad)])
    assert r.exit_code == 2 and "bogus" in r.output and "pairs" in r.output
    assert runner.invoke(cli, ["baseline", "export"]).output == text              # unchanged by a bad import
    # diff: a baseline against a capture of the same normal traffic, then against the attacks
    r = runner.invoke(cli, ["baseline", "diff", str(out), str(normal)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["baseline", "diff", str(out), str(CAPTURE)])
    assert r.exit_code == 1
    assert "+ asset 10.40.0.66" in r.output and "+ pair 10.40.0.22>10.40.0.60 opcua/4840 services Write" in r.output
    assert not any(ln.startswith("- ") for ln in r.output.splitlines())


def test_errors(env):
    runner, normal, store, tmp = env
    assert runner.invoke(cli, ["baseline", "status"]).exit_code == 2          # nothing learned yet
    r = runner.invoke(cli, ["baseline", "learn", str(tmp / "missing.pcap")])
    assert r.exit_code == 2
    assert runner.invoke(cli, ["baseline", "learn", str(normal), "--interval", "0"]).exit_code == 2
