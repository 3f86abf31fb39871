"""JSON lines sink: one observation per line (schema in docs/observations.md).

Output is deterministic: the same capture gives byte-identical lines with the
compiled and the pure kernels (tested).  Every character outside ASCII is
written as a ``\\u`` escape (as ``json.dumps(ensure_ascii=True)`` writes it), so
a line is safe to show on a terminal or feed to a log shipper: C1 controls
(an 8-bit CSI, U+009B, moves a terminal's cursor) and U+2028/U+2029 (line
breaks to JavaScript and some log shippers) never appear raw.

Encoding is done by orjson (Rust; ~10x the standard library on these
objects).  Two steps keep its output equal to the standard library's:

* ``to_plain`` turns an observation into dicts, lists, str, int, float, bool
  and None with one generated function per dataclass (one dict display: the
  ``type`` or ``event`` tag, every field but ``key``); fields annotated as plain
  values are passed as they are (orjson writes tuples of them as arrays), the
  others converted.  Should orjson refuse a line (a value that is not what its
  annotation says), the line is converted again trusting nothing.
* a line that orjson writes with non-ASCII bytes or DEL (rare: only strings
  off the wire carry them) has those characters rewritten as ``\\u`` escapes
  (UTF-16 surrogate pairs above U+FFFF), which is what ``ensure_ascii`` does; a value
  orjson refuses (an integer beyond 64 bits, a lone surrogate) is written by
  the standard library instead.

Differences from the standard library (docs/observations.md): floats below
1e-4 or from 1e16 are written in orjson's exponent form (``1e-7``, not
``1e-07``; the same number), and NaN and infinities as ``null`` (the standard
library wrote ``NaN``/``Infinity``, which are not JSON).
"""
from __future__ import annotations

import dataclasses
import enum
import json
import re
from typing import Any, TextIO

import orjson

from . import observations as O
from .observations import SCHEMA_VERSION

_PLAIN = (str, int, float, bool, type(None))
_ESCAPED = re.compile("[^\x00-\x7e]")        # what ensure_ascii escapes that orjson writes raw (DEL too)
_STDLIB = json.JSONEncoder(separators=(",", ":"))     # ensure_ascii=True is its default


def _u_escape(m: re.Match) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000
    return f"\\u{0xD800 | (c >> 10):04x}\\u{0xDC00 | (c & 0x3FF):04x}"


_TRUSTED = frozenset({
    "str", "int", "float", "bool", "str | None", "int | None", "float | None", "bool | None",
    "tuple[int, ...]", "tuple[str, ...]", "tuple[str | None, ...]",
    "tuple[tuple[int, int], ...]", "tuple[tuple[str, str], ...]",
    "UserProperties",       # parsers.mqtt.events: tuple[tuple[str, str], ...]
    "Properties",           # parsers.mqtt.events: (name, int | str | bytes) pairs; bytes make orjson refuse
})                          # the line, which is then converted in full (the same output)
"""Field annotations whose values orjson writes as the former converter did (plain
values, tuples of them as arrays): such fields are passed through unconverted."""


def _plan(cls: type, careful: bool, convert):
    """A function writing one dataclass type as a dict: its ``type`` (observations)
    or ``event`` (parser events, the class name) tag, every field but ``key``.
    Made once per class (a bounded set) as one dict display, no loop per field.
    ``careful`` converts every field (the path taken when orjson refused a value
    that an annotation promised would be plain)."""
    t = getattr(cls, "type", None)
    tag = ("type", t) if isinstance(t, str) else ("event", cls.__name__)
    items = [f"{tag[0]!r}: {tag[1]!r}"]
    for f in dataclasses.fields(cls):
        if f.name == "key":
            continue
        ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if not careful and ann in _TRUSTED:
            items.append(f"{f.name!r}: o.{f.name}")
        else:
            items.append(f"{f.name!r}: (v if type(v := o.{f.name}) in P else c(v))")
    src = "def conv(o):\n    return {" + ", ".join(items) + "}\n"
    ns = {"c": convert, "P": _PLAIN}
    exec(src, ns)       # noqa: S102 - source built from dataclass field names (identifiers) only
    return ns["conv"]


def _converter(careful: bool):
    """The recursive converter, with its own table of generated per-class functions."""
    plans: dict[type, Any] = {}

    def convert(obj: Any) -> Any:
        cls = type(obj)
        if cls in _PLAIN:
            return obj
        conv = plans.get(cls)
        if conv is not None:
            return conv(obj)
        if cls is tuple or cls is list:
            return [v if type(v) in _PLAIN else convert(v) for v in obj]
        if isinstance(obj, _PLAIN):          # subclasses of the plain types: an IntEnum is its number
            return obj
        if isinstance(obj, enum.Enum):
            return obj.name.lower()
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return bytes(obj).hex()
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            conv = plans[cls] = _plan(cls, careful, convert)   # one per class: a bounded set
            return conv(obj)
        if isinstance(obj, dict):
            return {str(k): convert(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple, set, frozenset)):
            return [convert(v) for v in obj]
        return str(obj)

    return convert


to_plain = _converter(careful=False)
to_plain.__doc__ = """An observation (or any value in one) as JSON types for orjson: enums by
lower-case name, bytes as hex, dataclasses as dicts tagged with ``type`` (or
``event``, the class name), sets as lists, anything else as ``str()``; fields
annotated as plain values (``_TRUSTED``) passed through as they are."""
_careful = _converter(careful=True)     # trusting no annotation: every value converted


def jsonable(obj: Any) -> Any:
    """Every value as plain JSON types (nothing trusted): what ``dumps`` encodes."""
    return _careful(obj)


def dumps(obj: Any) -> str:
    """One compact JSON text of ``obj``, all non-ASCII as ``\\u`` escapes (no newline)."""
    try:
        b = orjson.dumps(to_plain(obj))
    except TypeError:
        return _dumps_careful(obj)
    return _text(b)


def _dumps_careful(obj: Any) -> str:
    plain = _careful(obj)            # a value where its annotation promised a plain one
    try:
        b = orjson.dumps(plain)
    except TypeError:                # > 64-bit integer, lone surrogate: the standard library
        return _STDLIB.encode(plain)
    return _text(b)


def _text(b: bytes) -> str:
    """orjson's bytes as the text ``ensure_ascii`` would have written."""
    if b.isascii() and b"\x7f" not in b:
        return b.decode("ascii")
    return _ESCAPED.sub(_u_escape, b.decode("utf-8"))


def _aggregate_rows_plan():
    """``(batch, write, dumps, text, option, careful)``: writes the ``aggregate`` line of every row of
    a ``LinkAggregates``, the dict ``to_plain`` gives for its ``Aggregate`` (the same keys in the same
    order), generated from ``Aggregate``'s fields.  One dict per batch: the link's fields set once,
    the row's replaced for each row before it is encoded (orjson keeps a dict's order); a row whose
    line orjson refuses is handed to *careful* ``(batch, row)``."""
    items, targets = [f"'type': {O.Aggregate.type!r}"], {}
    for f in dataclasses.fields(O.Aggregate):
        if f.name == "key":
            continue
        if f.type not in _TRUSTED:       # a field to_plain would convert: not what this plan writes
            raise TypeError(f"Aggregate.{f.name}: {f.type} is not a plain type")
        if f.name in O.AGGREGATE_LINK:
            items.append(f"{f.name!r}: b.{f.name}")
        else:
            if f.name not in O.AGGREGATE_ROW:
                raise TypeError(f"Aggregate.{f.name} is in neither AGGREGATE_ROW nor AGGREGATE_LINK")
            items.append(f"{f.name!r}: None")
            targets[f.name] = f"d[{f.name!r}]"
    unpack = ", ".join(targets.get(name, "_") for name in O.AGGREGATE_ROW)
    src = ("def rows(b, write, dumps, text, option, careful):\n"
           "    d = {" + ", ".join(items) + "}\n"
           "    for r in b.rows:\n"
           f"        {unpack} = r\n"
           "        try:\n"
           "            write(text(dumps(d, option=option)))\n"
           "        except TypeError:       # a value orjson refuses: this line converted in full\n"
           "            careful(b, r)\n")
    ns: dict = {}
    exec(src, ns)   # noqa: S102 - field names only
    return ns["rows"]


_aggregate_rows = _aggregate_rows_plan()


class JSONLines:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.stream.write(json.dumps({"type": "header", "schema": SCHEMA_VERSION, "producer": "otwatch"}) + "\n")

    def observe(self, obs) -> None:
        self.stream.write(dumps(obs) + "\n")

    def observe_aggregates(self, b: O.LinkAggregates) -> None:
        """One ``aggregate`` line per row, the lines ``observe`` writes for ``b.each()``."""
        # Each line written as soon as it is made: orjson's output held for a whole batch (thousands
        # of rows) cost several times more per line (allocator churn; measured, docs/performance.md).
        _aggregate_rows(b, self.stream.write, orjson.dumps, _text, orjson.OPT_APPEND_NEWLINE, self._careful_row)

    def _careful_row(self, b: O.LinkAggregates, r: tuple) -> None:
        one = O.LinkAggregates(b.protocol, b.link_id, b.client, b.server, b.server_port, (r,))
        self.stream.write(_dumps_careful(next(one.each())) + "\n")

    def close(self) -> None:
        self.stream.flush()
