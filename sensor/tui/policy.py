"""Policy screen: zones and conduits with hit and violation counts, validation errors, reload.

* Zones: members (assets in the zone now), pairs from / to it, violations
  (policy alerts whose source or destination zone it is).
* Conduits: source zones → target zones, rules, hits (messages of the pairs
  it covers) and violations (policy alerts between its zones).
* Errors: the policy file's problems as ``file:line:column: what [code]``.
* ``r`` reloads the file (a live replay checks the rest of the capture with
  the new policy); Enter on a zone or conduit opens its pairs in Communications.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from .safe import clean, safe_text
from .widgets import KeyTable, num, plain


class PolicyPane(Vertical):
    BINDINGS = [Binding("r", "reload", "Reload policy"), Binding("x", "violations", "Violations")]

    def __init__(self, model, **kw):
        super().__init__(**kw)
        self.model = model
        self.paused = False

    def compose(self) -> ComposeResult:
        yield Static("", classes="pane-title", markup=False)
        yield Static("", id="policy-errors", markup=False)
        yield KeyTable([("zone", "Zone", 14), ("members", "Assets", 6), ("out", "Pairs out", 9),
                        ("in", "Pairs in", 8), ("viol", "Viol", 5), ("desc", "Description", 30)], id="zones")
        yield KeyTable([("conduit", "Conduit", 16), ("path", "Sources → Targets", 26), ("rules", "Rules", 5),
                        ("hits", "Hits", 7), ("viol", "Viol", 5)], id="conduits")

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused:
            self.refresh_data(full=True)

    def clear_filter(self) -> bool:
        return False

    def focus_table(self) -> None:
        self.query_one("#zones", DataTable).focus()

    def _counts(self):
        m = self.model
        members: dict = {}
        for row in m.assets.values():
            z = m.zone(row)
            if z:
                members[z] = members.get(z, 0) + 1
        pairs: dict = {}
        for r in m.all_kids("peers"):
            if r.get("direction") != "client":
                continue
            crow, srow = m.assets.get(r["asset_id"]) or {}, m.assets.get(r["peer_id"]) or {}
            cz = m.zone(crow) if crow else m.ip_zone(r.get("ip") or "")
            sz = m.zone(srow) if srow else m.ip_zone(r.get("peer_ip") or "")
            n, msgs = pairs.get((cz, sz), (0, 0))
            pairs[(cz, sz)] = (n + 1, msgs + (r.get("messages") or 0))
        viol: dict = {}
        for a in list(m.alerts.values()):
            if a.category == "policy" or a.rule.startswith("policy."):
                viol[(a.src_zone, a.dst_zone)] = viol.get((a.src_zone, a.dst_zone), 0) + 1
        return members, pairs, viol

    def refresh_data(self, changes=None, full: bool = False) -> None:
        if self.paused or not self.is_mounted:
            return
        if changes is not None and not changes.any and not full:
            return
        m = self.model
        title = self.query_one(".pane-title", Static)
        errs = self.query_one("#policy-errors", Static)
        zt, ct = self.query_one("#zones", KeyTable), self.query_one("#conduits", KeyTable)
        if m.policy is None:
            path = m.policy_path or "none (start with --policy FILE)"
            title.update(Text(f"Policy: {clean(path)}", no_wrap=True, overflow="ellipsis"))
        else:
            p = m.policy
            title.update(Text(f"Policy {clean(p.name or m.policy_path)} · {len(p.zones)} zones · "
                              f"{len(p.conduits)} conduits · r reload", no_wrap=True, overflow="ellipsis"))
        if m.policy_errors:
            t = Text(f"{len(m.policy_errors)} problem(s):\n", style="bold red")
            for e in m.policy_errors[:10]:
                t.append(clean(e, 300) + "\n", style="red")
            errs.update(t)
            errs.display = True
        else:
            errs.display = False
        if m.policy is None:
            zt.rebuild([])
            ct.rebuild([])
            return
        members, pairs, viol = self._counts()
        zrows = []
        for name, z in m.policy.zones.items():
            out = sum(n for (f, _t), (n, _m) in pairs.items() if f == name)
            inn = sum(n for (_f, t), (n, _m) in pairs.items() if t == name)
            v = sum(n for (f, t), n in viol.items() if name in (f, t))
            zrows.append((name, (safe_text(name, 40, "bold" if v else ""), num(members.get(name, 0)), num(out),
                                 num(inn), Text(f"!{v}" if v else "0", style="bold red" if v else "dim", end=""),
                                 safe_text(z.description, 80))))
        crows = []
        for c in m.policy.conduits:
            hits = sum(msgs for (f, t), (_n, msgs) in pairs.items() if f in c.sources and t in c.targets)
            v = sum(n for (f, t), n in viol.items() if f in c.sources and t in c.targets)
            crows.append((c.name, (safe_text(c.name, 40), safe_text(f"{','.join(c.sources)} → {','.join(c.targets)}", 80),
                                   num(len(c.rules)), num(hits),
                                   Text(f"!{v}" if v else "0", style="bold red" if v else "dim", end=""))))
        zt.rebuild(zrows)
        ct.rebuild(crows)

    def action_reload(self) -> None:
        self.model.reload_policy()
        n = len(self.model.policy_errors)
        self.app.notify("policy reloaded" + (f": {n} problem(s)" if n else ""), markup=False,
                        severity="error" if n else "information")
        self.refresh_data(full=True)
        self.app.refresh_all()

    def action_violations(self) -> None:
        self.app.show_list("comms", "violations")

    def on_data_table_row_selected(self, event) -> None:
        event.stop()
        k = event.row_key.value if event.row_key is not None else None
        if not k:
            return
        if event.data_table.id == "zones":
            self.app.show_list("comms", f"from:{k}")
        else:
            c = next((c for c in self.model.policy.conduits if c.name == k), None)
            if c is not None and c.sources and c.targets:
                self.app.show_list("comms", f"from:{c.sources[0]} to:{c.targets[0]}")
