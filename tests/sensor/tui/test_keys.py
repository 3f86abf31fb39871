"""docs/keys.md is what sensor/tui/keys.py generates from the bindings, and the generator misses no screen.

When this fails after a key was added or changed: ``python -m otwatch.sensor.tui.keys > docs/keys.md``.
"""
from __future__ import annotations

import importlib
import inspect
import pathlib

from otwatch.sensor.tui import keys
from otwatch.sensor.tui.app import SCREENS, OtwatchApp
from otwatch.sensor.tui.widgets import KeyTable

ROOT = pathlib.Path(__file__).resolve().parents[3]
TUI = ROOT / "sensor" / "tui"


def test_docs_keys_md_is_generated_from_the_bindings():
    doc = (ROOT / "docs" / "keys.md").read_text(encoding="utf-8")
    assert doc == keys.markdown(), "docs/keys.md is out of date: python -m otwatch.sensor.tui.keys > docs/keys.md"


def _binding_classes():
    """Every class in sensor/tui/ that declares key bindings of its own."""
    for path in sorted(TUI.glob("*.py")):
        mod = importlib.import_module(f"otwatch.sensor.tui.{path.stem}")
        for _name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == mod.__name__ and cls.__dict__.get("BINDINGS"):
                yield cls


def test_every_binding_of_every_screen_and_widget_is_in_a_section():
    listed = {(b.key, b.action, b.description) for _t, _w, bs in keys.sections() for b in bs}
    classes = list(_binding_classes())
    assert len(classes) >= 12
    missing = [f"{cls.__name__}: {b.key} -> {b.action}" for cls in classes for b in cls.__dict__["BINDINGS"]
               if (b.key, b.action, b.description) not in listed and cls is not KeyTable]
    assert missing == []
    for _t, _w, bs in keys.sections():
        assert all(b.description for b in bs)
    # the table keys the docs and the help screen list name every binding of KeyTable
    table = {k.strip() for b in keys.TABLE_KEYS for k in b.key.split(",")}
    assert {b.key for b in KeyTable.BINDINGS} <= table


def test_palette_commands_are_the_apps():
    for name, method, _args, what in keys.PALETTE:
        assert callable(getattr(OtwatchApp, method)), name
        assert name and what
    screens = [(n, a) for n, m, a, _w in keys.PALETTE if m == "action_show"]
    assert screens == [(f"screen: {label.split(' ', 1)[1]}", (key,)) for key, label, _c in SCREENS]


def test_tui_md_links_keys_md():
    assert "keys.md" in (ROOT / "docs" / "tui.md").read_text(encoding="utf-8")
