"""SIGHUP: read the config file and the policy again; a bad one keeps the old and says why.

``Reloader(config_path, flags, state)`` is called by the sensor loop (outside
the signal handler).  What it can change while running:

* the policy (``policy:``, or the same path re-read): the checker judges from
  now on by the new policy, the alert settings (severity overrides, disabled
  rules, thresholds) are swapped;
* the delivery destinations (``syslog:``): removed ones are stopped, new ones
  started (each keeps its own cursor, so a destination re-added later resumes);
* ``heartbeat``.

Anything else (interface, bpf, snaplen, buffer_mb, db, user, jsonl, interval,
ports) needs a restart: a change is logged as such and not applied.  Every
problem is logged as ``file:line:column: what``, and nothing is changed when
there is one.
"""
from __future__ import annotations

import logging

log = logging.getLogger("otwatch.sensor")

RESTART_KEYS = ("interface", "bpf", "snaplen", "buffer_mb", "promisc", "db", "user", "jsonl", "interval", "ports")


class Reloader:
    def __init__(self, config_path: str | None, flags: dict, cfg, alerts, checker, deliverers: dict, loop,
                 start_deliverer):
        self.config_path = config_path
        self.flags = flags
        self.cfg = cfg
        self.alerts = alerts
        self.checker = checker
        self.deliverers = deliverers          # url -> Deliverer
        self.loop = loop
        self.start_deliverer = start_deliverer
        self.reloads = 0
        self.failures = 0

    def __call__(self) -> None:
        from ..sinks.syslog import DestinationError, parse
        from .config import ConfigError, SensorConfig, load

        try:
            new = (load(self.config_path) if self.config_path else SensorConfig()).merged(**self.flags)
            dests = {u: parse(u) for u in new.syslog}
        except (ConfigError, DestinationError) as exc:
            return self._failed("config", str(exc).splitlines())
        from ..alerts.settings import AlertSettings

        settings, policy = AlertSettings(posture_alerts=new.posture_alerts), None
        if new.policy:
            from ..alerts.policyfile import PolicyFileError, load as load_policy_file

            try:
                settings, policy = load_policy_file(new.policy, new.posture_alerts)
            except PolicyFileError as exc:
                return self._failed("policy", str(exc).splitlines())
        for k in RESTART_KEYS:
            if getattr(new, k) != getattr(self.cfg, k):
                log.warning("reload: %s changed; it takes effect at the next restart", k)
        if policy is not None and self.checker is not None:
            self.checker.replace_policy(policy)
        elif policy is not None or (self.checker is not None and not new.policy):
            log.warning("reload: adding or removing the policy takes effect at the next restart")
        if settings is not None and self.alerts is not None:
            self.alerts.settings = self.alerts.book.settings = settings
        for url in sorted(set(self.deliverers) - set(dests)):
            self.deliverers.pop(url).stop(timeout=2.0)
            log.info("reload: stopped delivering to %s", url)
        for url in sorted(set(dests) - set(self.deliverers)):
            self.deliverers[url] = self.start_deliverer(dests[url])
            log.info("reload: delivering to %s", url)
        self.loop.heartbeat = new.heartbeat
        self.cfg = new
        self.reloads += 1
        log.info("reload: done (policy %s)", new.policy or "none")

    def _failed(self, what: str, problems: list[str]) -> None:
        self.failures += 1
        log.warning("reload: the %s has problems; keeping the running one:", what)
        for p in problems:
            log.warning("  %s", p)
