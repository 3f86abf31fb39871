"""parsers/budget.py: how a memcap is read and shared out into the caps of ``Limits``.

What is checked: sizes are read in binary units and anything else is refused with the reason;
the fixed part (``FIXED_BYTES``) is kept aside and only the rest is shared; every share, its caps
times their measured costs, fits in its fraction and all of them in the memcap; the minimums
(``MIN_MEMCAP``, the hosts and links each flow holds) hold at every size; caps grow with the
memcap and nothing else of ``Limits`` changes."""
from __future__ import annotations

import dataclasses

import pytest

from otwatch.parsers import budget as B
from otwatch.parsers.limits import DEFAULT_LIMITS, Limits

MIB = 1024 * 1024
GIB = 1024 * MIB


@pytest.mark.parametrize("text,expect", [
    ("512M", 512 * MIB), ("512m", 512 * MIB), ("512MiB", 512 * MIB), ("512mb", 512 * MIB), ("512 M", 512 * MIB),
    ("64M", 64 * MIB), ("1G", GIB), ("2g", 2 * GIB), ("1.5G", 3 * GIB // 2), ("700K", 700 * 1024),
    ("1048576", 1048576), (" 1G ", GIB), (268435456, 268435456),
])
def test_sizes_are_read_in_binary_units(text, expect):
    assert B.parse_size(text) == expect


@pytest.mark.parametrize("text", ["", "M", "12X", "-1G", "1T", "1.2.3M", "512 MB extra", "0x100", "1e9", "G1"])
def test_what_is_not_a_size_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match=r"not a size: .* \(use e\.g\. 512M or 2G\)"):
        B.parse_size(text)


def test_below_the_minimum_is_refused_and_the_minimum_itself_is_not():
    with pytest.raises(ValueError, match="memcap 127 MiB is below the minimum of 128 MiB"):
        B.limits_for(B.MIN_MEMCAP - MIB)
    with pytest.raises(ValueError, match="below the minimum"):
        B.limits_for(B.parse_size("64M"))
    lim = B.limits_for(B.MIN_MEMCAP)
    assert lim.max_flows > 1000 and lim.link_keys_total > 1000
    # the minimum leaves something to share after the fixed part
    assert B.MIN_MEMCAP > B.FIXED_BYTES


def test_shares_add_up_to_one():
    assert sum(B.SHARES.values()) == pytest.approx(1.0)
    assert all(v > 0 for v in B.SHARES.values())


def _spent(lim: Limits) -> dict:
    """Bytes each share's caps stand for, at the measured costs."""
    return {
        "flows": lim.max_flows * B.COST["flow"] + lim.max_hosts * B.COST["host"] + lim.max_links * B.COST["link"],
        "keys": lim.link_keys_total * B.COST["key"],
        "half_open": lim.max_half_open * B.COST["half_open"],
        "reassembly": lim.reassembly_total_bytes,
    }


@pytest.mark.parametrize("memcap", [B.MIN_MEMCAP, 200 * MIB, B.DEFAULT_MEMCAP, GIB, 2 * GIB, 16 * GIB])
def test_each_share_fits_its_fraction_and_all_fit_the_memcap_after_the_reserve(memcap):
    lim = B.limits_for(memcap)
    share = memcap - B.FIXED_BYTES
    spent = _spent(lim)
    for name, frac in B.SHARES.items():
        assert spent[name] <= share * frac, name
        # and uses it: less than one entry's worth (of the costliest entry it pays for) is left over
        per_flow = B.COST["flow"] + B.HOSTS_PER_FLOW * B.COST["host"] + B.LINKS_PER_FLOW * B.COST["link"]
        slack = {"flows": per_flow + B.COST["host"] + B.COST["link"], "keys": B.COST["key"], "half_open": B.COST["half_open"],
                 "reassembly": 1}[name]
        assert share * frac - spent[name] < slack, name
    assert B.FIXED_BYTES + sum(spent.values()) <= memcap


@pytest.mark.parametrize("memcap", [B.MIN_MEMCAP, B.DEFAULT_MEMCAP, 4 * GIB])
def test_hosts_and_links_cover_what_the_flows_hold(memcap):
    """Two hosts and one link a flow cannot be evicted while it lives: the caps leave room above
    them, so a full table always has idle entries to evict."""
    lim = B.limits_for(memcap)
    assert lim.max_hosts >= 2 * lim.max_flows + lim.max_flows // 4 - 1
    assert lim.max_links >= lim.max_flows + lim.max_flows // 4 - 1


def test_the_reserve_is_kept_aside_and_the_rest_scales():
    """Caps are proportional to memcap - FIXED_BYTES, not to the memcap: doubling what is above the
    reserve doubles them."""
    a = B.limits_for(B.FIXED_BYTES + 256 * MIB)
    b = B.limits_for(B.FIXED_BYTES + 512 * MIB)
    for name in ("max_flows", "max_hosts", "max_links", "max_half_open", "link_keys_total", "reassembly_total_bytes"):
        assert getattr(b, name) == pytest.approx(2 * getattr(a, name), abs=3), name


def test_caps_grow_with_the_memcap():
    sizes = [B.MIN_MEMCAP, B.DEFAULT_MEMCAP, GIB, 2 * GIB]
    lims = [B.limits_for(m) for m in sizes]
    for name in ("max_flows", "max_hosts", "max_links", "max_half_open", "link_keys_total", "reassembly_total_bytes"):
        vals = [getattr(x, name) for x in lims]
        assert vals == sorted(vals) and len(set(vals)) == len(vals), name


def test_only_the_budget_caps_change():
    lim = B.limits_for(B.DEFAULT_MEMCAP, DEFAULT_LIMITS)
    changed = {f.name for f in dataclasses.fields(Limits) if getattr(lim, f.name) != getattr(DEFAULT_LIMITS, f.name)}
    assert changed == {name for name, _ in B.describe(lim)}
    # a base's other settings are kept
    base = dataclasses.replace(DEFAULT_LIMITS, link_keys_max=77)
    assert B.limits_for(B.DEFAULT_MEMCAP, base).link_keys_max == 77


def test_the_default_budget_is_the_default_memcap_shared_out():
    assert B.DEFAULT_MEMCAP == 512 * MIB
    assert B.DEFAULT_BUDGET_LIMITS == B.limits_for(B.DEFAULT_MEMCAP)
    assert B.DEFAULT_BUDGET_LIMITS.memcap == B.DEFAULT_MEMCAP
