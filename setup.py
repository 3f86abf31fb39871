"""Build hook: compile the pure-Python-mode kernels in ext/ with Cython.

The kernel sources (ext/engine.py, ext/modbus.py, ...) are ordinary Python
modules annotated for Cython's pure-Python mode.  They are importable as they
are (the pure path) and compiled here into ``otwatch.ext._<name>`` (the fast
path).  One source, two builds: the paths cannot drift.

Without a working C compiler the install still succeeds, with a warning, and
otwatch runs on the pure path (``otwatch version`` says so).
OTWATCH_REQUIRE_EXTENSIONS=1 turns a failed compile into an install error;
OTWATCH_SKIP_EXTENSIONS=1 does not try.
"""
import importlib.util
import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# Load ext/build.py by path: importing the ext package would run its kernel
# chooser, which (with OTWATCH_REQUIRE_EXTENSIONS=1) refuses to start before the
# kernels are built.
_spec = importlib.util.spec_from_file_location(
    "_otwatch_ext_build", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ext", "build.py"))
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)
extensions = _build.extensions


class optional_build_ext(build_ext):
    def _fallback(self, exc):
        if os.environ.get("OTWATCH_REQUIRE_EXTENSIONS"):
            raise exc
        sys.stderr.write(
            "\n*** otwatch: could not compile the Cython kernels (%s).\n"
            "*** Installing the pure-Python path; it gives the same results, slower.\n"
            "*** Install a C compiler and the Python headers (e.g. apt install gcc python3-dev) and reinstall\n"
            "*** for the fast path.\n\n" % exc
        )

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "fall back"
            self._fallback(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._fallback(exc)


setup(ext_modules=extensions(), cmdclass={"build_ext": optional_build_ext})
