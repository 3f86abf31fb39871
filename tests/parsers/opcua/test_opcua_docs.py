"""Everything the parser can emit is documented in docs/protocols/opcua.md."""
from __future__ import annotations

import pathlib
from otwatch.ext import opcua as kernel
from otwatch.parsers.opcua import connection, events

DOC = (pathlib.Path(__file__).resolve().parents[3] / "docs" / "protocols" / "opcua.md").read_text()


def test_every_anomaly_id_documented():
    for aid in (*kernel.ANOMALY_IDS, connection.NOT_OPCUA):
        assert f"`{aid}`" in DOC, aid


def test_every_event_class_documented():
    for name in events.__all__:
        if name in ("OPCUAEvent", "OPCUAService"):  # base classes
            continue
        if name.startswith("OPCUA") and not any(s in name for s in ("Request", "Response")):
            assert name in DOC, name
