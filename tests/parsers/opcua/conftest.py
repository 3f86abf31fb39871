"""Fixtures for the OPC UA tests: captured vectors and wire builders (opcua_wire.py)."""
from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
PARSERS = HERE.parent
if str(PARSERS) not in sys.path:
    sys.path.insert(0, str(PARSERS))


@pytest.fixture(scope="session")
def vectors():
    from capture_vectors import load

    return load()


@pytest.fixture
def make_conn(impl):
    from otwatch.parsers.limits import DEFAULT_LIMITS
    from otwatch.parsers.opcua.connection import OPCUAConnection

    def make(limits=DEFAULT_LIMITS):
        return OPCUAConnection(limits, implementation=impl)

    return make
