"""MAC vendors: ``store.oui_vendor`` reads netaddr's registry files itself and must give what netaddr's API gives."""
from __future__ import annotations

import collections
import random
import subprocess
import sys
from importlib.resources import files

import pytest

from otwatch.sensor.inventory import store


def _mac(oui: int, sep: str = ":") -> str:
    return sep.join("%02x" % b for b in (oui >> 16, (oui >> 8) & 255, oui & 255, 0x12, 0x34, 0x56))


@pytest.fixture(scope="module")
def registry_keys() -> list[int]:
    idx = files("netaddr.eui").joinpath("oui.idx").read_bytes()
    return [int(line.split(b",")[0]) for line in idx.splitlines()]


def test_vendor_equals_netaddr_on_registered_and_unregistered_ouis(registry_keys):
    multi = [k for k, n in collections.Counter(registry_keys).items() if n > 1]
    rnd = random.Random(4)
    sample = set(rnd.sample(registry_keys, 1500)) | set(multi) | {registry_keys[0], registry_keys[-1]}
    sample |= {rnd.randrange(1 << 24) for _ in range(500)} | {0, 0xFFFFFF, 0x020000}
    registered = 0
    for oui in sorted(sample):
        want = store._netaddr_vendor(_mac(oui))
        assert store._registry_org(oui) == want, hex(oui)
        registered += bool(want)
    assert registered >= 1500 and multi            # the sample did hit the registry, and OUIs registered twice


@pytest.mark.parametrize("mac", ["00:80:f4:0a:00:0b", "00:80:F4:0A:00:0B", "00-80-f4-0a-00-0b", "0080.f40a.000b",
                                 "02:00:0a:0a:00:35", "ff:ff:ff:ff:ff:ff", "zz:zz:zz:zz:zz:zz", "", "00:80:f4"])
def test_vendor_of_any_mac_text_equals_netaddr(mac):
    store.oui_vendor.cache_clear()
    assert store.oui_vendor(mac) == store._netaddr_vendor(mac)


def test_known_vendor_without_loading_netaddrs_index():
    code = ("import sys; from otwatch.sensor.inventory import store; "
            "print(store.oui_vendor('00:80:f4:0a:00:0b'), 'netaddr.eui.ieee' in sys.modules, 'netaddr' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # netaddr is not even imported: its registry files are found by the package's location (~25 ms a run)
    assert out.split() == ["TELEMECANIQUE", "ELECTRIQUE", "False", "False"]


def test_unusable_registry_files_fall_back_to_netaddr(monkeypatch):
    monkeypatch.setattr(store, "_REGISTRY", [None])
    store.oui_vendor.cache_clear()
    assert store.oui_vendor("00:80:f4:0a:00:0b") == "TELEMECANIQUE ELECTRIQUE"
    store.oui_vendor.cache_clear()
