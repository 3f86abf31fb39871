"""Open a live capture: libpcap (compiled, TPACKET_V3 ring, BPF) or the AF_PACKET fallback.

Both give the same interface (see ext/capture.pyx): ``linktype``, ``header(buf)``,
``dispatch(buf, start) -> (end, packets)``, ``stats()``, ``fileno()``, ``close()``.
"""
from __future__ import annotations

import os


def libpcap_module():
    """The compiled libpcap capture module, or None (not built: no compiler or no libpcap-dev)."""
    if os.environ.get("OTWATCH_NO_LIBPCAP"):
        return None
    try:
        from otwatch.ext import _capture
    except ImportError:
        return None
    return _capture


def describe() -> str:
    m = libpcap_module()
    return f"libpcap ({m.lib_version()})" if m else "AF_PACKET fallback (libpcap module not built)"


def open_live(device: str, snaplen: int = 65535, bpf: str = "", buffer_bytes: int = 32 * 1024 * 1024,
              promisc: bool = True, timeout_ms: int = 100):
    """Open *device*; raises OSError with one line that says why it could not."""
    m = libpcap_module()
    if m is not None:
        return m.PcapCapture(device, snaplen, bpf, buffer_bytes, promisc, timeout_ms)
    from .afpacket import AFPacketCapture

    return AFPacketCapture(device, snaplen, bpf, buffer_bytes, promisc, timeout_ms)
