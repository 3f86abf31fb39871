"""The baseline file lives beside the inventory database unless told otherwise (tests never touch the user's)."""
from otwatch.sensor.baseline.store import default_path


def test_beside_the_inventory_database(monkeypatch, tmp_path):
    monkeypatch.delenv("OTWATCH_BASELINE", raising=False)
    monkeypatch.setenv("OTWATCH_DB", str(tmp_path / "x" / "inv.db"))
    assert default_path() == str(tmp_path / "x" / "baseline.yaml")
    monkeypatch.setenv("OTWATCH_BASELINE", str(tmp_path / "b.yaml"))
    assert default_path() == str(tmp_path / "b.yaml")
