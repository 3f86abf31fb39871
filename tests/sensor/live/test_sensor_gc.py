"""How the live sensor (and the TUI's worker) set up their pipeline: the cyclic collector tuned as
``analyze`` does (clikit.GC_THRESHOLDS: a SYN flood spent half its CPU in young collections), and every
consumer on the bulk aggregates path."""
from __future__ import annotations

import gc
import os

import pytest

from otwatch.sensor.clikit import GC_THRESHOLDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEMO = os.path.join(ROOT, "pcaps", "demo-plant.pcap")


@pytest.fixture
def lo_capture():
    """A real capture on lo (what `otwatch sensor` opens before build_sensor), closed afterwards."""
    from otwatch.sensor.live.capture import open_live

    try:
        cap = open_live("lo", 65535, "", 1024 * 1024, False)
    except OSError as exc:
        pytest.skip(f"cannot capture on lo: {exc}")
    yield cap
    cap.close()


@pytest.fixture
def default_gc():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_sensor_sets_the_collectors_thresholds(default_gc, lo_capture, tmp_path):
    """build_sensor (what `otwatch sensor` runs after opening the capture) on a real capture of lo."""
    from otwatch.sensor.live.cli import build_sensor
    from otwatch.sensor.live.config import SensorConfig

    build_sensor(SensorConfig(interface="lo", db=str(tmp_path / "s.db")), lo_capture, [])
    assert gc.get_threshold() == GC_THRESHOLDS != (700, 10, 10)


def test_tui_worker_sets_the_collectors_thresholds(default_gc):
    from otwatch.sensor.tui.feed import ReplayFeed

    ReplayFeed(DEMO, 0.0)._pipeline()
    assert gc.get_threshold() == GC_THRESHOLDS != (700, 10, 10)


def test_every_sensor_consumer_takes_aggregates_in_bulk(lo_capture, tmp_path):
    """One consumer without ``observe_aggregates`` puts the whole pipeline back on per-key
    ``Aggregate``s (sensor/pipeline.py ``_aggregates``): the sensor's asset feed had none."""
    from otwatch.sensor.live.cli import build_sensor
    from otwatch.sensor.live.config import SensorConfig

    run = build_sensor(SensorConfig(interface="lo", db=str(tmp_path / "s.db"), jsonl=str(tmp_path / "o.jsonl"),
                                    policy=os.path.join(ROOT, "rules", "demo-plant.yaml")), lo_capture, [])
    names = [type(c).__name__ for c in run.pipeline.consumers]
    assert {"AssetChanges", "PolicyChecker", "JSONLines"} <= set(names)
    assert [n for c, n in zip(run.pipeline.consumers, names) if not hasattr(c, "observe_aggregates")] == []
