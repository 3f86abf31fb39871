"""The capture module is built wherever libpcap's headers are, and writes what the engine reads."""
from __future__ import annotations

import importlib.util
import os
import struct

import pytest

from otwatch.sensor.live.capture import describe, libpcap_module

_spec = importlib.util.spec_from_file_location(
    "_b", os.path.join(os.path.dirname(__file__), "..", "..", "..", "ext", "build.py"))
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)


def test_built_when_libpcap_is_there():
    if not _build.have_libpcap():
        pytest.skip("libpcap headers not installed")
    if os.environ.get("OTWATCH_REQUIRE_EXTENSIONS"):
        assert libpcap_module() is not None, "libpcap-dev is installed but ext/capture.pyx was not built"
    if libpcap_module() is not None:
        assert describe().startswith("libpcap (libpcap version")


def test_header_is_a_pcap_header_the_engine_accepts():
    m = libpcap_module()
    if m is None or os.geteuid() != 0:
        pytest.skip("needs the compiled capture module and root")
    cap = m.PcapCapture("lo", 1500, "", 1 << 20, False, 10)
    try:
        buf = bytearray(1 << 20)
        assert cap.header(buf) == 24
        magic, vmaj, vmin, _z, _s, snap, lt = struct.unpack("=IHHiIII", bytes(buf[:24]))
        assert (magic, vmaj, vmin, snap, lt) == (0xA1B23C4D, 2, 4, 1500, cap.linktype)
        from otwatch.ext import load

        eng = load("engine").Engine({}, __import__("otwatch.parsers.limits", fromlist=["x"]).DEFAULT_LIMITS,
                                    {}, {}, False, 60.0)
        assert eng.feed(buf, False, 24) == 24      # the engine takes it as a (nanosecond) pcap
        with pytest.raises(ValueError):
            cap.dispatch(bytearray(100), 0)       # no room for one packet: refused, not overrun
    finally:
        cap.close()
