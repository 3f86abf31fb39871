"""`otwatch baseline accept ID` learns the entry of a stored alert and closes that alert as accepted
(who and when), and a re-run of the analysis raises it no more — on the real attack-scenario capture."""
import json

import pytest
from click.testing import CliRunner
from support.attack_capture import CAPTURE, normal_part

from otwatch.sensor.alerts import store as S
from otwatch.sensor.cli import cli

RULE = "baseline.wildcard_subscription"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("OTWATCH_BASELINE", str(tmp_path / "baseline.yaml"))
    monkeypatch.setenv("OTWATCH_DB", str(tmp_path / "inventory.db"))
    runner = CliRunner()
    r = runner.invoke(cli, ["baseline", "learn", str(normal_part(tmp_path / "normal.pcap"))])
    assert r.exit_code == 0, r.output
    return runner, tmp_path


def analyze(runner, tmp_path, name):
    out = tmp_path / name
    r = runner.invoke(cli, ["analyze", str(CAPTURE), "-q", "--baseline", str(tmp_path / "baseline.yaml"),
                            "--alerts-json", str(out)])
    assert r.exit_code == 0, r.output
    return [{"rule": d["rule"]["id"], "id": d["event"]["id"]}          # the JSON lines schema (docs/alerts.md)
            for d in map(json.loads, out.read_text().splitlines())]


def stored(tmp_path, aid):
    db = S.connect(str(tmp_path / "inventory.db"), readonly=True)
    try:
        return S.get(db, aid)
    finally:
        db.close()


def test_accept_closes_the_stored_alert_and_a_rerun_does_not_raise_it(env):
    runner, tmp = env
    first = analyze(runner, tmp, "run1.jsonl")
    alert = next(a for a in first if a["rule"] == RULE)
    aid = alert["id"]
    assert stored(tmp, aid)["status"] == "open"
    # the baseline file does not remember findings of `analyze` (only `check` writes it): the store's entry is used
    r = runner.invoke(cli, ["baseline", "accept", aid[:12], "--by", "night-shift"])
    assert r.exit_code == 0, r.output
    assert "learned: pair 10.40.0.66>10.40.0.50 mqtt/1883 subscribe #" in r.output
    assert f"alert {aid} closed (accepted)" in r.output
    row = stored(tmp, aid)
    assert (row["status"], row["close_reason"], row["status_by"]) == ("closed", "accepted", "night-shift")
    assert row["status_at"].endswith("Z") and "subscribe #" in row["status_note"]
    count = row["count"]
    # a re-run: the accepted condition is normal now; the other attacks still alert
    second = analyze(runner, tmp, "run2.jsonl")
    assert RULE not in {a["rule"] for a in second}
    assert "auth.mqtt_brute_force" in {a["rule"] for a in second}      # the baseline's is folded into it
    row = stored(tmp, aid)
    assert (row["status"], row["count"]) == ("closed", count)
    # once only; the alert list says who closed it
    assert runner.invoke(cli, ["baseline", "accept", aid]).exit_code == 2
    show = runner.invoke(cli, ["alerts", "show", aid])
    assert "closed (accepted)" in show.output and "by night-shift" in show.output


def test_accept_without_a_database_and_the_default_operator(env, monkeypatch):
    runner, tmp = env
    r = runner.invoke(cli, ["baseline", "check", str(CAPTURE)])
    assert r.exit_code == 1
    aid = next(ln for ln in r.output.splitlines() if RULE in ln).split()[3]
    r = runner.invoke(cli, ["baseline", "accept", aid[:8]])         # remembered in the baseline; no database yet
    assert r.exit_code == 0 and "subscribe #" in r.output and "closed" not in r.output
    assert not (tmp / "inventory.db").exists()                    # accept never creates a database


def test_accept_an_alert_closed_as_resolved_and_hostile_operator(env, monkeypatch):
    runner, tmp = env
    aid = next(a["id"] for a in analyze(runner, tmp, "run1.jsonl") if a["rule"] == RULE)
    assert runner.invoke(cli, ["alerts", "close", aid, "--by", "x\x1b]0;owned\x07"]).exit_code == 0
    show = runner.invoke(cli, ["alerts", "show", aid]).output
    assert "\x1b" not in show and "\x07" not in show and "resolved" in show
    monkeypatch.setenv("USER", "operator1")
    monkeypatch.setenv("LOGNAME", "operator1")
    r = runner.invoke(cli, ["baseline", "accept", aid])
    assert r.exit_code == 0, r.output
    row = stored(tmp, aid)
    assert (row["status"], row["close_reason"], row["status_by"]) == ("closed", "accepted", "operator1")


def test_not_learnable(env):
    runner, tmp = env
    aid = next(a["id"] for a in analyze(runner, tmp, "run1.jsonl") if a["rule"] == "auth.mqtt_brute_force")
    r = runner.invoke(cli, ["baseline", "accept", aid])
    assert r.exit_code == 2 and "cannot" in r.output
    assert stored(tmp, aid)["status"] == "open"


def test_the_command_line_accepts_through_the_shared_steps_the_tui_uses(env, monkeypatch):
    """`otwatch baseline accept` goes through sensor/baseline/accept.py (entry_of, accept_entry), as the TUI's L
    does, and closes the stored alert as accepted."""
    from otwatch.sensor.baseline import accept as A

    calls = []
    real_entry_of, real_accept_entry = A.entry_of, A.accept_entry

    def entry_of(*a, **kw):
        calls.append("entry_of")
        return real_entry_of(*a, **kw)

    def accept_entry(*a, **kw):
        calls.append("accept_entry")
        return real_accept_entry(*a, **kw)

    monkeypatch.setattr(A, "entry_of", entry_of)
    monkeypatch.setattr(A, "accept_entry", accept_entry)
    runner, tmp = env
    aid = next(a["id"] for a in analyze(runner, tmp, "run1.jsonl") if a["rule"] == RULE)
    r = runner.invoke(cli, ["baseline", "accept", aid[:10]])
    assert r.exit_code == 0, r.output
    assert calls == ["entry_of", "accept_entry"]
    from otwatch.sensor.baseline.store import load_baseline

    assert not load_baseline(str(tmp / "baseline.yaml")).add_entry("pair 10.40.0.66>10.40.0.50 mqtt/1883 subscribe #")
    row = stored(tmp, aid)
    assert (row["status"], row["close_reason"]) == ("closed", "accepted")
