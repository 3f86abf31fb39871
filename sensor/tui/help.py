"""The help screen, generated from the active bindings (so it cannot go stale)."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def key_name(app, key: str) -> str:
    try:
        return app.get_key_display(Binding(key, ""))
    except Exception:   # noqa: BLE001 - older Textual
        return key


def bindings_text(app, groups) -> Text:
    """``groups``: [(title, [Binding, ...])] → one section per group, one line per binding."""
    out = Text()
    for title, bindings in groups:
        out.append(f"{title}\n", style="bold underline")
        seen = set()
        for b in bindings:
            if not b.description or (b.key, b.action) in seen:
                continue
            seen.add((b.key, b.action))
            keys = ", ".join(key_name(app, k.strip()) for k in b.key.split(","))
            out.append(f"  {keys:<16}", style="bold")
            out.append(f"{b.description}\n")
        out.append("\n")
    return out


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(bindings_text(self.app, self.groups), markup=False)

    def action_dismiss(self) -> None:
        self.app.pop_screen()
