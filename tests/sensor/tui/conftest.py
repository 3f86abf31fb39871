"""Fixtures for the TUI tests: the demo plant replayed at max speed into the app, a stored database."""
from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEMO = ROOT / "pcaps" / "demo-plant.pcap"
POLICY = ROOT / "rules" / "demo-plant.yaml"


async def wait_done(pilot, model, limit: int = 600) -> None:
    """Let the app tick until the replay is finished and applied (bounded: a hang fails, it does not block)."""
    for _ in range(limit):
        await pilot.pause(0.05)
        if getattr(model, "finished", True) and model.feed.empty():
            break
    else:
        raise AssertionError(f"replay not finished: {model.status}")
    await pilot.pause(0.3)


async def wait_read(pilot, pane, limit: int = 3000) -> None:
    """Let a list that reads its rows a slice at a time (``ListPane.SLICE_ROWS``) finish (bounded)."""
    for _ in range(limit):
        if not getattr(pane, "reading", False):
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError(f"{pane.TITLE}: rows still being read")
    await pilot.pause()


def freeze(model) -> None:
    """Make wall-clock-dependent numbers fixed (for snapshots): rates, memory."""
    s = model.stats
    s.packet_rate.clear()
    s.message_rate.clear()
    s.packet_rate.extend([0, 40, 120, 118, 121, 119, 122, 80, 0])
    s.message_rate.extend([0, 30, 90, 95, 92, 94, 90, 60, 0])
    s.rss_bytes = 64_000_000


DEMO_REL = "pcaps/demo-plant.pcap"
"""The capture as a user names it from the checkout: evidence shows this text, so screens and
snapshots do not depend on where the checkout lives."""


@pytest.fixture
def demo_model(monkeypatch):
    from otwatch.sensor.tui.feed import ReplayFeed
    from otwatch.sensor.tui.model import LiveModel

    monkeypatch.chdir(ROOT)

    def make(policy: bool = True, speed: float = 0.0):
        return LiveModel(ReplayFeed(DEMO_REL, speed), str(POLICY) if policy else None, source=DEMO_REL)

    return make


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    """The demo plant analysed into a database (inventory), the way `otwatch analyze --db` does."""
    from otwatch.sensor.inventory.store import open_inventory
    from otwatch.sensor.pipeline import Pipeline

    path = tmp_path_factory.mktemp("tuidb") / "plant.db"
    inv = open_inventory(str(path))
    p = Pipeline([inv])
    p.run_file(str(DEMO))
    p.finish()
    inv.close()
    return path


def screen_text(app) -> str:
    """What the terminal shows, as plain text (from the SVG Textual would save, its text runs)."""
    import html
    import re

    svg = app.export_screenshot()
    return html.unescape(" ".join(re.findall(r">([^<]*)</text>", svg))).replace("\xa0", " ")
