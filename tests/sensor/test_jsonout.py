"""JSON lines sink (sensor/jsonout.py): orjson's output kept equal to the standard library's
``json.dumps(ensure_ascii=True)`` of the former converter, escaping rules included."""
from __future__ import annotations

import dataclasses
import enum
import io
import json
from pathlib import Path

import pytest

from otwatch.sensor import jsonout
from otwatch.sensor import observations as O

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"


def reference(obj):
    """The converter jsonout used before orjson (kept here as the oracle)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return obj.name.lower()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        t = getattr(type(obj), "type", None)
        d = {"type": t} if isinstance(t, str) else {"event": type(obj).__name__}
        for f in dataclasses.fields(obj):
            if f.name not in jsonout._UNWRITTEN:     # key; Aggregate's in-process peak fields
                d[f.name] = reference(getattr(obj, f.name))
        return d
    if isinstance(obj, dict):
        return {str(k): reference(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [reference(v) for v in obj]
    return str(obj)


def ref_line(obj) -> str:
    return json.dumps(reference(obj), separators=(",", ":"))


class Colour(enum.Enum):
    DARK_RED = 1


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass(frozen=True)
class Ev:
    text: str
    raw: bytes
    colour: Colour
    level: Level
    items: tuple
    big: int
    mapping: dict


HOSTILE = ["plain", "c1\x9b2J csi", "nel\x85", "ls\u2028ps\u2029", "esc\x1b]0;x\x07", "tab\tnl\n\x00\x7f",
           "é ü ß", "emoji \U0001F600", "quote\" back\\slash", "</script>"]


@pytest.mark.parametrize("text", HOSTILE)
def test_attacker_strings_are_escaped_like_ensure_ascii(text):
    obs = O.NameSeen(1.5, 7, text, "10.0.0.1", "", "dns")
    line = jsonout.dumps(obs)
    assert line == ref_line(obs)
    assert line.isascii()
    for c in ("\x9b", "\x85", "\u2028", "\u2029", "\x1b", "\n"):
        assert c not in line
    assert json.loads(line)["name"] == text


def test_nested_events_enums_bytes_and_big_integers_match_the_reference():
    ev = Ev("x\u2028", b"\x00\xff", Colour.DARK_RED, Level.HIGH, (1, b"\x01", (Colour.DARK_RED, "y\x9b")),
            2 ** 70, {1: "a", "b": [b"\x02"]})
    msg = O.Message(1.0, 2, "modbus", "k", "read", "t", "request", 1, 2, "a", "b", 502, ev, key=(1, 2))
    line = jsonout.dumps(msg)                # the 70-bit integer goes through the standard library
    assert line == ref_line(msg)
    assert "key" not in json.loads(line)
    small = dataclasses.replace(ev, big=5)
    msg = O.Message(1.0, 2, "modbus", "k", "read", "t", "request", 1, 2, "a", "b", 502, small, key=(1, 2))
    assert jsonout.dumps(msg) == ref_line(msg)
    assert json.loads(jsonout.dumps(msg))["event"]["colour"] == "dark_red"
    assert json.loads(jsonout.dumps(msg))["event"]["level"] == 3


def test_lone_surrogate_falls_back_to_the_standard_library():
    obs = O.NameSeen(1.0, 1, "bad\udc80", "", "", "dns")
    assert jsonout.dumps(obs) == ref_line(obs)


def test_floats_are_the_same_number():
    obs = O.IntervalEnd(1e-7, 1700000000.123456)
    assert json.loads(jsonout.dumps(obs)) == json.loads(ref_line(obs))


@pytest.mark.parametrize("every", [False, True])
def test_whole_captures_are_byte_identical_to_the_reference(every):
    from otwatch.sensor.pipeline import Pipeline, Settings

    got, want = io.StringIO(), []

    class Ref:
        def observe(self, o):
            want.append(ref_line(o))

    sink = jsonout.JSONLines(got)
    p = Pipeline([sink, Ref()], Settings(detail_all=every))
    for f in ("demo-plant.pcap", "opcua-security.pcap", "protocol-corners.pcap.gz"):
        p.run_file(str(PCAPS / f))
    p.finish()
    lines = got.getvalue().splitlines()
    assert len(want) > 1000
    assert lines[1:] == want
