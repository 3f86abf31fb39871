"""Cython fast path: one source per kernel, compiled or interpreted.

The kernels (``engine``, ``modbus``, ``mqtt``, ``opcua``) are written in
Cython's pure-Python mode.  ``setup.py`` compiles each into
``otwatch.ext._<name>``; the ``.py`` source is the pure path.  The choice is
made once, at import time (the yarl/multidict pattern):

* ``OTWATCH_NO_EXTENSIONS=1`` forces the pure path;
* ``OTWATCH_REQUIRE_EXTENSIONS=1`` makes a missing compiled kernel an error;
* otherwise the compiled kernels are used when all of them import.

``IMPLEMENTATION`` is ``"compiled"`` or ``"pure"``; ``otwatch version`` prints it.
"""
from __future__ import annotations

import importlib
import os

from .build import KERNELS

NO_EXTENSIONS = bool(os.environ.get("OTWATCH_NO_EXTENSIONS"))
REQUIRE_EXTENSIONS = bool(os.environ.get("OTWATCH_REQUIRE_EXTENSIONS"))

if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    raise RuntimeError("OTWATCH_NO_EXTENSIONS and OTWATCH_REQUIRE_EXTENSIONS are both set")


def load(name: str, implementation: str | None = None):
    """Return the kernel module *name* for the chosen (or given) implementation."""
    impl = implementation or IMPLEMENTATION
    if name not in KERNELS:
        raise KeyError(name)
    if impl == "compiled":
        return importlib.import_module(f"{__name__}._{name}")
    return importlib.import_module(f"{__name__}.{name}")


def _choose() -> tuple[str, str | None]:
    if NO_EXTENSIONS:
        return "pure", None
    missing = []
    for name in KERNELS:
        try:
            importlib.import_module(f"{__name__}._{name}")
        except ImportError as exc:  # not built, or built for another Python
            missing.append(f"{name}: {exc}")
    if missing:
        if REQUIRE_EXTENSIONS:
            raise ImportError(
                "OTWATCH_REQUIRE_EXTENSIONS=1 but compiled kernels are missing: " + "; ".join(missing)
            )
        return "pure", "; ".join(missing)
    return "compiled", None


# Chosen last, once ``load`` exists: a kernel's imports may reach back into this
# package (parsers.<proto>.connection imports ``load``) while we are choosing.
IMPLEMENTATION, WHY_PURE = "pure", None
IMPLEMENTATION, WHY_PURE = _choose()
