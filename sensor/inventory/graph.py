"""The communication map (GRASSMARLIN's logical view) as Graphviz DOT.

``to_dot(snapshot) -> str``: one node per asset, labelled with its name or
address, device class, roles and the best identity string; one edge per
client → server pair, bundling every protocol and port between them (the
first ``EDGE_SERVICES_SHOWN`` named with their operations, the rest counted);
a self-loop is drawn bare and what it carries is a line of its node's label
("to itself: …"), so no label sits on the loop; a legend explains shapes,
edge styles and outline colours.  Assets with a policy zone are drawn inside
a cluster per zone.  ``render(dot_text, fmt)`` runs Graphviz ``dot`` (svg,
png) and raises ``DotMissing`` when it is not installed.

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


OT_PROTOCOLS = ("modbus", "mqtt", "opcua")
EDGE_SERVICES_SHOWN = 3
"""Services named on one bundled edge; the rest are counted ("+9 more"): a scanner's dozen
connections to one PLC are one edge, not a dozen stacked labels."""


def _edges(snap: dict, kids: dict, ids: dict) -> dict[tuple[str, str], list[dict]]:
    """(client asset, server asset) -> its peer rows (one per protocol and port), OT first."""
    edges: dict[tuple[str, str], list[dict]] = {}
    for a in snap["assets"]:
        for p in kids[a["asset_id"]]["peers"]:
            if p["direction"] != "client" or p["peer_id"] not in ids:
                continue
            edges.setdefault((a["asset_id"], p["peer_id"]), []).append(p)
    for rows in edges.values():
        rows.sort(key=lambda p: (p["protocol"] not in OT_PROTOCOLS, p["protocol"], p["port"]))
    return edges


def _edge_label(rows: list[dict]) -> list[str]:
    lines = []
    for p in rows[:EDGE_SERVICES_SHOWN]:
        ops = sorted(k for k in (p["ops"] or {}) if k != "flows")
        head = f"{p['protocol']} :{p['port']}" if p["protocol"] in OT_PROTOCOLS else f"{p['protocol']}"
        lines.append(head + (f" ({', '.join(ops)})" if ops else ""))
    if len(rows) > EDGE_SERVICES_SHOWN:
        rest = rows[EDGE_SERVICES_SHOWN:]
        names = ", ".join(f"{p['protocol']} :{p['port']}" if p["protocol"] in OT_PROTOCOLS else p["protocol"]
                          for p in rest[:4]) + (", …" if len(rest) > 4 else "")
        lines.append(f"+{len(rest)} more: {names}")
    return lines


SHAPE_WORDS = {"box3d": "3-D box", "component": "component", "tab": "folder tab", "cylinder": "cylinder",
               "hexagon": "hexagon", "doubleoctagon": "double octagon", "box": "box", "ellipse": "ellipse",
               "octagon": "octagon"}


def _legend(classes: set[str], severities: set[str], non_ot: bool) -> list[str]:
    """A compact legend (one HTML-like table node): node shapes of the classes drawn, edge styles,
    outline colours.  Only what the picture uses is listed."""
    rows = ['<TR><TD COLSPAN="2"><B>legend</B></TD></TR>']
    for cls in sorted(classes):
        rows.append(f'<TR><TD ALIGN="LEFT">{SHAPE_WORDS.get(CLASS_SHAPES.get(cls, "ellipse"), "ellipse")}</TD>'
                    f'<TD ALIGN="LEFT">{_html(cls)}</TD></TR>')
    rows.append('<TR><TD ALIGN="LEFT">solid arrow</TD><TD ALIGN="LEFT">client → server, OT protocol :port '
                '(operations)</TD></TR>')
    if non_ot:
        rows.append('<TR><TD ALIGN="LEFT"><FONT COLOR="gray50">dashed grey</FONT></TD>'
                    '<TD ALIGN="LEFT">other services only</TD></TR>')
    rows.append('<TR><TD ALIGN="LEFT">thicker arrow</TD><TD ALIGN="LEFT">several services bundled '
                f'(first {EDGE_SERVICES_SHOWN} named, "+N more")</TD></TR>')
    for sev in ("high", "medium", "low"):
        if sev in severities:
            rows.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="{SEVERITY_COLOURS[sev]}">outline</FONT></TD>'
                        f'<TD ALIGN="LEFT">worst posture finding: {sev}</TD></TR>')
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2">' + "".join(rows) + "</TABLE>"
    return [f'  legend [shape=box, style="rounded", color=gray60, fontsize=9, label=<{table}>];']


def _html(text: str) -> str:
    return escape(text, 60).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_dot(snap: dict, legend: bool = True) -> str:
    kids = by_asset(snap)
    ids = {a["asset_id"]: f"a{i}" for i, a in enumerate(snap["assets"])}
    out = ["digraph otwatch {", '  graph [rankdir=LR, fontname="Helvetica", label="otwatch communication map", '
           "nodesep=0.4, ranksep=1.0];",
           '  node [fontname="Helvetica", fontsize=10, style=filled, fillcolor="#f4f4f4"];',
           '  edge [fontname="Helvetica", fontsize=9];']
    zones: dict[str, list[str]] = {}
    classes, severities = set(), set()
    edges = _edges(snap, kids, ids)
    for a in snap["assets"]:
        k = kids[a["asset_id"]]
        roles = ", ".join(sorted(r["role"] for r in k["roles"]))
        worst = next((s for s in ("high", "medium", "low") if any(f["severity"] == s for f in k["findings"])), "")
        classes.add(a["device_class"])
        if worst:
            severities.add(worst)
        loop = edges.get((a["asset_id"], a["asset_id"]))
        self_lines = (["to itself:"] + _edge_label(loop)) if loop else []
        node = (f'  {ids[a["asset_id"]]} [label={_lines(best_name(a, k), a["ip"] or a["mac"], a["device_class"], roles, identity_line(k), *self_lines)}, '
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
    non_ot = False
    for (src, dst), rows in sorted(edges.items(), key=lambda kv: (ids[kv[0][0]], ids[kv[0][1]])):
        ot = any(p["protocol"] in OT_PROTOCOLS for p in rows)
        non_ot |= not ot
        style = "" if ot else ", style=dashed, color=gray50"
        width = f", penwidth={min(1 + 0.25 * (len(rows) - 1), 3):.2f}" if len(rows) > 1 else ""
        if src == dst:       # a self-loop: drawn bare; what it carries is in the node's label ("to itself: …")
            attrs = 'label=""'
        else:
            attrs = f"label={_lines(*_edge_label(rows))}"
        out.append(f"  {ids[src]} -> {ids[dst]} [{attrs}{style}{width}];")
    if legend and snap["assets"]:
        out += _legend(classes, severities, non_ot)
    out.append("}")
    return "\n".join(out) + "\n"


def render(dot_text: str, fmt: str = "svg") -> bytes:
    """Run Graphviz ``dot -T<fmt>`` (svg, png) on *dot_text*; ``DotMissing`` when dot is not installed."""
    exe = shutil.which("dot")
    if exe is None:
        raise DotMissing("Graphviz 'dot' was not found on PATH: install graphviz, or use --format dot")
    r = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("dot failed: " + escape(r.stderr.decode("utf-8", "replace"), 500))
    return r.stdout


def to_svg(dot_text: str) -> bytes:
    return render(dot_text, "svg")
