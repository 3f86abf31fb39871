"""Communications screen: who talks to whom, and the zone-to-zone matrix when a policy is loaded.

Pairs come from the inventory's ``peers`` rows of the client side (one row per
client, server, protocol, port): operations, messages, message rate over the
pair's lifetime, zones, and the policy violations (``policy`` alerts) of the
pair, marked ``!`` and bold (never by colour alone).  Filter terms: ``asset:
client: server: proto: port: from: to: op:`` and ``violations``.

``v`` switches to the matrix: one row per source zone, one column per
destination zone; a cell shows the pairs and ``!n`` the violating ones; Enter
on a cell opens the pairs of that zone → zone cell.  ``x`` shows violations only.

Updates by pair (issue 16): the pairs are read once, a slice of ``SLICE_ROWS``
at a time (keys are answered between slices); afterwards a tick re-reads only
the pairs whose peers row counters moved (compared with what their cells were
made of), every pair of an asset whose label or zone changed, and the pairs
whose violations changed; their rows are updated by key (``KeyTable.upsert``).
The matrix and ``w`` count the same cached pairs.
"""
from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from .assets import asset_label
from .listpane import READ_SLICE, ListPane
from .safe import clean, safe_text
from .widgets import cell, num_cell, safe_cell


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

    SLICE_ROWS = READ_SLICE

    def __init__(self, model, **kw):
        super().__init__(model, **kw)
        self.sort_reverse = True
        self.matrix_shown = False
        self._viol: dict = {}
        self._rows: dict = {}            # pair key -> the client's peers row
        self._by_asset: dict = {}        # asset id (client or server) -> pair keys
        self._by_ips: dict = {}          # (client ip, server ip) -> pair keys
        self._rsig: dict = {}            # pair key -> the row's counters when its cells were made
        self._faces: dict = {}           # asset id -> (label, zone) its pairs show

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

    @staticmethod
    def row_sig(r: dict) -> tuple:
        """What a pair's cells are made of in its peers row: the counters (messages, first and last seen;
        the operations only move with the messages) and the addresses."""
        return (r.get("messages"), r.get("first_seen"), r.get("last_seen"), r.get("ip"), r.get("peer_ip"))

    def _add(self, r: dict) -> str:
        key = self.pair_key(r)
        self._rows[key] = r
        self._by_asset.setdefault(r["asset_id"], set()).add(key)
        self._by_asset.setdefault(r["peer_id"], set()).add(key)
        return key

    def _face_now(self, aid: str):
        """(label, zone) of asset *aid* as its pairs show it; None when there is no such asset."""
        m = self.model
        row = m.assets.get(aid)
        if row is None:
            return None
        return asset_label(m, aid), m.zone(row)

    def _face(self, aid: str):
        f = self._faces.get(aid)
        if f is None:
            f = self._faces[aid] = self._face_now(aid)
        return f

    def all_keys(self):
        self._viol = violations_by_pair(self.model)
        self._rows, self._by_asset, self._by_ips, self._rsig, self._faces = {}, {}, {}, {}, {}
        for r in self.model.all_kids("peers"):
            if r.get("direction") == "client":
                self._add(r)
        return list(self._rows)

    def changed_keys(self, changes):
        """The pairs whose cells would change: a peers row whose counters moved (or new, or gone), every
        pair of an asset whose label or zone changed, and the pairs whose violations changed.  Only the
        assets the tick touched are looked at ("*": all of them), and in them only the pairs' counters
        are compared: a broker touched by one publish re-reads one pair, not its thousand."""
        m = self.model
        star = "*" in changes.assets
        if star:
            if not self._rows and not self.values:
                return None
            aids = set(m.assets.keys()) | set(self._by_asset)
        else:
            aids = changes.assets
        keys: set = set()
        rows, rsig, sig = self._rows, self._rsig, self.row_sig
        for aid in aids:
            old = self._by_asset.get(aid, set())
            now = {self._add(r) for r in m.kids(aid, ("peers",))["peers"] if r.get("direction") == "client"}
            for k in old - now:                  # a pair this asset no longer has (database re-read)
                r = rows.get(k)
                if r is not None and r["asset_id"] == aid:
                    del rows[k]
                    keys.add(k)
            face = self._face_now(aid)
            if self._faces.get(aid, face) != face or (face is None and aid in self._faces):
                keys |= old | now                # its label or zone: every pair of it
            if face is None:
                self._faces.pop(aid, None)
            else:
                self._faces[aid] = face
            for k in old | now:
                if k not in keys:
                    r = rows.get(k)
                    if r is None or rsig.get(k) != sig(r):
                        keys.add(k)
        if changes.alerts or star:
            viol = violations_by_pair(m)
            for ips in {ip for ip, n in viol.items() if self._viol.get(ip) != n} | {
                    ip for ip in self._viol if ip not in viol}:
                keys |= self._by_ips.get(ips, set())
            self._viol = viol
        return keys

    def record(self, key):
        r = self._rows.get(key)
        if r is None:
            self._rsig.pop(key, None)
            return None
        m = self.model
        self._rsig[key] = self.row_sig(r)
        cid, sid = r["asset_id"], r["peer_id"]
        cf, sf = self._face(cid), self._face(sid)
        cip = r.get("ip") or (m.assets.get(cid) or {}).get("ip") or ""
        sip = r.get("peer_ip") or (m.assets.get(sid) or {}).get("ip") or ""
        clabel, cz = cf if cf is not None else (cid, m.ip_zone(cip))
        slabel, sz = sf if sf is not None else (sid, m.ip_zone(sip))
        ops = r.get("ops") or {}
        ops_s = " ".join(f"{o}:{n}" for o, n in sorted(ops.items())) if isinstance(ops, dict) else str(ops)
        msgs = r.get("messages") or 0
        span = max((r.get("last_seen") or 0) - (r.get("first_seen") or 0), 1.0)
        rate = msgs / span
        self._by_ips.setdefault((cip, sip), set()).add(key)
        viol = self._viol.get((cip, sip), 0)
        values = {"client": f"{clabel} {cip}", "server": f"{slabel} {sip}",
                  "asset": f"{cip} {sip} {cid} {sid}", "proto": r.get("protocol") or "",
                  "port": r.get("port") or 0, "op": ops_s, "ops": ops_s, "messages": msgs, "rate": rate,
                  "from": cz, "to": sz, "zones": f"{cz}→{sz}", "violations": "violations" if viol else "",
                  "viol": viol, "cip": cip, "sip": sip, "clabel": clabel, "slabel": slabel}
        style = "bold" if viol else ""
        cells = (safe_cell(clabel, 48, style), safe_cell(slabel, 48, style),
                 cell(values["proto"]), cell(f"!{viol}" if viol else "", "bold red"), num_cell(msgs),
                 cell(f"{rate:,.1f}"), safe_cell(values["zones"] if (cz or sz) else "", 40), num_cell(values["port"]),
                 safe_cell(ops_s, 120))
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
        self.finish_reading()
        shown = self.table.cells
        self.app.push_screen(TalkMap(zone_map_text({k: v for k, v in self.values.items() if k in shown})))

    def action_violations(self) -> None:
        self.set_filter("" if "violations" in self.filter_text else (self.filter_text + " violations").strip())

    def fill_matrix(self) -> None:
        m = self.model
        mt = self.query_one("#matrix", DataTable)
        zones = list(m.policy.zones) if m.policy is not None else []
        if self._dirty and not self.paused:
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

    def after_work(self, keys) -> None:
        """The matrix counts every pair read so far: redrawn when pairs were re-read (and not again while
        a full read is still in progress)."""
        if self.matrix_shown and not self._building:
            self.fill_matrix()
