"""The package builds without setuptools warnings and ships every package of the source tree."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

try:
    import tomllib
except ImportError:          # Python 3.10
    import pytest

    tomllib = pytest.importorskip("tomli")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_source_package_is_listed():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    for top, name in (("sensor", "otwatch.sensor"), ("parsers", "otwatch.parsers"), ("ext", "otwatch.ext"),
                      ("rules", "otwatch.rules")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            pkg = ".".join([name, *rel.parts])
            assert pkg in listed, f"{pkg} is missing from pyproject.toml's packages"


def test_wheel_builds_without_license_or_package_discovery_warnings(tmp_path):
    env = dict(os.environ, OTWATCH_SKIP_EXTENSIONS="1")    # the kernels' compile is tested elsewhere
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(tmp_path), "-v"],
                       capture_output=True, text=True, env=env, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "`project.license` as a TOML table is deprecated" not in out
    assert "is absent from the `packages` configuration" not in out
    assert "SetuptoolsDeprecationWarning" not in out
    (wheel,) = tmp_path.glob("otwatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"otwatch/sensor/store/database.py", "otwatch/sensor/inventory/store.py", "otwatch/parsers/modbus/spec.py",
            "otwatch/ext/engine.py"} <= names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in zipfile.ZipFile(wheel).read(meta).decode()
