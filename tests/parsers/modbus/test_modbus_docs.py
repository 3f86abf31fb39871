"""docs/protocols/modbus.md cannot go stale: its function table and anomaly
list are checked against spec, and every anomaly id the code emits is listed."""
from __future__ import annotations

import pathlib
import re

from otwatch.parsers.modbus import spec

ROOT = pathlib.Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "protocols" / "modbus.md").read_text(encoding="utf-8")


def _row(fc: int) -> str:
    detailed = " ".join(name for name, t in (("request", spec.MSG_REQUEST), ("response", spec.MSG_RESPONSE))
                        if spec.always_detailed(fc, t)) or "—"
    return "| %d | %s | `%s` | %s | %s | %s |" % (
        fc, spec.function_name(fc), spec.function_kind(fc), spec.op_class(fc), spec.table(fc) or "—", detailed)


def test_function_table_matches_spec():
    rows = [line for line in DOC.splitlines() if re.match(r"\| \d+ \| ", line)]
    assert rows == [_row(fc) for fc in sorted(spec.FUNCTION_NAMES)]


def test_anomaly_ids_documented():
    table = dict(re.findall(r"^\| `(modbus\.[a-z_]+)` \| (.*) \|$", DOC, re.M))
    assert set(table) == set(spec.ANOMALIES)


def test_emitted_anomaly_ids_are_declared():
    src = (ROOT / "ext" / "modbus.py").read_text() + (ROOT / "parsers" / "modbus" / "connection.py").read_text()
    used = set(re.findall(r'"(modbus\.[a-z_]+)"', src))
    assert used and used <= set(spec.ANOMALIES)
    assert used == set(spec.ANOMALIES)
