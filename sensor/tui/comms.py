"""Communications screen: who talks to whom, and the zone-to-zone matrix when a policy is loaded.

Pairs come from the inventory's ``peers`` rows of the client side (one row per
client, server, protocol, port): operations, messages, message rate over the
pair's lifetime, zones, and the policy violations (``policy`` alerts) of the
pair, marked ``!`` and bold (never by colour alone).  Filter terms: ``asset:
client: server: proto: port: from: to: op:`` and ``violations``.

``v`` switches to the matrix: one row per source zone, one column per
destination zone; a cell shows the pairs and ``!n`` the violating ones; Enter
on a cell opens the pairs of that zone → zone cell.  ``x`` shows violations only.
"""
from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from .assets import asset_label
from .listpane import ListPane
from .safe import clean, safe_text
from .widgets import num, plain


def violations_by_pair(model) -> dict:
    out: dict = {}
    for a in list(model.alerts.values()):
        if a.category == "policy" or a.rule.startswith("policy."):
            out[(a.src, a.dst)] = out.get((a.src, a.dst), 0) + 1
    return out


class CommsPane(ListPane):
    TITLE = "Pairs"
    COLUMNS = [("client", "Client", 13), ("server", "Server", 13), ("proto", "Proto", 6), ("viol", "Viol", 4),
               ("messages", "Msgs", 7), ("rate", "Msg/s", 6), ("zones", "Zones", 14), ("port", "Port", 5),
               ("ops", "Operations", 30)]
    DEFAULT_SORT = 4
    BINDINGS = [Binding("v", "matrix", "Matrix"), Binding("x", "violations", "Violations only"),
                Binding("w", "talk_map", "Who talks to whom")]

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        self.sort_reverse = True
        self.matrix_shown = False
        self._viol: dict = {}
        self._rows: dict = {}            # pair key -> the client's peers row
        self._by_asset: dict = {}        # asset id (client or server) -> pair keys
        self._by_ips: dict = {}          # (client ip, server ip) -> pair keys

    def compose(self):
        yield from super().compose()
        m = DataTable(id="matrix", cursor_type="cell")
        m.display = False
        yield m

    def extra_title(self) -> str:
        return "zone matrix" if self.matrix_shown else ""

    @staticmethod
    def pair_key(r: dict) -> str:
        return f"{r['asset_id']}|{r['peer_id']}|{r.get('protocol')}|{r.get('port')}"

    def _add(self, r: dict) -> str:
        key = self.pair_key(r)
        self._rows[key] = r
        self._by_asset.setdefault(r["asset_id"], set()).add(key)
        self._by_asset.setdefault(r["peer_id"], set()).add(key)
        return key

    def all_keys(self):
        self._viol = violations_by_pair(self.model)
        self._rows, self._by_asset, self._by_ips = {}, {}, {}
        for r in self.model.all_kids("peers"):
            if r.get("direction") == "client":
                self._add(r)
        return list(self._rows)

    def changed_keys(self, changes):
        """The pairs of the assets that changed (as client or as server) and of the new violations."""
        if "*" in changes.assets:
            return None
        keys: set = set()
        m = self.model
        for aid in changes.assets:
            old = self._by_asset.get(aid, set())
            keys |= old
            now = {self._add(r) for r in m.kids(aid, ("peers",))["peers"] if r.get("direction") == "client"}
            keys |= now
            for k in old - now:                  # a pair this asset no longer has (database re-read)
                r = self._rows.get(k)
                if r is not None and r["asset_id"] == aid:
                    del self._rows[k]
        if changes.alerts:
            viol = violations_by_pair(m)
            for ips in {ip for ip, n in viol.items() if self._viol.get(ip) != n} | {
                    ip for ip in self._viol if ip not in viol}:
                keys |= self._by_ips.get(ips, set())
            self._viol = viol
        return keys

    def record(self, key):
        r = self._rows.get(key)
        if r is None:
            return None
        m = self.model
        crow = m.assets.get(r["asset_id"]) or {}
        srow = m.assets.get(r["peer_id"]) or {}
        cip, sip = r.get("ip") or crow.get("ip") or "", r.get("peer_ip") or srow.get("ip") or ""
        cz, sz = m.zone(crow) if crow else m.ip_zone(cip), m.zone(srow) if srow else m.ip_zone(sip)
        ops = r.get("ops") or {}
        ops_s = " ".join(f"{o}:{n}" for o, n in sorted(ops.items())) if isinstance(ops, dict) else str(ops)
        msgs = r.get("messages") or 0
        span = max((r.get("last_seen") or 0) - (r.get("first_seen") or 0), 1.0)
        rate = msgs / span
        self._by_ips.setdefault((cip, sip), set()).add(key)
        viol = self._viol.get((cip, sip), 0)
        clabel, slabel = asset_label(m, r["asset_id"]), asset_label(m, r["peer_id"])
        values = {"client": f"{clabel} {cip}", "server": f"{slabel} {sip}",
                  "asset": f"{cip} {sip} {r['asset_id']} {r['peer_id']}", "proto": r.get("protocol") or "",
                  "port": r.get("port") or 0, "op": ops_s, "ops": ops_s, "messages": msgs, "rate": rate,
                  "from": cz, "to": sz, "zones": f"{cz}→{sz}", "violations": "violations" if viol else "",
                  "viol": viol, "cip": cip, "sip": sip, "clabel": clabel, "slabel": slabel}
        style = "bold" if viol else ""
        cells = (safe_text(clabel, 48, style), safe_text(slabel, 48, style),
                 plain(values["proto"]), Text(f"!{viol}" if viol else "", style="bold red", end=""), num(msgs),
                 plain(f"{rate:,.1f}"), safe_text(values["zones"] if (cz or sz) else "", 40), num(values["port"]),
                 safe_text(ops_s, 120))
        return values, cells

    # -- matrix -------------------------------------------------------------------------------
    def action_matrix(self) -> None:
        self.matrix_shown = not self.matrix_shown
        mt = self.query_one("#matrix", DataTable)
        mt.display = self.matrix_shown
        self.table.display = not self.matrix_shown
        if self.matrix_shown:
            self.fill_matrix()
            mt.focus()
        else:
            self.table.focus()
        self._title()

    def action_talk_map(self) -> None:
        """The pairs as a picture, by zone → zone (the pairs this screen lists, its filter applied)."""
        from .talkmap import TalkMap, zone_map_text

        if self._dirty and not self.paused:
            self.refresh_data(full=True)
        shown = self.table.cells
        self.app.push_screen(TalkMap(zone_map_text({k: v for k, v in self.values.items() if k in shown})))

    def action_violations(self) -> None:
        self.set_filter("" if "violations" in self.filter_text else (self.filter_text + " violations").strip())

    def fill_matrix(self) -> None:
        m = self.model
        mt = self.query_one("#matrix", DataTable)
        zones = list(m.policy.zones) if m.policy is not None else []
        if not self.values:
            self.refresh_data(full=True)
        cells: dict = {}
        seen = set()
        for v in self.values.values():
            f, t = v["from"] or "-", v["to"] or "-"
            seen |= {f, t}
            n, bad = cells.get((f, t), (0, 0))
            cells[(f, t)] = (n + 1, bad + (1 if v["viol"] else 0))
        for z in sorted(seen):
            if z not in zones:
                zones.append(z)
        mt.clear(columns=True)
        mt.add_column(Text("from \\ to", style="dim"), key="_from", width=12)
        for z in zones:
            mt.add_column(safe_text(z, 12), key=z, width=max(6, min(len(clean(z)), 12)))
        for fz in zones:
            row = [safe_text(fz, 12, "bold")]
            for tz in zones:
                n, bad = cells.get((fz, tz), (0, 0))
                if bad:
                    row.append(Text(f"{n} !{bad}", style="bold reverse red", end=""))
                elif n:
                    row.append(Text(str(n), end=""))
                else:
                    row.append(Text("·", style="dim", end=""))
            mt.add_row(*row, key=fz)
        if not zones:
            mt.add_row(Text("no zones: load a policy (--policy)", style="dim"))

    def on_data_table_cell_selected(self, event) -> None:
        if event.data_table.id != "matrix":
            return
        event.stop()
        fz = event.cell_key.row_key.value
        tz = event.cell_key.column_key.value
        if not fz or tz == "_from":
            return
        self.action_matrix()
        q = []
        if fz != "-":
            q.append(f"from:{fz}")
        if tz != "-":
            q.append(f"to:{tz}")
        self.set_filter(" ".join(q))

    def refresh_data(self, changes=None, full: bool = False) -> None:
        super().refresh_data(changes, full)
        if self.matrix_shown and not self.paused and (full or (changes is not None and changes.any)):
            self.fill_matrix()
