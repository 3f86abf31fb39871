"""The communication map (GRASSMARLIN's logical view) as Graphviz DOT.

``to_dot(snapshot) -> str``: one node per asset, labelled with its name or
address, device class, roles and the best identity string; one edge per
(client → server, protocol) with the operations seen and the message count;
assets with a policy zone are drawn inside a cluster per zone.
``to_svg(dot_text)`` runs Graphviz ``dot`` and raises ``DotMissing`` when it is
not installed.

Every attacker-controlled string goes through ``parsers.common.escape`` and
then DOT string quoting, so a device name cannot break out of its label.
"""
from __future__ import annotations

import shutil
import subprocess

from otwatch.parsers.common import escape

from .summary import best_name, identity_line, by_asset

CLASS_SHAPES = {"plc": "box3d", "hmi/scada": "component", "engineering workstation": "tab",
                "historian": "cylinder", "gateway": "hexagon", "broker": "doubleoctagon",
                "server": "box", "field device": "ellipse", "scanner": "octagon", "unknown": "ellipse"}
SEVERITY_COLOURS = {"high": "#d62728", "medium": "#ff7f0e", "low": "#bcbd22"}


class DotMissing(RuntimeError):
    pass


def _q(text: str) -> str:
    """A DOT double-quoted string of *text*, already terminal-safe."""
    return '"' + escape(text, 120).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lines(*parts: str) -> str:
    body = "\\n".join(escape(p, 80).replace("\\", "\\\\").replace('"', '\\"') for p in parts if p)
    return '"' + body + '"'


def to_dot(snap: dict) -> str:
    kids = by_asset(snap)
    ids = {a["asset_id"]: f"a{i}" for i, a in enumerate(snap["assets"])}
    out = ["digraph otwatch {", '  graph [rankdir=LR, fontname="Helvetica", label="otwatch communication map"];',
           '  node [fontname="Helvetica", fontsize=10, style=filled, fillcolor="#f4f4f4"];',
           '  edge [fontname="Helvetica", fontsize=9];']
    zones: dict[str, list[str]] = {}
    for a in snap["assets"]:
        k = kids[a["asset_id"]]
        roles = ", ".join(sorted(r["role"] for r in k["roles"]))
        worst = next((s for s in ("high", "medium", "low") if any(f["severity"] == s for f in k["findings"])), "")
        node = (f'  {ids[a["asset_id"]]} [label={_lines(best_name(a, k), a["ip"] or a["mac"], a["device_class"], roles, identity_line(k))}, '
                f'shape={CLASS_SHAPES.get(a["device_class"], "ellipse")}'
                + (f', color="{SEVERITY_COLOURS[worst]}", penwidth=2' if worst else "") + "];")
        zones.setdefault(a.get("zone") or "", []).append(node)
    for zone, nodes in sorted(zones.items()):
        if zone:
            out.append(f"  subgraph cluster_{len(out)} {{ label={_q('zone ' + zone)}; style=dashed;")
            out += ["  " + n for n in nodes]
            out.append("  }")
        else:
            out += nodes
    for a in snap["assets"]:
        for p in kids[a["asset_id"]]["peers"]:
            if p["direction"] != "client" or p["peer_id"] not in ids:
                continue
            ops = {k: v for k, v in (p["ops"] or {}).items() if k != "flows"}
            opstr = ", ".join(f"{k}" for k in sorted(ops)) if ops else f"{p['ops'].get('flows', 0)} flows"
            label = f"{p['protocol']}" + (f" :{p['port']}" if p["protocol"] in ("modbus", "mqtt", "opcua") else "")
            style = "" if p["protocol"] in ("modbus", "mqtt", "opcua") else ", style=dashed, color=gray50"
            out.append(f'  {ids[a["asset_id"]]} -> {ids[p["peer_id"]]} [label={_lines(label, opstr)}{style}];')
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(dot_text: str) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise DotMissing("Graphviz 'dot' was not found on PATH: install graphviz, or use --format dot")
    r = subprocess.run([exe, "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("dot failed: " + escape(r.stderr.decode("utf-8", "replace"), 500))
    return r.stdout
