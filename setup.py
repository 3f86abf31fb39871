"""Build hook: compile the pure-Python-mode kernels in ext/ with Cython.

The kernel sources (ext/engine.py, ext/modbus.py, ...) are ordinary Python
modules annotated for Cython's pure-Python mode.  They are importable as they
are (the pure path) and compiled here into ``otwatch.ext._<name>`` (the fast
path).  One source, two builds: the paths cannot drift.

OTWATCH_SKIP_EXTENSIONS=1 skips compilation (a machine with no C compiler);
OTWATCH_REQUIRE_EXTENSIONS=1 makes a failed compile an install error.
"""
import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ext.build import extensions  # noqa: E402

setup(ext_modules=extensions())
