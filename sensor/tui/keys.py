"""Every key of the TUI, from the bindings of the app and its screens: the help screen's extras and docs/keys.md.

    python -m otwatch.sensor.tui.keys > docs/keys.md      # what tests/sensor/tui/test_keys.py compares with

``sections()`` lists (title, where, bindings) in the order docs/keys.md shows
them: the app's own bindings, then each screen's and widget's ``BINDINGS``
(read from the classes, so a key added to a screen appears here without being
written twice), and the command palette's commands (``PALETTE``, which
``app.OtwatchCommands`` turns into its hits).  ``EVERYWHERE_EXTRA`` and
``TABLE_KEYS`` are the keys Textual itself provides (palette, focus, table
movement); the ``?`` help screen shows them with the screen's own bindings.
"""
from __future__ import annotations

import sys

from textual.binding import Binding

EVERYWHERE_EXTRA = [Binding("ctrl+p", "command_palette", "Command palette"),
                    Binding("1-5", "show", "Screens 1 Overview … 5 Policy", show=False),
                    Binding("tab", "focus_next", "Next pane/widget", show=False)]
"""Global keys the app's BINDINGS do not name (Textual's palette and focus chain; 1–5 as one line)."""

TABLE_KEYS = [Binding("j,down", "", "Down", show=False), Binding("k,up", "", "Up", show=False),
              Binding("g,home", "", "Top", show=False), Binding("G,end", "", "Bottom", show=False),
              Binding("pageup,pagedown", "", "Page", show=False)]
"""Movement in every table: ``widgets.KeyTable``'s j/k/g/G and the DataTable's own arrows and pages."""

PALETTE = [
    ("screen: Overview", "action_show", ("overview",), "go to 1 Overview"),
    ("screen: Assets", "action_show", ("assets",), "go to 2 Assets"),
    ("screen: Comms", "action_show", ("comms",), "go to 3 Comms"),
    ("screen: Alerts", "action_show", ("alerts",), "go to 4 Alerts"),
    ("screen: Policy", "action_show", ("policy",), "go to 5 Policy"),
    ("pause: toggle", "action_pause", (), "freeze or resume the live views"),
    ("filter: clear", "action_clear_filter", (), "clear the filter of this screen"),
    ("policy: reload", "action_reload_policy", (), "re-read the policy file"),
    ("help: keys", "action_help", (), "every key of this screen"),
    ("comms: zone matrix", "action_matrix", (), "the zone-to-zone matrix"),
    ("comms: who talks to whom", "action_talk_map", (), "the pairs by zone, as a picture"),
    ("baseline: show", "action_baseline", (), "learning curve and entries of the baseline"),
    ("alerts: high and above", "show_list", ("alerts", "sev:high"), "open alerts, high+"),
]
"""The command palette (``ctrl+p``): (command, app method, its arguments, what it does)."""

SHOWN = {"question_mark": "?", "slash": "/", "less_than_sign": "<", "greater_than_sign": ">", "f1": "F1"}
"""Textual key names → how a person types them."""


def sections() -> list[tuple[str, str, list[Binding]]]:
    from . import alerts, app, assets, baselinescreen, comms, listpane, overview, policy, talkmap, widgets
    from .help import HelpScreen

    return [
        ("Everywhere", "On any screen (single letters do nothing while the filter line has focus)",
         list(app.OtwatchApp.BINDINGS) + EVERYWHERE_EXTRA),
        ("Lists", "In the lists of Assets, Comms, Alerts, Policy and the Baseline entries (`listpane.ListPane`)",
         list(listpane.ListPane.BINDINGS)),
        ("Tables", "In every table (`widgets.KeyTable`, a `DataTable`)", TABLE_KEYS),
        ("Filter line", "While typing a filter (`widgets.FilterBar`)", list(widgets.FilterBar.BINDINGS)),
        ("1 Overview", "On the tiles (`overview.OverviewPane`, `widgets.Tile`)",
         list(overview.OverviewPane.BINDINGS) + list(widgets.Tile.BINDINGS)),
        ("2 Assets", "In the asset list (`assets.AssetsPane`), besides the list keys", list(assets.AssetsPane.BINDINGS)),
        ("Asset detail", "In one asset's detail (`assets.AssetDetail`)", list(assets.AssetDetail.BINDINGS)),
        ("3 Comms", "In the pairs and the zone matrix (`comms.CommsPane`), besides the list keys", list(comms.CommsPane.BINDINGS)),
        ("4 Alerts", "In the alert feed (`alerts.AlertsPane`), besides the list keys; acknowledge and accept are hidden with `--read-only`",
         list(alerts.AlertsPane.BINDINGS)),
        ("Alert detail", "In one alert's detail (`alerts.AlertDetail`)", list(alerts.AlertDetail.BINDINGS)),
        ("5 Policy", "In the zones and conduits (`policy.PolicyPane`)", list(policy.PolicyPane.BINDINGS)),
        ("Who talks to whom", "In the map (`talkmap.TalkMap`, `w` from Comms or Assets)", list(talkmap.TalkMap.BINDINGS)),
        ("Baseline", "On the Baseline screen (`baselinescreen.BaselineScreen`, `b`), besides the list keys",
         list(baselinescreen.BaselineScreen.BINDINGS)),
        ("Help", "On the help screen (`help.HelpScreen`, `?`; it has no footer)",
         [Binding(b.key, b.action, b.description, show=False) for b in HelpScreen.BINDINGS]),
    ]


def key_text(key: str) -> str:
    return ", ".join(f"`{SHOWN.get(k.strip(), k.strip())}`" for k in key.split(","))


def markdown() -> str:
    out = ["# Keys of `otwatch tui`", "",
           "Generated from the bindings of the app and its screens by `sensor/tui/keys.py`",
           "(`python -m otwatch.sensor.tui.keys > docs/keys.md`); `tests/sensor/tui/test_keys.py` fails when",
           "this file is out of date.  In the app, `?` or `F1` lists the keys of the current screen from the",
           "same bindings.  What the screens show: docs/tui.md.", ""]
    for title, where, bindings in sections():
        out += [f"## {title}", "", f"{where}.", "", "| key | action | in the footer |", "|---|---|---|"]
        seen = set()
        for b in bindings:
            if (b.key, b.action) in seen:
                continue
            seen.add((b.key, b.action))
            out.append(f"| {key_text(b.key)} | {b.description} | {'yes' if b.show else ''} |")
        out.append("")
    out += ["## Command palette", "", "`ctrl+p`, then type a few letters of a command (`app.OtwatchCommands`).", "",
            "| command | what it does |", "|---|---|"]
    out += [f"| `{name}` | {what} |" for name, _m, _a, what in PALETTE]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
