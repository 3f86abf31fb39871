"""`otwatch rules check PATH...`: every problem as file:line:column, exit 1 on any, 0 when valid."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from otwatch.sensor.cli import cli

ROOT = Path(__file__).resolve().parents[3]


def test_valid_policy_exits_zero():
    r = CliRunner().invoke(cli, ["rules", "check", str(ROOT / "rules" / "demo-plant.yaml")])
    assert r.exit_code == 0, r.output
    assert "demo-plant.yaml: ok (5 zones, 5 conduits, 2 detection settings)" in r.output


def test_errors_listed_with_positions_and_exit_one(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nzones:\n  a: {vlans: [2]}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nzones:\n  a: {vlans: [2], vlanz: [3]}\n  a: {vlans: [4]}\n")
    r = CliRunner().invoke(cli, ["rules", "check", str(good), str(bad)])
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0].endswith("good.yaml: ok (1 zones, 0 conduits, 0 detection settings)")
    assert lines[1].startswith(f"{bad}:3:19: unknown key 'vlanz'") and lines[1].endswith("[unknown-key]")
    assert lines[2] == f"{bad}:4:3: duplicate key 'a' (first at line 3); YAML would silently keep only the " \
                       "last one [duplicate-key]"
    assert f"{bad}: 2 problems" in r.stderr


def test_terminal_escapes_in_the_file_are_not_replayed(tmp_path):
    bad = tmp_path / "esc.yaml"
    bad.write_text('version: 1\nzones:\n  a: {vlans: [2], "\\e]0;pwned\\a": 1}\n')
    r = CliRunner().invoke(cli, ["rules", "check", str(bad)])
    assert r.exit_code == 1 and "\x1b" not in r.output and "\x07" not in r.output


def test_rules_is_a_subcommand_of_the_installed_cli():
    r = subprocess.run([sys.executable, "-m", "otwatch.sensor", "rules", "check", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "file:line:column" in r.stdout


def test_suggest_writes_a_draft_that_check_accepts(tmp_path):
    out = tmp_path / "draft.yaml"
    r = CliRunner().invoke(cli, ["rules", "suggest", str(ROOT / "pcaps" / "demo-plant.pcap"), "-o", str(out),
                                 "--zones", "host", "--name", "demo draft"])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert text.startswith("# Draft segmentation policy") and 'name: "demo draft"' in text
    assert CliRunner().invoke(cli, ["rules", "check", str(out)]).exit_code == 0
    r = CliRunner().invoke(cli, ["rules", "suggest", str(tmp_path / "missing.pcap")])
    assert r.exit_code == 2 and "missing.pcap" in r.stderr
