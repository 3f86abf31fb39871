"""safe_text: wire strings become inert Text (no control characters, no markup, no bidi tricks)."""
from __future__ import annotations

import pytest
from rich.text import Text

from otwatch.sensor.tui.safe import clean, safe_text

CASES = [
    ("plc1", "plc1"),
    ("\x1b[2J", "\\x1b[2J"),
    ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
    ("A\rB", "A\\x0dB"),
    ("\x9b31m", "\\x9b31m"),                      # C1 CSI
    ("[@click=app.quit]PLC", "[@click=app.quit]PLC"),
    ("[red]x[/]", "[red]x[/]"),
    ('[link="x"]y', '[link="x"]y'),
    ("\u202eTXT", "<U+202E>TXT"),
    ("a\u200bb", "a<U+200B>b"),
    (b"\xff\x1b", "\\x5cxff\\x1b"),     # backslashreplace, then the backslash itself escaped
    (None, ""),
    (42, "42"),
]


@pytest.mark.parametrize("raw,shown", CASES)
def test_clean(raw, shown):
    assert clean(raw) == shown


def test_safe_text_is_text_not_markup():
    t = safe_text("[bold]x[/bold] [@click=app.quit]q")
    assert isinstance(t, Text)
    assert t.plain == "[bold]x[/bold] [@click=app.quit]q"
    assert not t.spans


def test_long_value_is_cut():
    t = safe_text("x" * 10_000)
    assert len(t.plain) < 300 and t.plain.endswith("…[+9744]")
