"""Entries: text form, add (accept) and remove (unlearn)."""
import pytest

from otwatch.sensor.baseline.model import Baseline, PairKey, entry_text, parse_entry

PK = PairKey("10.0.0.5", "10.0.0.9", "modbus", 502)


def test_entry_text_round_trip():
    cases = [("asset", "10.0.0.5", None, None), ("pair", PK, None, None), ("pair", PK, "function_codes", 6),
             ("pair", PK, "retain", True), ("pair", PK, "publish", "plant/a b/c"),
             ("pair", PK, "coverage", ("read unit=1/holding_registers", ((0, 9), (20, 20))))]
    for kind, key, name, value in cases:
        text = entry_text(kind, key, name, value)
        assert parse_entry(text) == (kind, key, name, value), text
    v6 = PairKey("fe80::1", "fe80::2", "opcua", 4840)
    assert parse_entry(entry_text("pair", v6))[1] == v6


@pytest.mark.parametrize("bad", ["", "asset", "pair 1.2.3.4", "pair 1.2.3.4>5.6.7.8 modbus/x",
                                 "pair 1.2.3.4>5.6.7.8 modbus/502 nosuchfield 3",
                                 "pair 1.2.3.4>5.6.7.8 modbus/502 function_codes six",
                                 "pair 1.2.3.4>5.6.7.8 modbus/502 coverage read 0-x", "host 1.2.3.4"])
def test_bad_entries(bad):
    with pytest.raises(ValueError):
        parse_entry(bad)


def test_add_and_remove():
    b = Baseline()
    e = entry_text("pair", PK, "function_codes", 6)
    assert b.add_entry(e)
    assert PK in b.pairs and {"10.0.0.5", "10.0.0.9"} <= set(b.assets)
    assert not b.add_entry(e)
    cov = entry_text("pair", PK, "coverage", ("write unit=1/holding_registers", ((0, 0),)))
    assert b.add_entry(cov) and b.pairs[PK].coverage["write unit=1/holding_registers"].covers(0, 0)
    assert b.remove_entry(cov) and "write unit=1/holding_registers" not in b.pairs[PK].coverage
    assert b.remove_entry(e) and not b.remove_entry(e)
    assert b.remove_entry("asset 10.0.0.5")
    assert PK not in b.pairs and "10.0.0.5" not in b.assets
