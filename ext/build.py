"""Which kernels are compiled, and how (read by setup.py).

Each entry names a pure-Python-mode source in ext/ and is compiled into
``otwatch.ext._<name>``.  The source itself stays importable as
``otwatch.ext.<name>``: that is the pure path, chosen by ``otwatch.ext.load``.
"""
from __future__ import annotations

import os

KERNELS = ("engine", "modbus", "mqtt", "opcua")

PCAP_HEADER_DIRS = ("/usr/include", "/usr/local/include")


def have_libpcap() -> bool:
    """libpcap's headers are installed (Debian: libpcap-dev): build the live capture module."""
    if os.environ.get("OTWATCH_NO_LIBPCAP"):
        return False
    return any(os.path.exists(os.path.join(d, "pcap", "pcap.h")) for d in PCAP_HEADER_DIRS)

HERE = os.path.dirname(os.path.abspath(__file__))


def extensions():
    if os.environ.get("OTWATCH_SKIP_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        if os.environ.get("OTWATCH_REQUIRE_EXTENSIONS"):
            raise
        return []
    mods = [
        Extension(f"otwatch.ext._{name}", [os.path.join("ext", f"{name}.py")])
        for name in KERNELS
        if os.path.exists(os.path.join(HERE, f"{name}.py"))
    ]
    if have_libpcap():
        # live capture (compiled only, links libpcap): ext/capture.pyx; without the headers the
        # sensor captures through sensor/live/afpacket.py instead (docs/deployment.md)
        mods.append(Extension("otwatch.ext._capture", [os.path.join("ext", "capture.pyx")], libraries=["pcap"]))
    return cythonize(
        mods,
        # ext/include/otwatch/ext/_engine.pxd: C declarations for the compiled engine (Cython
        # looks a module's .pxd up by its package path, otwatch.ext._engine)
        include_path=[os.path.join(HERE, "include")],
        language_level=3,
        compiler_directives={
            # bounds stay checked: the kernels index attacker-controlled bytes
            "boundscheck": True,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": True,
        },
        quiet=True,
    )
