"""`otwatch analyze` with alerts on the demo plant: the rogue host's alerts, evidence pcaps, exit codes, stable ids,
and `otwatch alerts` over the stored result."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import dpkt
import pytest

from otwatch.sensor.alerts import store as S

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
ROGUE, PLC1 = "10.10.0.66", "10.10.0.11"
# the rogue's attack in pcaps/README.md's time-line: port scan 3119.., FC sweep 3148..3408 (+ answers), MQTT # at 3436
PORT_SCAN = range(3119, 3144)
MODBUS_ATTACK = range(3148, 3412)   # the last request (3408) and its answer


def otwatch(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "otwatch.sensor", *args], capture_output=True, env=e, timeout=300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    db, js, ev = d / "inv.db", d / "alerts.jsonl", d / "evidence"
    r = otwatch("analyze", str(DEMO), "--db", str(db), "--alerts-json", str(js), "--evidence", str(ev),
                "--fail-on", "high")
    return r, db, js, ev


def _last_records(js):
    recs = {}
    for line in js.read_text().splitlines():
        rec = json.loads(line)
        recs[rec["event"]["id"]] = rec
    return recs


def test_rogue_activity_raises_the_expected_alerts_with_evidence_inside_the_attack(run):
    r, db, js, _ = run
    assert r.returncode == 1, r.stderr.decode()          # high alerts and --fail-on high
    recs = _last_records(js)
    by_rule = {}
    for rec in recs.values():
        by_rule.setdefault(rec["rule"]["id"], []).append(rec)
    ps = [x for x in by_rule["recon.port_scan"] if x["source"]["ip"] == ROGUE]
    assert len(ps) == 1 and ps[0]["destination"]["ip"] == PLC1 and ps[0]["event"]["count"] == 11
    assert all(e["frame"] in PORT_SCAN for e in ps[0]["otwatch"]["evidence"])
    (sw,) = by_rule["recon.modbus_function_sweep"]
    assert (sw["source"]["ip"], sw["destination"]["ip"], sw["threat"]["technique"]["id"]) == (ROGUE, PLC1, ["T0888"])
    assert all(e["frame"] in MODBUS_ATTACK for e in sw["otwatch"]["evidence"])
    (ill,) = by_rule["protocol.modbus_illegal_function"]
    assert ill["source"]["ip"] == ROGUE and all(e["frame"] in MODBUS_ATTACK for e in ill["otwatch"]["evidence"])
    (wc,) = by_rule["posture.mqtt.wildcard_subscription"]
    assert [e["frame"] for e in wc["otwatch"]["evidence"]] == [3436]
    # nothing in the normal part names the rogue's activities: recon alerts come from the rogue only
    assert {x["source"]["ip"] for k, v in by_rule.items() if k.startswith("recon.") for x in v} == {ROGUE}
    out = r.stdout.decode()
    assert "Alerts: " in out and "recon.port_scan" in out


def test_evidence_pcap_holds_the_evidence_frames_and_their_flow(run, tmp_path):
    _, db, js, ev = run
    recs = _last_records(js)
    (ps,) = [x for x in recs.values() if x["rule"]["id"] == "recon.port_scan"]
    path = ev / f"high-recon.port_scan-{ps['event']['id'][:12]}.pcap"
    assert path.exists(), sorted(os.listdir(ev))
    frames = {}
    with open(DEMO, "rb") as f:
        for i, (ts, buf) in enumerate(dpkt.pcap.Reader(f), 1):
            frames[i] = buf
    got = []
    with open(path, "rb") as f:
        rd = dpkt.pcap.Reader(f)
        assert rd.datalink() == dpkt.pcap.DLT_EN10MB
        for ts, buf in rd:
            got.append(buf)
            ip = dpkt.ethernet.Ethernet(buf).data
            assert {dpkt.utils.inet_to_str(ip.src), dpkt.utils.inet_to_str(ip.dst)} == {ROGUE, PLC1}
            assert isinstance(ip.data, dpkt.tcp.TCP)
    for e in ps["otwatch"]["evidence"]:
        assert frames[e["frame"]] in got                # the very bytes of each evidence frame
    assert len(got) > len(ps["otwatch"]["evidence"])    # plus the flows' other packets (RSTs)
    (sw,) = [x for x in recs.values() if x["rule"]["id"] == "recon.modbus_function_sweep"]
    sweep = ev / f"high-recon.modbus_function_sweep-{sw['event']['id'][:12]}.pcap"
    with open(sweep, "rb") as f:
        n = sum(1 for _ in dpkt.pcap.Reader(f))
    assert 16 < n <= 16 + 256


@pytest.mark.tshark
def test_evidence_pcap_reads_in_tshark(run):
    import shutil
    if not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    _, _, js, ev = run
    (sw,) = [x for x in _last_records(js).values() if x["rule"]["id"] == "recon.modbus_function_sweep"]
    p = ev / f"high-recon.modbus_function_sweep-{sw['event']['id'][:12]}.pcap"
    out = subprocess.run(["tshark", "-r", str(p), "-Y", "mbtcp", "-T", "fields", "-e", "modbus.func_code"],
                         capture_output=True, timeout=120).stdout.decode().split()
    assert {"43", "17", "6", "1"} <= set(out)


def test_exit_codes_like_a_linter(tmp_path):
    db = str(tmp_path / "x.db")
    assert otwatch("analyze", "-q", str(DEMO), "--db", db).returncode == 0                      # --fail-on none
    assert otwatch("analyze", "-q", str(DEMO), "--db", db, "--fail-on", "critical").returncode == 0
    assert otwatch("analyze", "-q", str(DEMO), "--db", db, "--fail-on", "medium").returncode == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nzones:\n  plant: {networks: [10.10.0.0/24]}\n"
                   "detections:\n  recon.port_scan: {severity: urgent}\n")
    r = otwatch("analyze", "-q", str(DEMO), "--db", db, "--policy", str(bad))
    assert r.returncode == 2 and b"urgent" in r.stderr and b"Traceback" not in r.stderr
    r = otwatch("analyze", "-q", str(tmp_path / "missing.pcap"), "--db", db, "--fail-on", "info")
    assert r.returncode == 2
    pol = tmp_path / "p.yaml"
    # one zone for the whole plant (no policy findings); the rogue's alerts disabled or lowered to info
    pol.write_text("version: 1\nzones:\n  plant: {networks: [10.10.0.0/24]}\ndetections:\n"
                   "  recon.port_scan: {enabled: false}\n  recon.modbus_function_sweep: {enabled: false}\n"
                   "  protocol.modbus_illegal_function: {enabled: false}\n"
                   "  command.modbus_rogue_writer: {enabled: false}\n"
                   "  protocol.modbus_response_mismatch: {severity: info}\n")
    assert otwatch("analyze", "-q", str(DEMO), "--no-inventory", "--policy", str(pol),
                   "--fail-on", "low").returncode == 0
    assert otwatch("analyze", "-q", str(DEMO), "--no-inventory", "--policy", str(pol),
                   "--fail-on", "info").returncode == 1


def test_ids_are_stable_across_runs_and_statuses_survive_a_rerun(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for db in (a, b):
        assert otwatch("analyze", "-q", str(DEMO), "--db", str(db)).returncode == 0
    ids = lambda p: {r["id"]: r for r in S.query(S.connect(str(p), readonly=True), statuses=None)}  # noqa: E731
    ra, rb = ids(a), ids(b)
    assert set(ra) == set(rb) and len(ra) >= 9
    (scan,) = [i for i, r in ra.items() if r["rule"] == "recon.port_scan"]
    (sweep,) = [i for i, r in ra.items() if r["rule"] == "recon.modbus_function_sweep"]
    assert otwatch("alerts", "--db", str(a), "ack", scan[:10]).returncode == 0
    assert otwatch("alerts", "--db", str(a), "close", sweep, "--reason", "resolved").returncode == 0
    assert otwatch("analyze", "-q", str(DEMO), "--db", str(a)).returncode == 0
    again = ids(a)
    assert set(again) == set(ra)
    assert again[scan]["status"] == "acknowledged" and again[scan]["count"] == 2 * ra[scan]["count"]
    assert again[sweep]["status"] == "open" and again[sweep]["reopened"] == 1


def test_alerts_cli_lists_filters_shows_and_escapes(tmp_path):
    db = str(tmp_path / "c.db")
    otwatch("analyze", "-q", str(DEMO), "--db", db)
    r = otwatch("alerts", "--db", db, "--severity", "high")
    out = r.stdout.decode()
    assert r.returncode == 0 and "recon.port_scan" in out and "MEDIUM" not in out
    js = [json.loads(x) for x in otwatch("alerts", "--db", db, "--json").stdout.decode().splitlines()]
    assert js and all(x["event"]["kind"] == "alert" for x in js)
    assert otwatch("alerts", "--db", db, "--since", "2099-01-01T00:00:00Z").stdout.decode().startswith("0 alerts")
    (scan,) = [x for x in js if x["rule"]["id"] == "recon.port_scan"]
    show = otwatch("alerts", "--db", db, "show", scan["event"]["id"]).stdout.decode()
    assert "T0846 Remote System Discovery" in show and "frame 3119" in show
    r = otwatch("alerts", "--db", db, "show", "zz\x1b[2J")
    assert r.returncode != 0 and b"\x1b" not in r.stderr
    r = otwatch("alerts", "--db", str(tmp_path / "none.db"))
    assert r.returncode != 0 and b"no database" in r.stderr


def test_policy_file_mistakes_are_one_escaped_line_each_with_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nzones:\n  plant: {networks: [10.10.0.0/24]}\ndetections:\n"
                   "  recon.port_scan: {severity: urgent}\n"
                   "  recon.host_scan: {thresholds: {hosts: \"\\e]0;owned\\a\"}}\n"
                   "  recon.port_scan: {enabled: false}\n")
    r = otwatch("analyze", "-q", str(DEMO), "--no-inventory", "--policy", str(bad))
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    err = r.stderr.decode()
    assert "\x1b" not in err and "\x07" not in err
    lines = [ln.removeprefix("otwatch: ") for ln in err.splitlines()]
    assert any(ln.startswith(f"{bad}:5:31: ") and "urgent" in ln for ln in lines), err
    assert any(ln.startswith(f"{bad}:6:") and "threshold" in ln for ln in lines), err
    assert any(ln.startswith(f"{bad}:7:3: ") and "duplicate key" in ln for ln in lines), err


# -- configuration posture findings: inventory only by default, alerts when turned on ------------------------------

CONFIG_POSTURE_ON_DEMO = {"posture.modbus.no_authentication", "posture.mqtt.anonymous_access",
                          "posture.opcua.security_policy_none", "posture.opcua.anonymous_token",
                          "posture.opcua.cleartext_username_offered", "posture.opcua.certificate_self_signed"}
"""The configuration findings the demo plant has (its PLCs, its anonymous broker, its OPC UA server)."""
BEHAVIOUR_POSTURE_ON_DEMO = {"posture.mqtt.cleartext_credentials", "posture.opcua.cleartext_username",
                             "posture.mqtt.wildcard_subscription"}


def _rules_of(tmp_path, name, *extra):
    db, js = tmp_path / f"{name}.db", tmp_path / f"{name}.jsonl"
    r = otwatch("analyze", str(DEMO), "--db", str(db), "--alerts-json", str(js), *extra)
    assert r.returncode == 0, r.stderr.decode()
    return {rec["rule"]["id"] for rec in _last_records(js).values()}, r.stdout.decode(), db


def test_configuration_posture_findings_are_kept_in_the_inventory_not_alerted(run):
    r, db, js, _ = run
    rules = {rec["rule"]["id"] for rec in _last_records(js).values()}
    assert not rules & CONFIG_POSTURE_ON_DEMO, rules
    assert BEHAVIOUR_POSTURE_ON_DEMO <= rules                  # what a client did stays an alert
    assert "9 configuration posture findings kept in the inventory" in r.stdout.decode()
    show = otwatch("inventory", "show", "--db", str(db), PLC1)
    assert show.returncode == 0 and b"modbus.no_authentication" in show.stdout      # the finding, with evidence
    assert b"evidence: modbus.read_holding_registers frame 65 of" in show.stdout


@pytest.mark.parametrize("switch", ["flag", "policy-category", "policy-rules"])
def test_configuration_posture_findings_are_alerts_when_turned_on(tmp_path, switch):
    if switch == "flag":
        extra = ("--posture-alerts",)
    else:
        entries = (["  posture.*: {enabled: true}"] if switch == "policy-category" else
                   [f"  {r}: {{enabled: true}}" for r in sorted(CONFIG_POSTURE_ON_DEMO)])
        policy = tmp_path / "posture.yaml"
        policy.write_text("version: 1\nzones:\n  plant:\n    networks: [10.10.0.0/24]\ndetections:\n"
                          + "\n".join(entries) + "\n")
        extra = ("--policy", str(policy))
    off, _, _ = _rules_of(tmp_path, "off")
    on, out, _ = _rules_of(tmp_path, "on", *extra)
    assert on - off == CONFIG_POSTURE_ON_DEMO, (on - off)
    assert off <= on and "kept in the inventory" not in out


def test_one_rule_on_and_an_explicit_off_wins_over_the_flag(tmp_path):
    policy = tmp_path / "posture.yaml"
    policy.write_text("version: 1\nzones:\n  plant:\n    networks: [10.10.0.0/24]\ndetections:\n"
                      "  posture.mqtt.anonymous_access: {enabled: true}\n")
    one, _, _ = _rules_of(tmp_path, "one", "--policy", str(policy))
    assert one & CONFIG_POSTURE_ON_DEMO == {"posture.mqtt.anonymous_access"}
    policy.write_text("version: 1\nzones:\n  plant:\n    networks: [10.10.0.0/24]\ndetections:\n"
                      "  posture.opcua.*: {enabled: false}\n  posture.opcua.cleartext_username: {enabled: true}\n")
    most, _, _ = _rules_of(tmp_path, "most", "--policy", str(policy), "--posture-alerts")
    assert most & CONFIG_POSTURE_ON_DEMO == {"posture.modbus.no_authentication", "posture.mqtt.anonymous_access"}
    assert "posture.opcua.cleartext_username" in most            # its own entry wins over the prefix
