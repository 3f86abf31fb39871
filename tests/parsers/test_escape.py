"""parsers.common.escape: its fast path (nothing to escape, one regex scan) gives exactly what the
character loop gives, on any text or bytes and any limit."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from otwatch.parsers.common import escape


def reference(text, limit=256):
    """The per-character definition (what escape() did before its fast path)."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "backslashreplace")
    out = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0 or ch == "\\" or o in (0x2028, 0x2029):
            out.append("\\x%02x" % o if o < 0x100 else "\\u%04x" % o)
        else:
            out.append(ch)
    s = "".join(out)
    if len(s) > limit:
        s = s[:limit] + "…[+%d]" % (len(s) - limit)
    return s


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=60), st.text(max_size=60)), st.integers(0, 80))
def test_escape_matches_the_character_loop(text, limit):
    assert escape(text, limit) == reference(text, limit)


def test_escape_cases():
    for text in ("plain", "a\\b", "esc\x1b[31m", "del\x7f", "c1\x85", "ls\u2028ps\u2029", "é😀", b"\xff\xfe",
                 "x" * 300):
        assert escape(text) == reference(text)
        assert escape(text, 3) == reference(text, 3)
    assert escape("esc\x1b") == "esc\\x1b"
    assert escape("ok") == "ok"
    assert escape("abcdef", 3) == "abc…[+3]"
