"""`otwatch inventory` fits the terminal (rich), shows every column with --wide, and is tab-separated
when piped.  The terminal is simulated the way rich reads it: TTY_COMPATIBLE=1 and COLUMNS."""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
OTWATCH = [sys.executable, "-m", "otwatch.sensor"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HEADERS = ["ASSET", "IP", "NAME", "VENDOR", "CLASS", "ROLES", "IDENTITY", "FIND", "LAST SEEN (UTC)"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "inv.db"
    r = subprocess.run(OTWATCH + ["analyze", "-q", str(DEMO)], env=dict(os.environ, OTWATCH_DB=str(path)),
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return path


def _run(db, args, **env):
    e = dict(os.environ, OTWATCH_DB=str(db), **env)
    e.pop("NO_COLOR", None)
    r = subprocess.run(OTWATCH + args, env=e, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return ANSI.sub("", r.stdout), r.stderr


@pytest.mark.parametrize("width", [80, 120, 160])
def test_table_fits_the_terminal(db, width):
    out, _ = _run(db, ["inventory"], TTY_COMPATIBLE="1", COLUMNS=str(width))
    lines = out.splitlines()
    assert max(len(x) for x in lines) <= width, max(lines, key=len)
    assert len([x for x in lines if x.startswith("mac:") or x.startswith("ip:")]) == 12
    for mac in ("mac:00:80:f4:0a:00:0b", "mac:00:1b:1b:0a:00:0c"):     # asset ids never cut
        assert any(x.startswith(mac + " ") for x in lines)
    header = lines[0].split()
    assert header[:2] == ["ASSET", "IP"]
    if width < 160:
        assert "left out to fit; --wide shows all" in out


def test_wide_shows_every_column(db):
    out, _ = _run(db, ["inventory", "--wide"], TTY_COMPATIBLE="1", COLUMNS="80")
    head = out.splitlines()[0]
    assert all(h in head or h.split()[0] in head for h in HEADERS)
    assert "Modicon M340" in out and "left out" not in out


def test_piped_output_is_tab_separated_with_every_column(db):
    out, err = _run(db, ["inventory"])
    rows = [x.split("\t") for x in out.splitlines()]
    assert rows[0] == HEADERS
    assert len(rows) == 13 and all(len(r) == len(HEADERS) for r in rows)
    assert any("Schneider Electric Modicon M340 v3.20" in r for r in rows)     # nothing cut
    assert "12 assets" in err and "12 assets" not in out
