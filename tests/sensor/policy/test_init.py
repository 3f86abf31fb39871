"""sensor/policy/__init__.py: its names resolve on first use, so the alert catalogue (imported by every
``analyze``) does not pull in the policy loader and PyYAML."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_analyze_path_does_not_import_the_loader_or_yaml():
    code = ("import sys; import otwatch.sensor.alerts.analysis, otwatch.sensor.policy.catalogue; "
            "print(*(m in sys.modules for m in ('yaml', 'otwatch.sensor.policy.loader', "
            "'otwatch.sensor.policy.checker')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


@pytest.mark.parametrize("name, module", [("PolicyError", "errors"), ("Problem", "errors"),
                                          ("load_policy", "loader"), ("parse_policy", "loader"),
                                          ("Policy", "model"), ("UNZONED", "model"),
                                          ("PolicyChecker", "checker"), ("suggest_policy", "suggest")])
def test_every_public_name_is_its_submodules(name, module):
    pkg = importlib.import_module("otwatch.sensor.policy")
    sub = importlib.import_module(f"otwatch.sensor.policy.{module}")
    assert getattr(pkg, name) is getattr(sub, name)
    assert name in pkg.__all__


def test_unknown_name_is_an_attribute_error():
    pkg = importlib.import_module("otwatch.sensor.policy")
    with pytest.raises(AttributeError):
        pkg.no_such_name  # noqa: B018
