"""The attack-scenario capture (pcaps/attack-scenarios.pcap) and its normal part, for tests that learn then detect.

``normal_part(dest)`` writes the capture's first ``normal_fraction`` (attack-scenarios.json: no attack
inside it) to *dest* as a classic pcap and returns *dest*; ``windows()`` is the JSON (attack name ->
[start, end] packet times).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"
CAPTURE = PCAPS / "attack-scenarios.pcap"
PCAP_HEADER = 24         # classic pcap global header
RECORD_HEADER = 16       # ts_sec, ts_usec, incl_len, orig_len


def windows() -> dict:
    return json.loads((PCAPS / "attack-scenarios.json").read_text())


def prefix_before(pcap: bytes, cut: float) -> bytes:
    """The records of a little-endian microsecond pcap whose time is before *cut*."""
    pos = PCAP_HEADER
    while pos + RECORD_HEADER <= len(pcap):
        sec, us, incl, _ = struct.unpack_from("<IIII", pcap, pos)
        if sec + us / 1e6 >= cut:
            break
        pos += RECORD_HEADER + incl
    return pcap[:pos]


def normal_part(dest: Path) -> Path:
    w = windows()
    cut = w["start"] + w["normal_fraction"] * (w["end"] - w["start"])
    dest.write_bytes(prefix_before(CAPTURE.read_bytes(), cut))
    return dest
