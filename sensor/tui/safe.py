"""Wire strings made inert for the terminal: ``safe_text(value) -> rich.text.Text``.

Every field that came off the wire (asset names, MQTT topics and client ids,
OPC UA names and certificate subjects, Modbus device identification) goes
through here before any widget sees it:

* ``otwatch.parsers.common.escape`` turns C0, DEL, C1 (ESC included), U+2028/9
  and backslashes into visible ``\\xNN`` escapes and cuts to *limit*;
* bidi controls and zero-width characters become ``<U+202E>`` (they can make
  one name look like another);
* the result is a ``Text`` (never parsed as markup): ``[bold]``, ``[@click=…]``
  or ``[link=…]`` in the data stay literal text.

The raw value stays the truth (the models keep it); only the display is cleaned.
"""
from __future__ import annotations

import re

from rich.text import Text

from otwatch.parsers.common import escape

LIMIT = 256
"""Characters shown of one wire string (a 10,000-character topic must not fill the screen)."""

_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
"""Zero-width (U+200B–U+200F, U+2060–U+2064, U+FEFF) and bidi controls (U+202A–U+202E, U+2066–U+2069)."""


def clean(value, limit: int = LIMIT) -> str:
    """The display form of a wire string, as plain text (no control, bidi or zero-width characters)."""
    if value is None:
        return ""
    if not isinstance(value, (str, bytes, bytearray, memoryview)):
        value = str(value)
    s = escape(value, limit)
    return _INVISIBLE.sub(lambda m: "<U+%04X>" % ord(m.group()), s)


def safe_text(value, limit: int = LIMIT, style: str = "") -> Text:
    """``clean(value)`` as a one-line Rich ``Text`` (ellipsis when cut by the layout)."""
    return Text(clean(value, limit), style=style, no_wrap=True, overflow="ellipsis", end="")


__all__ = ["clean", "safe_text", "LIMIT"]
