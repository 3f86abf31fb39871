"""Guards on the TUI's code and docs.

* No widget gets markup from data: in sensor/tui/, a ``Static``/``Label``
  constructor, ``update``, ``add_row``, ``add_column`` or ``notify`` call never
  receives an f-string or a ``%``/``.format`` string, and ``notify`` always
  passes ``markup=False`` (its text is then plain, so a formatted message is allowed there).
* Every key binding of the app and of each screen has a description and is
  listed in docs/tui.md (the help screen is generated from the same bindings).
"""
from __future__ import annotations

import ast
import pathlib

from otwatch.sensor.tui import alerts, app, assets, comms, listpane, overview, policy, talkmap

ROOT = pathlib.Path(__file__).resolve().parents[3]
TUI = ROOT / "sensor" / "tui"
SHOWN = {"less_than_sign": "<", "greater_than_sign": ">", "question_mark": "?", "slash": "/"}
"""Textual key names → how the docs write the key."""
CALLS = {"Static", "Label", "update", "add_row", "add_column", "notify"}


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def test_no_formatted_strings_reach_widgets():
    bad = []
    for path in TUI.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _name(node) not in CALLS:
                continue
            if _name(node) == "notify":
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("markup"), ast.Constant) and kw["markup"].value is False):
                    bad.append(f"{path.name}:{node.lineno} notify without markup=False")
                continue          # plain text (markup off): a formatted message is fine
            for arg in node.args:
                if isinstance(arg, ast.JoinedStr) or (isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod)) or (
                        isinstance(arg, ast.Call) and _name(arg) == "format"):
                    bad.append(f"{path.name}:{node.lineno}")
    assert bad == []


def test_every_binding_is_described_and_documented():
    doc = (ROOT / "docs" / "tui.md").read_text()
    classes = [app.OtwatchApp, listpane.ListPane, assets.AssetsPane, assets.AssetDetail, comms.CommsPane,
               alerts.AlertsPane, alerts.AlertDetail, policy.PolicyPane, overview.OverviewPane,
               talkmap.TalkMap]
    missing = []
    for cls in classes:
        for b in cls.BINDINGS:
            assert b.description, (cls.__name__, b.key)
            key = b.key.split(",")[0]
            if f"`{SHOWN.get(key, key)}`" not in doc:
                missing.append(f"{cls.__name__}: {b.key} ({b.description})")
    assert missing == []
