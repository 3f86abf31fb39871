"""Shared fixtures.

``impl`` runs a test against both kernel implementations (multidict's pattern):
"pure" is the Python source, "compiled" the Cython build.  A missing compiled
kernel is a failure, not a skip, unless --no-ext is given.
"""
from __future__ import annotations

import os
import pathlib
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PCAPS = ROOT / "pcaps"
TESTS = ROOT / "tests"

# Test helpers (pytest runs in importlib mode, which adds nothing to sys.path):
#   from support.capbuild import pcap, pcapng      (tests/support/)
#   from helpers import assert_decodes              (tests/parsers/helpers.py)
# Nothing a test runs may touch the user's real inventory database: every
# `otwatch` started by a test (in process or as a subprocess) uses this one.
if "OTWATCH_DB" not in os.environ or not os.environ["OTWATCH_DB"].startswith(tempfile.gettempdir()):
    os.environ["OTWATCH_DB"] = os.path.join(tempfile.mkdtemp(prefix="otwatch-tests-"), "inventory.db")

for _p in (TESTS, TESTS / "parsers"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


def pytest_addoption(parser):
    parser.addoption("--no-ext", action="store_true", help="skip the compiled half of impl-parametrised tests")


def _impls(config):
    if config.getoption("--no-ext") or os.environ.get("OTWATCH_NO_EXTENSIONS"):
        return ["pure"]
    return ["pure", "compiled"]


def pytest_generate_tests(metafunc):
    if "impl" in metafunc.fixturenames:
        metafunc.parametrize("impl", _impls(metafunc.config))


@pytest.fixture
def kernels(impl):
    """Load kernels of the implementation under test: kernels('modbus')."""
    from otwatch.ext import load

    return lambda name: load(name, impl)
