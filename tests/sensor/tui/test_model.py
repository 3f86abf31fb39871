"""LiveModel's bookkeeping of what a slice changed (sensor/tui/model.py)."""
from __future__ import annotations

from otwatch.sensor.tui.model import _added_since


def test_the_assets_added_after_the_newest_are_found_without_a_set_of_all():
    d = dict.fromkeys(["a", "b", "c"])
    assert _added_since(d, "c") == set()
    d.update(dict.fromkeys(["d", "e"]))
    assert _added_since(d, "c") == {"d", "e"}
    assert _added_since(d, None) == {"a", "b", "c", "d", "e"}       # it was empty before
    d["b"] = 1                                                      # an update keeps its place
    assert _added_since(d, "e") == set()
    del d["e"]                                                      # the newest merged away: all, re-read
    d["f"] = None
    assert _added_since(d, "e") == {"a", "b", "c", "d", "f"}
