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


def test_umas_table_matches_spec():
    rows = [line for line in DOC.splitlines() if re.match(r"\| 0x[0-9A-F]{2} \| `", line)]
    assert rows == ["| 0x%02X | `%s` | %s | %s |" % (code, name, desc, cls)
                    for code, (name, desc, cls) in sorted(spec.UMAS_FUNCTIONS.items())]
    assert {cls for _n, _d, cls in spec.UMAS_FUNCTIONS.values()} == {"session", "read", "write", "program"}
    assert {spec.umas_function_name(c) for c in (0x40, 0x41, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35)
            if spec.umas_class(c) == "program"} == {
        "start_plc", "stop_plc", "initialize_upload", "upload_block", "end_strategy_upload",
        "initialize_download", "download_block", "end_strategy_download"}


def test_anomaly_ids_documented():
    table = dict(re.findall(r"^\| `(modbus\.[a-z_]+)` \| (.*) \|$", DOC, re.M))
    assert set(table) == set(spec.ANOMALIES)


def test_emitted_anomaly_ids_are_declared():
    src = (ROOT / "ext" / "modbus.py").read_text() + (ROOT / "parsers" / "modbus" / "connection.py").read_text()
    used = set(re.findall(r'"(modbus\.[a-z_]+)"', src))
    assert used and used <= set(spec.ANOMALIES)
    assert used == set(spec.ANOMALIES)
