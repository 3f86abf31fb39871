"""Who talks to whom, as text: the communicating pairs grouped by zone → zone, or around one asset.

* ``zone_map_text(pairs)``: one block per (client zone → server zone) with its
  pair count, protocols, messages and violating pairs, then its busiest pairs
  (``client ──proto/port──▶ server  messages  operations``, ``!`` on a
  violating pair); blocks sorted by violations, then messages.  *pairs* are
  the Comms screen's rows (``CommsPane.values``).
* ``asset_map_text(model, aid)``: the asset in the middle, what it talks to
  (``──▶``, it is the client) and what talks to it (``◀──``), grouped by
  protocol, with messages and operations.
* ``TalkMap``: the screen that shows either (``w`` on Comms: by zone; ``w`` on
  Assets or an asset's detail: that asset).  Esc goes back.

Every wire string (names, zones from addresses, operations) goes through
``safe.clean`` and is appended to a Rich ``Text`` (never markup).  Bounded:
``PAIRS_PER_BLOCK`` pairs per block and ``PEERS_SHOWN`` peers per asset, the
rest counted.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from .safe import clean

PAIRS_PER_BLOCK = 12
"""Busiest pairs listed per zone → zone block (a 10,000-sensor zone is a count, not a scroll)."""
PEERS_SHOWN = 60
"""Peers listed around one asset."""
LABEL = 28
"""Characters of an asset label in a line."""


def _label(name: str, ip: str) -> str:
    name, ip = clean(name, LABEL), clean(ip, 40)
    return name if not ip or name == ip else f"{name} ({ip})"


def zone_map_text(pairs: dict) -> Text:
    blocks: dict = {}
    for v in pairs.values():
        b = blocks.setdefault((v["from"] or "-", v["to"] or "-"), {"pairs": [], "msgs": 0, "viol": 0, "protos": {}})
        b["pairs"].append(v)
        b["msgs"] += v["messages"]
        b["viol"] += 1 if v["viol"] else 0
        b["protos"][v["proto"]] = b["protos"].get(v["proto"], 0) + 1
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"Who talks to whom, by zone: {len(pairs):,} pairs in {len(blocks):,} zone → zone groups\n",
               style="bold")
    if not blocks:
        out.append("\nno pairs yet\n", style="dim")
    for (fz, tz), b in sorted(blocks.items(), key=lambda kv: (-kv[1]["viol"], -kv[1]["msgs"], kv[0])):
        out.append("\n")
        out.append(clean(fz, 32), style="bold")
        out.append(" ══▶ ")
        out.append(clean(tz, 32), style="bold")
        protos = ", ".join(f"{clean(p, 12)} {n:,}" for p, n in sorted(b["protos"].items(), key=lambda kv: -kv[1]))
        out.append(f"   {len(b['pairs']):,} pairs ({protos}), {b['msgs']:,} msgs")
        if b["viol"]:
            out.append(f"  !{b['viol']:,} violating", style="bold red")
        out.append("\n")
        shown = sorted(b["pairs"], key=lambda v: (-(v["viol"] or 0), -v["messages"], v["cip"], v["sip"]))
        for v in shown[:PAIRS_PER_BLOCK]:
            out.append("  ! " if v["viol"] else "    ", style="bold red")
            out.append(_label(v["clabel"], v["cip"]), style="bold" if v["viol"] else "")
            out.append(f" ──{_link(v['proto'], v['port'])}──▶ ")
            out.append(_label(v["slabel"], v["sip"]), style="bold" if v["viol"] else "")
            out.append(f"  {v['messages']:,} msgs", style="dim")
            if v["ops"]:
                out.append("  " + clean(v["ops"], 60), style="dim")
            out.append("\n")
        if len(shown) > PAIRS_PER_BLOCK:
            out.append(f"    … {len(shown) - PAIRS_PER_BLOCK:,} more pairs (Comms: filter from:{clean(fz, 32)} "
                       f"to:{clean(tz, 32)})\n", style="dim")
    return out


def _link(proto, port) -> str:
    p = clean(proto, 12)
    return p if "/" in p else f"{p}/{port}"


def _ops(r: dict) -> str:
    ops = r.get("ops") or {}
    return " ".join(f"{o}:{n}" for o, n in sorted(ops.items())) if isinstance(ops, dict) else str(ops)


def asset_map_text(model, aid: str) -> Text:
    from .assets import asset_label

    row = model.assets.get(aid) or {}
    peers = model.kids(aid)["peers"]
    out = Text(no_wrap=True, overflow="ellipsis")
    me = _label(asset_label(model, aid), row.get("ip") or "")
    zone = model.zone(row) if row else ""
    out.append("Who talks to whom, around ", style="bold")
    out.append(me, style="bold reverse")
    if zone:
        out.append(f"  (zone {clean(zone, 32)})")
    n_out = sum(1 for r in peers if r.get("direction") == "client")
    out.append(f"\n{n_out:,} it talks to (──▶), {len(peers) - n_out:,} talk to it (◀──)\n")
    by_proto: dict = {}
    for r in peers:
        by_proto.setdefault(r.get("protocol") or "?", []).append(r)
    shown = 0
    for proto, rows in sorted(by_proto.items(), key=lambda kv: -sum(r.get("messages") or 0 for r in kv[1])):
        out.append(f"\n{clean(proto, 12)}", style="bold underline")
        out.append(f"  {len(rows):,} peers, {sum(r.get('messages') or 0 for r in rows):,} msgs\n")
        for r in sorted(rows, key=lambda r: (r.get("direction") != "client", -(r.get("messages") or 0))):
            if shown >= PEERS_SHOWN:
                break
            shown += 1
            other = model.assets.get(r["peer_id"]) or {}
            peer = _label(asset_label(model, r["peer_id"]), r.get("peer_ip") or other.get("ip") or "")
            if r.get("direction") == "client":
                out.append(f"  {me} ──{_link(proto, r.get('port'))}──▶ ")
                out.append(peer, style="bold")
            else:
                out.append("  ")
                out.append(peer, style="bold")
                out.append(f" ──{_link(proto, r.get('port'))}──▶ {me}")
            out.append(f"  {r.get('messages') or 0:,} msgs", style="dim")
            ops = _ops(r)
            if ops:
                out.append("  " + clean(ops, 60), style="dim")
            out.append("\n")
    if len(peers) > shown:
        out.append(f"\n… {len(peers) - shown:,} more peers (Comms: filter asset:{clean(row.get('ip') or aid, 40)})\n",
                   style="dim")
    if not peers:
        out.append("\nno peers seen\n", style="dim")
    return out


class TalkMap(Screen):
    """The who-talks-to-whom picture (by zone, or around one asset).  Esc goes back."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("w", "app.pop_screen", "Close map")]

    def __init__(self, text: Text):
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(self.text, markup=False, id="detail-body")
        yield Footer()


__all__ = ["zone_map_text", "asset_map_text", "TalkMap", "PAIRS_PER_BLOCK", "PEERS_SHOWN"]
