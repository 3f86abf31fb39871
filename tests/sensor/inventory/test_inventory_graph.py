"""`otwatch inventory graph`: one bundled edge per client → server pair, self-loops labelled in their
node, a legend, and a rendered picture whose labels do not overlap (checked on Graphviz's own layout)."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from support.capbuild import pcap
from support.minicaps import modbus_exchange

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
OTWATCH = [sys.executable, "-m", "otwatch.sensor"]
ZERO = "00:00:00:00:00:00"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz dot (tests/run.sh installs it)")


def _otwatch(args, db) -> bytes:
    r = subprocess.run(OTWATCH + args, env=dict(os.environ, OTWATCH_DB=str(db)), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


@pytest.fixture(scope="module")
def plant_db(tmp_path_factory):
    """The demo plant (a scanner hitting a PLC on a dozen ports) plus a loopback host talking to itself
    on five ports."""
    d = tmp_path_factory.mktemp("graph")
    pk, t = [], 1_800_000_000.0
    for i, port in enumerate((502, 503, 504, 505, 4840)):
        pk += modbus_exchange(ZERO, ZERO, "127.0.0.1", "127.0.0.1", 40000 + i, t, sport=port)
        t = pk[-1][0]
    loop = d / "loop.pcap"
    loop.write_bytes(pcap(pk))
    db = d / "inv.db"
    _otwatch(["analyze", "-q", str(DEMO)], db)
    _otwatch(["analyze", "-q", "--port", "modbus=503", "--port", "modbus=504", "--port", "modbus=505",
              "--port", "modbus=4840", str(loop)], db)
    return db


def _edges(dot: str) -> list[tuple[str, str, str]]:
    return re.findall(r"^  (a\d+) -> (a\d+) \[(.*)\];$", dot, re.M)


def test_parallel_edges_are_bundled_and_self_loops_labelled_in_the_node(plant_db):
    dot = _otwatch(["inventory", "graph"], plant_db).decode()
    edges = _edges(dot)
    pairs = [(a, b) for a, b, _ in edges]
    assert len(pairs) == len(set(pairs))                        # one edge per client → server pair
    scanner = re.search(r"^  (a\d+) \[label=\"10\.10\.0\.66", dot, re.M).group(1)
    plc1 = re.search(r"^  (a\d+) \[label=\"plc1", dot, re.M).group(1)
    (attrs,) = [x for a, b, x in edges if (a, b) == (scanner, plc1)]
    assert "+9 more:" in attrs and "penwidth=3.00" in attrs   # a dozen services, one thick edge
    loops = [(a, x) for a, b, x in edges if a == b]
    assert len(loops) == 1 and loops[0][1].startswith('label=""')
    node = re.search(r"^  %s \[label=\"([^\"]*)\"" % loops[0][0], dot, re.M).group(1)
    assert "to itself:\\nmodbus :502 (read)" in node and "+2 more: modbus :505, modbus :4840" in node
    assert "legend [" in dot and "3-D box" in dot and "worst posture finding" in dot
    no_legend = _otwatch(["inventory", "graph", "--no-legend"], plant_db).decode()
    assert "legend" not in no_legend


def _boxes(layout: dict) -> list[tuple[str, float, float, float, float]]:
    """(text, x0, y0, x1, y1) of every edge label line and every node, from dot's JSON layout (points)."""
    out = []
    for e in layout.get("edges", []):
        lines = [op for op in e.get("_ldraw_", []) + e.get("_xldraw_", []) if op.get("op") == "T"]
        if lines:               # one box around all the lines of one label (9 pt text)
            out.append(("edge:" + " / ".join(op["text"] for op in lines),
                        min(op["pt"][0] - op["width"] / 2 for op in lines), min(op["pt"][1] for op in lines) - 2,
                        max(op["pt"][0] + op["width"] / 2 for op in lines), max(op["pt"][1] for op in lines) + 9))
    for n in layout.get("objects", []):
        if "pos" in n and "width" in n and not n.get("nodes"):
            x, y = map(float, n["pos"].split(","))
            w, h = float(n["width"]) * 72, float(n["height"]) * 72
            out.append(("node:" + n["name"], x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    return out


@needs_dot
def test_rendered_map_has_no_overlapping_labels_and_is_a_png(plant_db, tmp_path):
    png = tmp_path / "map.png"
    _otwatch(["inventory", "graph", "--format", "png", "-o", str(png)], plant_db)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    dot = _otwatch(["inventory", "graph"], plant_db)
    layout = json.loads(subprocess.run(["dot", "-Tjson"], input=dot, capture_output=True, check=True).stdout)
    boxes = _boxes(layout)
    assert sum(1 for b in boxes if b[0].startswith("edge:")) >= 8
    clashes = []
    for i, (ta, ax0, ay0, ax1, ay1) in enumerate(boxes):
        for tb, bx0, by0, bx1, by1 in boxes[i + 1:]:
            if ta.startswith("node:") and tb.startswith("node:"):
                continue
            if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                clashes.append((ta, tb))
    assert not clashes, clashes[:5]
