"""The sensor's `posture_alerts` setting: in the config file, as --posture-alerts, checked like every key."""
from __future__ import annotations

import pytest

from otwatch.sensor.live.config import ConfigError, SensorConfig, load


def test_posture_alerts_from_the_file_and_the_flag(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("interface: eth1\nposture_alerts: true\n")
    assert load(str(p)).posture_alerts is True
    assert SensorConfig().posture_alerts is False
    assert SensorConfig().merged(posture_alerts=True).posture_alerts is True
    assert SensorConfig(posture_alerts=True).merged(posture_alerts=None).posture_alerts is True   # flag not given


def test_posture_alerts_must_be_a_boolean(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("interface: eth1\nposture_alerts: 1\n")
    with pytest.raises(ConfigError) as e:
        load(str(p))
    assert "s.yaml:2:17: posture_alerts must be a bool" in str(e.value)
