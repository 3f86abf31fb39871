"""docs/observations.md documents every observation type, every field, and every engine anomaly id."""
from __future__ import annotations

import dataclasses
import pathlib
import re

from otwatch.sensor import observations as O

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "observations.md").read_text()


def _section(type_id: str) -> str:
    m = re.search(r"^### `%s` — (\w+)\n(.*?)(?=^##+ |\Z)" % re.escape(type_id), DOC, re.S | re.M)
    assert m, f"docs/observations.md has no section for {type_id}"
    return m.group(2)


def test_every_type_and_field_is_documented():
    for cls in O.ALL_TYPES:
        sec = _section(cls.type)
        documented = set(re.findall(r"^\| (\w+) \|", sec, re.M)) - {"field"}
        fields = {f.name for f in dataclasses.fields(cls)} - {"key"}
        assert fields == documented, (cls.__name__, fields ^ documented)


def test_engine_anomaly_ids_are_documented():
    src = (ROOT / "ext" / "engine.py").read_text()
    ids = set(re.findall(r'"((?:capture|dispatch|tcp|ip)\.[a-z_]+)"', src))
    ids = {i for i in ids if not i.startswith(("dispatch.detected.", "dispatch.rejected."))}
    anomalies = {i for i in ids if re.search(r'_anomaly\([^)]*"%s"|"%s",\n' % (re.escape(i), re.escape(i)), src)}
    anomalies |= {"dispatch.detected_by_content"}
    anomalies |= {i for i in ids if re.search(r'_flow_anomaly\([^\n]*\n?[^\n]*"%s"' % re.escape(i), src)}
    assert "tcp.overlap_inconsistent" in anomalies
    flow_ids = set(re.findall(r'"(flow\.[a-z_]+)"', src))     # raised per flow (anomaly sampling)
    assert flow_ids == {"flow.anomalies_suppressed"}
    anomalies |= flow_ids
    for aid in anomalies:
        assert f"`{aid}`" in DOC, aid
