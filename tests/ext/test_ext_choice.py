"""Which kernels run: the compiled ones when built, the pure ones on demand."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from otwatch import ext


def test_compiled_kernels_loaded_when_required():
    # tests/run.sh (and so CI) sets OTWATCH_REQUIRE_EXTENSIONS=1: the build must have worked
    if not os.environ.get("OTWATCH_REQUIRE_EXTENSIONS"):
        pytest.skip("OTWATCH_REQUIRE_EXTENSIONS not set (a developer run)")
    assert ext.IMPLEMENTATION == "compiled"
    for name in ("engine", "modbus", "mqtt", "opcua"):
        mod = ext.load(name)
        assert mod.__file__.endswith((".so", ".pyd")), mod.__file__


def _version(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTWATCH_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "otwatch.sensor", "version"], env=env,
                          capture_output=True, text=True, check=True).stdout


def test_no_extensions_forces_the_pure_path():
    out = _version({"OTWATCH_NO_EXTENSIONS": "1"})
    assert "kernels: pure" in out


def test_version_reports_the_active_path():
    import importlib.util

    built = all(importlib.util.find_spec(f"otwatch.ext._{n}") is not None
                for n in ("engine", "modbus", "mqtt", "opcua"))
    out = _version({})
    assert ("kernels: compiled" if built else "kernels: pure") in out


def test_both_switches_at_once_is_an_error():
    env = dict(os.environ, OTWATCH_NO_EXTENSIONS="1", OTWATCH_REQUIRE_EXTENSIONS="1")
    r = subprocess.run([sys.executable, "-c", "import otwatch.ext"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "both set" in r.stderr


def test_pure_modules_are_the_sources():
    for name in ("engine", "modbus", "mqtt", "opcua"):
        assert ext.load(name, "pure").__file__.endswith(f"{name}.py")
