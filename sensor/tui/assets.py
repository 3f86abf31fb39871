"""Assets screen: the inventory as a sortable, filterable table, and an asset's detail view.

Columns: asset (best name, else address), IP, class, zone, roles, packets,
findings, alerts, vendor, last seen.  Filter terms: ``name: ip: class: zone:
role: vendor: id:`` and free words.  Enter opens ``AssetDetail``: identity
with its evidence (source message and frame), addresses, names, roles,
services, peers, MQTT topics, posture findings and the alerts of that asset;
``c`` shows its communications, ``a`` its alerts.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..inventory.summary import best_name, with_vlan
from .listpane import READ_SLICE, ListPane
from .safe import clean
from .widgets import cell, num_cell, safe_cell, sev_text, when


def asset_label(model, aid: str) -> str:
    """Raw (unescaped) best label of an asset: name, else IP, else id."""
    row = model.assets.get(aid)
    if row is None:
        return aid
    return best_name(row, model.kids(aid, ("names",))) or row.get("ip") or aid


def alerts_by_asset(model) -> dict:
    out: dict = {}
    for a in list(model.alerts.values()):
        for k in {a.src_asset, a.dst_asset, a.src, a.dst} - {""}:
            out.setdefault(k, []).append(a)
    return out


class AssetsPane(ListPane):
    TITLE = "Assets"
    COLUMNS = [("name", "Asset", 14), ("ip", "IP", 12), ("class", "Class", 10), ("zone", "Zone", 8),
               ("roles", "Roles", 13), ("alerts", "Alrt", 4), ("findings", "Find", 4), ("packets", "Pkts", 7),
               ("vendor", "Vendor", 16), ("last", "Last seen", 8)]
    DEFAULT_SORT = 1
    SLICE_ROWS = READ_SLICE
    BINDINGS = [Binding("c", "comms", "Comms"), Binding("a", "alerts", "Alerts"),
                Binding("w", "talk_map", "Who talks to whom")]

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        self._by_asset: dict = {}

    def all_keys(self):
        self._by_asset = alerts_by_asset(self.model)
        return list(self.model.assets.keys())

    def changed_keys(self, changes):
        if "*" in changes.assets:
            return None
        keys = set(changes.assets)
        if changes.alerts:
            self._by_asset = alerts_by_asset(self.model)
            for aid in changes.alerts:
                a = self.model.alerts.get(aid)
                if a is not None:
                    keys |= {a.src_asset, a.dst_asset} - {""}
        return {k for k in keys if k in self.model.assets or k in self.values}

    def record(self, aid):
        m = self.model
        row = m.assets.get(aid)
        if row is None:
            return None
        kids = m.kids(aid, ("names", "roles", "findings"))
        name = best_name(row, kids)
        ip = with_vlan(row.get("ip") or "", row.get("vlan"))
        roles = ",".join(sorted(r["role"] for r in kids["roles"]))
        zone = m.zone(row)
        pk = (row.get("packets_sent") or 0) + (row.get("packets_received") or 0)
        nal = len({a.id for k in (aid, row.get("ip")) for a in self._by_asset.get(k, ())})
        nfind = len(kids["findings"])
        worst = max((f.get("severity") or "" for f in kids["findings"]),
                    key=lambda s: ("info", "low", "medium", "high", "critical").index(s)
                    if s in ("info", "low", "medium", "high", "critical") else -1, default="")
        values = {"id": aid, "name": name, "ip": ip, "class": row.get("device_class") or "", "zone": zone,
                  "role": roles, "roles": roles, "vendor": row.get("vendor") or "", "mac": row.get("mac") or "",
                  "packets": pk, "findings": nfind, "alerts": nal, "last": row.get("last_seen") or 0}
        cells = (safe_cell(name or ip or aid, 64), cell(ip), cell(values["class"]), safe_cell(zone, 32),
                 cell(roles), num_cell(nal, "bold red" if nal else "dim"),
                 num_cell(nfind, "bold" if worst in ("high", "critical") else ""), num_cell(pk),
                 safe_cell(values["vendor"], 40), cell(when(values["last"])))
        return values, cells

    def open(self, key: str) -> None:
        self.app.push_screen(AssetDetail(self.model, key))

    def action_comms(self) -> None:
        k = self.table.selected_key()
        if k:
            self.app.show_list("comms", f"asset:{self.values.get(k, {}).get('ip') or k}")

    def action_alerts(self) -> None:
        k = self.table.selected_key()
        if k:
            self.app.show_list("alerts", f"asset:{self.values.get(k, {}).get('ip') or k}")

    def action_talk_map(self) -> None:
        k = self.table.selected_key()
        if k:
            from .talkmap import TalkMap, asset_map_text

            self.app.push_screen(TalkMap(asset_map_text(self.model, k)))


def _section(out: Text, title: str, lines: list[Text]) -> None:
    out.append(f"\n{title}\n", style="bold underline")
    if not lines:
        out.append("  -\n", style="dim")
    for ln in lines:
        out.append("  ")
        out.append_text(ln)
        out.append("\n")


def _t(*parts) -> Text:
    """Text from (value, style, wire?) parts: wire values are cleaned, ours kept."""
    t = Text(end="")
    for p in parts:
        if isinstance(p, tuple):
            v, style = p
            t.append(clean(v), style=style)
        else:
            t.append(str(p))
    return t


def detail_text(model, aid: str) -> Text:
    row = model.assets.get(aid) or {}
    k = model.kids(aid)
    out = Text()
    out.append("Asset ", style="bold")
    out.append(clean(asset_label(model, aid)), style="bold")
    out.append(f"  ({clean(aid)})\n")
    out.append_text(_t("class ", (row.get("device_class") or "unknown", "bold"),
                       f" ({row.get('class_confidence') or 0:.2f}: ", (row.get("class_reason") or "", ""), ")"))
    out.append_text(_t("\nip ", (with_vlan(row.get("ip") or "", row.get("vlan")), ""), "  mac ", (row.get("mac") or "-", ""),
                       "  vendor ", (row.get("vendor") or "-", ""), "  zone ", (model.zone(row) or "-", "")))
    out.append_text(_t(f"\nfirst seen {when(row.get('first_seen'))} (frame {row.get('first_frame') or '-'})"
                       f"  last seen {when(row.get('last_seen'))}"
                       f"  packets {row.get('packets_sent') or 0:,} sent / {row.get('packets_received') or 0:,} received\n"))
    _section(out, "Identity (value · evidence)", [
        _t((f"{r['protocol']}.{r['attribute']}", "bold"), " = ", (r.get("value"), ""),
           (f"  · {r.get('source') or '?'}", "dim"),
           (f" (first frame {r.get('frame')}, last {r.get('last_frame') or r.get('frame')})", "dim"),
           (f", changed {r['changes']}×" if r.get("changes") else "", "yellow"))
        for r in sorted(k["identity"], key=lambda r: (r["protocol"], r["attribute"]))])
    _section(out, "Addresses", [_t((r["type"], "bold"), " ", (r["value"], ""), (f"  · {r.get('how') or ''} frame "
                                                                                f"{r.get('frame')}", "dim"))
                                for r in k["addresses"]])
    _section(out, "Names", [_t((r["name"], ""), (f"  · {r.get('source')} frame {r.get('frame')}", "dim"))
                            for r in k["names"]])
    _section(out, "Roles", [_t((r["role"], "bold"), f" {r.get('confidence') or 0:.2f} ", (r.get("reason") or "", "dim"))
                            for r in k["roles"]])
    _section(out, "Services", [_t((f"{r['protocol']} {r['transport']}/{r['port']}", ""),
                                  (f"  · frame {r.get('frame')}", "dim")) for r in k["services"]])
    _section(out, "Peers", [_t(("→ " if r["direction"] == "client" else "← ", "bold"),
                               (asset_label(model, r["peer_id"]), ""), f" {r['protocol']}/{r.get('port')} ",
                               (" ".join(f"{o}:{n}" for o, n in sorted((r.get("ops") or {}).items()))
                                if isinstance(r.get("ops"), dict) else str(r.get("ops") or ""), "dim"),
                               f"  {r.get('messages') or 0:,} msgs")
                            for r in sorted(k["peers"], key=lambda r: -(r.get("messages") or 0))[:50]])
    if k["topics"]:
        _section(out, "MQTT topics", [_t((r["topic"], ""), (f"  · {r.get('how')}", "dim"))
                                      for r in k["topics"][:50]])
    fl = []
    for r in sorted(k["findings"], key=lambda r: r.get("severity") or ""):
        t = sev_text(r.get("severity") or "")
        t.append(" ")
        t.append_text(_t((r.get("finding"), "bold"), " ", (r.get("subject") or "", ""), " ", (r.get("detail") or "", "dim"),
                         (f"  · frame {r.get('frame')} ×{r.get('count')}", "dim")))
        fl.append(t)
    _section(out, "Posture findings", fl)
    al = []
    by_asset = alerts_by_asset(model)
    for a in by_asset.get(aid, []) + by_asset.get(row.get("ip") or "-", []):
        t = sev_text(a.severity)
        t.append_text(_t(" ", (a.rule, "bold"), " ", (a.message, ""), f"  ×{a.count}"))
        al.append(t)
    _section(out, "Alerts", list({id(x): x for x in al}.values())[:50])
    return out


class AssetDetail(Screen):
    """One asset in full.  Esc goes back."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("c", "comms", "Comms"),
                Binding("a", "alerts", "Alerts"), Binding("w", "talk_map", "Who talks to whom")]

    def __init__(self, model, aid: str):
        super().__init__()
        self.model = model
        self.aid = aid

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(detail_text(self.model, self.aid), markup=False, id="detail-body")
        yield Footer()

    def _go(self, target: str) -> None:
        row = self.model.assets.get(self.aid) or {}
        self.app.pop_screen()
        self.app.show_list(target, f"asset:{row.get('ip') or self.aid}")

    def action_comms(self) -> None:
        self._go("comms")

    def action_alerts(self) -> None:
        self._go("alerts")

    def action_talk_map(self) -> None:
        from .talkmap import TalkMap, asset_map_text

        self.app.push_screen(TalkMap(asset_map_text(self.model, self.aid)))
