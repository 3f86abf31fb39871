"""Alerts: one model for every source (baseline, policy, posture, anomalies, scans).

Contract (shared by the producers and the consumers; see model.py):

* A producer (``sensor.baseline``, ``sensor.policy``, the anomaly and posture
  mappers, the scan detector) turns observations into ``Finding`` objects: one
  occurrence of a condition, with the packet it was seen in (``Evidence``).
  It hands each to an ``AlertSink`` — anything with ``raise_finding(f)``.
* ``Finding.alert_id`` is stable: a hash of the rule id and the finding's
  ``key`` (the condition, not the occurrence).  The same condition across
  restarts and re-runs is the same alert; repeats aggregate into one alert with
  a count (Zeek's notice ``$identifier``).
* The aggregated ``Alert`` is what is stored (SQLite, in the inventory
  database), delivered (outbox → JSON lines, syslog) and shown (TUI).

Data flows one way: observations → producers → Finding → aggregation → Alert →
store | outbox → sinks | TUI.
"""
