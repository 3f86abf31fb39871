"""The sensor's idle timeouts (``link_idle_timeout``, ``host_idle_timeout``): in the config file, checked
like every key, and handed to the engine's limits (docs/architecture.md "Memory budget")."""
from __future__ import annotations

import pytest

from otwatch.sensor.live.config import ConfigError, SensorConfig, load


def test_idle_timeouts_from_the_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("interface: eth1\nlink_idle_timeout: 120\nhost_idle_timeout: -1\n")
    cfg = load(str(p))
    assert (cfg.link_idle_timeout, cfg.host_idle_timeout) == (120, -1)
    assert (SensorConfig().link_idle_timeout, SensorConfig().host_idle_timeout) == (3600.0, 3600.0)


@pytest.mark.parametrize("text, why", [("link_idle_timeout: soon", "link_idle_timeout must be a number"),
                                       ("host_idle_timeout: -5", "host_idle_timeout must be between -1 and")])
def test_idle_timeouts_are_checked(tmp_path, text, why):
    p = tmp_path / "s.yaml"
    p.write_text(f"interface: eth1\n{text}\n")
    with pytest.raises(ConfigError) as e:
        load(str(p))
    assert why in str(e.value)


def test_idle_timeouts_reach_the_engine(tmp_path):
    """build_sensor's limits carry the config's timeouts (the memcap's caps beside them)."""
    import os

    from otwatch.sensor.live.cli import build_sensor

    class Cap:        # build_sensor only asks the capture for its link type and name here
        linktype = 1
        name = "lo"

        def __getattr__(self, k):
            return lambda *a, **kw: None

    run = build_sensor(SensorConfig(interface="lo", db=str(tmp_path / "s.db"), link_idle_timeout=90,
                                    host_idle_timeout=-1), Cap(), [])
    lim = run.pipeline.settings.limits
    assert (lim.link_idle_timeout, lim.host_idle_timeout) == (90.0, -1.0)
    assert lim.max_flows > 0 and os.path.exists(tmp_path / "s.db")
