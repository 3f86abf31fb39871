"""JSON lines sink: one observation per line (schema in docs/observations.md).

Output is deterministic: the same capture gives byte-identical lines with the
compiled and the pure kernels (tested).  ``ensure_ascii`` keeps every
attacker-controlled character as a ``\\u`` escape, so a line is safe to show on
a terminal or feed to a log shipper.
"""
from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, TextIO

from .observations import SCHEMA_VERSION


def jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return obj.name.lower()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        d = {}
        t = getattr(type(obj), "type", None)
        if isinstance(t, str):
            d["type"] = t
        else:
            d["event"] = type(obj).__name__
        for f in dataclasses.fields(obj):
            if f.name == "key":
                continue
            d[f.name] = jsonable(getattr(obj, f.name))
        return d
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    return str(obj)


class JSONLines:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.stream.write(json.dumps({"type": "header", "schema": SCHEMA_VERSION, "producer": "otwatch"}) + "\n")

    def observe(self, obs) -> None:
        self.stream.write(json.dumps(jsonable(obs), separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.stream.flush()
