"""The readable summary of `otwatch analyze` (sensor/report.py)."""
from __future__ import annotations

from collections import Counter

from otwatch.sensor.report import Summary, kind_lines, render


def test_an_unnamed_function_code_sweep_is_one_line():
    kinds = Counter({"modbus.read_coils": 50, "modbus.program_function_90": 1, "modbus.program_function_91": 1,
                     "modbus.program_function_125": 1, "modbus.program_function_126": 1})
    kinds.update({f"modbus.unknown_function_{n}": 1 for n in range(18, 30)})
    kinds.update({f"modbus.user_defined_function_{n}": 2 for n in (65, 66, 67)})   # below GROUP_MIN
    rows = dict(kind_lines(kinds))
    assert rows["modbus.unknown_function_<n> (12 kinds: 18–29)"] == 12
    assert not any(k.startswith("modbus.unknown_function_1") or k.startswith("modbus.unknown_function_2")
                   for k in rows)
    # named families stay one by one (FC 90 is UMAS programming), and small families too
    for fc in (90, 91, 125, 126):
        assert rows[f"modbus.program_function_{fc}"] == 1
    assert rows["modbus.user_defined_function_65"] == 2
    assert sum(rows.values()) == sum(kinds.values())
    assert list(rows)[0] == "modbus.read_coils"


def test_anomaly_totals_come_from_the_counters_that_count_every_one():
    s = Summary()
    stats = {"capture.packets": 10, "anomaly.modbus.unsolicited_response": 5000,
             "anomaly.flow.anomalies_suppressed": 1, "anomaly.suppressed": 4740}
    text = render(["x.pcap"], s, stats, "pure", 1.0)
    section = text.split("Anomalies\n", 1)[1]
    assert "modbus.unsolicited_response" in section and "5,000" in section
    assert "4,740 of them not reported one by one" in section
    assert "  suppressed " not in section


def test_plurals_follow_the_count():
    from otwatch.sensor.report import plural

    assert [plural(1, "flow"), plural(2, "flow"), plural(0, "flow")] == ["1 flow", "2 flows", "0 flows"]
    assert [plural(1, "IP host"), plural(3, "IP host")] == ["1 IP host", "3 IP hosts"]
    assert [plural(1, "MAC address"), plural(1234, "MAC address")] == ["1 MAC address", "1,234 MAC addresses"]
    s = Summary()
    s.hosts_ip.add("10.0.0.1")
    s.hosts_mac.add("02:00:00:00:00:01")
    text = render(["x.pcap"], s, {"capture.packets": 1, "flows.created": 1}, "pure", 1.0)
    assert "  1 packet, " in text and "1 flow, 1 IP host, 1 MAC address" in text
    assert "1 flows" not in text and "1 IP hosts" not in text


def test_informational_counters_are_notes_not_anomalies():
    stats = {"capture.packets": 10, "anomaly.dispatch.detected_by_content": 2, "anomaly.tcp.gap": 1}
    text = render(["x.pcap"], Summary(), stats, "pure", 1.0)
    anomalies, notes = text.split("Anomalies\n", 1)[1].split("Notes (informational, not anomalies)\n", 1)
    assert "dispatch.detected_by_content" not in anomalies and "tcp.gap" in anomalies
    assert "dispatch.detected_by_content" in notes
    only_info = render(["x.pcap"], Summary(), {"anomaly.dispatch.detected_by_content": 1}, "pure", 1.0)
    assert "Anomalies\n  none\n" in only_info


def test_distinct_addresses_are_remembered_up_to_the_host_cap_and_the_summary_says_more():
    from otwatch.sensor import observations as O

    s = Summary(max_hosts=10)
    for i in range(25):
        s.observe(O.HostSeen(1.0, i + 1, f"02:00:00:00:00:{i:02x}", f"10.0.0.{i}", 0, "arp"))
    for i in range(5):          # seen again (a host evicted and seen anew): not counted twice
        s.observe(O.HostSeen(2.0, 30 + i, f"02:00:00:00:00:{i:02x}", f"10.0.0.{i}", 0, "arp"))
    assert len(s.hosts_ip) == len(s.hosts_mac) == 10
    assert s.hosts_ip_over == s.hosts_mac_over == 15
    text = render(["x.pcap"], s, {"capture.packets": 30, "flows.created": 0}, "pure", 1.0)
    assert "0 flows, more than 10 IP hosts, more than 10 MAC addresses" in text
    under = Summary(max_hosts=100)
    for i in range(25):
        under.observe(O.HostSeen(1.0, i + 1, f"02:00:00:00:00:{i:02x}", f"10.0.0.{i}", 0, "arp"))
    text = render(["x.pcap"], under, {"capture.packets": 25}, "pure", 1.0)
    assert "0 flows, 25 IP hosts, 25 MAC addresses" in text


def test_the_summary_host_cap_defaults_to_the_default_budget():
    from otwatch.parsers.budget import DEFAULT_BUDGET_LIMITS

    assert Summary().max_hosts == DEFAULT_BUDGET_LIMITS.max_hosts
