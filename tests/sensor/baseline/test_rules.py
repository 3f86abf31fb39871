"""The rule table: ids, severities and categories the alert model accepts."""
import re

from otwatch.sensor.alerts.model import CATEGORIES, SEVERITIES
from otwatch.sensor.baseline.rules import RULES


def test_every_rule_is_well_formed():
    assert RULES
    for rid, r in RULES.items():
        assert rid == r.id
        assert re.fullmatch(r"baseline\.[a-z_]+", rid), rid
        assert r.severity in SEVERITIES, rid
        assert r.category in CATEGORIES, rid
        assert r.technique == "" or re.fullmatch(r"T0\d{3}", r.technique), rid
        assert r.title


def test_every_rule_has_a_section_in_the_docs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "baseline.md").read_text()
    for rid, r in RULES.items():
        assert f"### `{rid}`" in text, rid
        assert f"Default severity **{r.severity}**" in text.split(f"### `{rid}`", 1)[1].split("###", 1)[0], rid
