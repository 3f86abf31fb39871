"""sensor/baseline/accept.py: the entry of a finding (pending, else the alert's details) learned into the file."""
import pytest

from otwatch.sensor.baseline.accept import accept_entry, entry_of
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.baseline.store import load_baseline, save_baseline

ENTRY = "pair 10.0.0.5>10.0.0.9 modbus/502 function_codes 6"


def test_entry_of_prefers_the_pending_entry():
    b = Baseline()
    b.pending["a1"] = ENTRY
    assert entry_of("a1", {"entry": "asset 10.0.0.1"}, b) == ENTRY
    assert entry_of("a2", {"entry": "asset 10.0.0.1"}, b) == "asset 10.0.0.1"
    assert entry_of("a3", {}, b) is None and entry_of("a3", {"entry": 5}, None) is None


def test_accept_learns_saves_and_forgets_pending(tmp_path):
    path = str(tmp_path / "b.yaml")
    b = Baseline()
    b.pending["a1"] = ENTRY
    save_baseline(b, path)
    res = accept_entry(ENTRY, path, "a1")
    assert res.changed and res.path == path
    b2 = load_baseline(path)
    assert "a1" not in b2.pending and 6 in b2.pairs[next(iter(b2.pairs))].values("function_codes")
    assert not accept_entry(ENTRY, path).changed          # known already
    with pytest.raises(ValueError):
        accept_entry("not an entry", path)
    with pytest.raises(FileNotFoundError):
        accept_entry(ENTRY, str(tmp_path / "missing.yaml"))
