"""``otwatch sensor``: the headless live sensor (docs/deployment.md).

Thin: read the config (flags override it), open the capture, give up privilege,
build the same pipeline and consumers as ``analyze``, start a delivery thread
per syslog destination, run the loop until SIGTERM/SIGINT.  Exit 0 on a clean
stop, 2 on a usage or config error (one line each, file:line for the config).
"""
from __future__ import annotations

import logging
import signal
import socket
import sys
import time

import click

from otwatch.parsers.common import escape

from ..clikit import DB_HELP

log = logging.getLogger("otwatch.sensor")


PRELOAD = (
    "sqlite3", "ssl", "json", "encodings.idna", "importlib.resources",
    "otwatch.parsers.modbus.decode", "otwatch.parsers.mqtt.decode", "otwatch.parsers.opcua.decode",
    "otwatch.parsers.tls", "otwatch.parsers.hostnames", "otwatch.parsers.opcua.certs",
    "cryptography.x509", "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.asymmetric.ec", "cryptography.hazmat.primitives.asymmetric.dsa",
    "cryptography.hazmat.primitives.asymmetric.ed25519", "cryptography.hazmat.primitives.asymmetric.ed448",
    "netaddr", "otwatch.sensor.inventory.store", "otwatch.sensor.jsonout",
    "otwatch.sensor.sinks.outbox", "otwatch.sensor.sinks.deliver", "otwatch.sensor.sinks.alertfeed",
    "otwatch.sensor.sinks.assetfeed",
    "otwatch.sensor.live.loop", "otwatch.sensor.live.config",
)
"""Modules imported before privilege is given up.  The pipeline imports decoders when their
first message arrives; after the switch to an unprivileged user the interpreter's files may
no longer be readable (a Python under /root, a hardened unit with ProtectHome=), so every
module the sensor can need is loaded while it still can be."""


def preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from ..inventory.store import oui_vendor

    oui_vendor("00:00:00:00:00:00")       # opens netaddr's registry index now, not as `nobody`


def _fail(msg: str) -> None:
    click.echo(f"otwatch sensor: {msg}", err=True)
    sys.exit(2)


@click.command()
@click.option("-i", "--interface", default=None, help="Interface to capture on (the SPAN/mirror port).")
@click.option("--config", "config_path", metavar="PATH", default=None, help="YAML config file (flags override it).")
@click.option("--bpf", default=None, metavar="FILTER", help="Kernel capture filter (libpcap syntax).")
@click.option("--policy", default=None, metavar="PATH", help="Segmentation policy to check (YAML).")
@click.option("--posture-alerts", is_flag=True, default=False,
              help="Also raise configuration posture findings as alerts (by default the inventory keeps them).")
@click.option("--db", "db", metavar="PATH", default=None, help=DB_HELP + " The sensor keeps its inventory, alerts and outbox there.")
@click.option("--syslog", multiple=True, metavar="URL",
              help="Syslog destination, e.g. tls://siem:6514?format=cef&ca=ca.pem (repeatable; docs/sinks.md).")
@click.option("--deliver", multiple=True, metavar="URL",
              help="Any destination, syslog or file:///path.jsonl?max_mb=100&keep=5 (repeatable; docs/sinks.md).")
@click.option("--json", "jsonl", metavar="PATH", default=None, help="Also write the observations as JSON lines.")
@click.option("--user", default=None, help="When started as root: the user to become once the capture is open.")
@click.option("--heartbeat", type=float, default=None, help="Seconds between heartbeats (default 60).")
@click.option("--interval", type=float, default=None, help="Seconds of packet time per aggregate interval (default 60).")
@click.option("--snaplen", type=int, default=None, help="Bytes kept per packet (default 65535).")
@click.option("--buffer-mb", type=int, default=None, help="Kernel capture ring in MB (default 32).")
@click.option("--no-promisc", is_flag=True, default=False, help="Do not put the interface in promiscuous mode.")
@click.option("--memcap", default=None, metavar="SIZE",
              help="Memory budget shared out over flows, hosts, links, tallies and reassembly (e.g. 512M; default 512M).")
def sensor(interface, config_path, bpf, policy, posture_alerts, db, syslog, deliver, jsonl, user, heartbeat, interval, snaplen, buffer_mb,
           no_promisc, memcap) -> None:
    """Capture on INTERFACE and deliver alerts until stopped (SIGTERM/SIGINT; SIGHUP reloads the config)."""
    from .config import ConfigError, SensorConfig, load

    flags = dict(interface=interface, bpf=bpf, policy=policy, posture_alerts=True if posture_alerts else None,
                 db=db, syslog=tuple(syslog) + tuple(deliver), jsonl=jsonl, user=user,
                 heartbeat=heartbeat, interval=interval, snaplen=snaplen, buffer_mb=buffer_mb,
                 promisc=False if no_promisc else None, memcap=memcap)
    try:
        cfg = (load(config_path) if config_path else SensorConfig()).merged(**flags)
    except ConfigError as exc:
        for e in exc.errors:
            click.echo(f"otwatch sensor: {e}", err=True)
        sys.exit(2)
    if not cfg.interface:
        _fail("no interface: give --interface or `interface:` in the config")
    from ..sinks.syslog import DestinationError, parse

    try:
        dests = [parse(u) for u in cfg.syslog]
    except DestinationError as exc:
        _fail(str(exc))
    if logging.getLogger().level > logging.INFO or not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="otwatch: %(levelname)s: %(message)s", force=True)

    from .capture import describe, open_live
    from .privileges import drop, hand_over, target

    preload()
    try:
        who = target(cfg.user or None)
    except PermissionError as exc:
        _fail(str(exc))
    try:
        cap = open_live(cfg.interface, cfg.snaplen, cfg.bpf, cfg.buffer_mb * 1024 * 1024, cfg.promisc)
    except OSError as exc:
        _fail(f"cannot capture on {escape(cfg.interface)}: {exc} (needs root or CAP_NET_RAW; docs/deployment.md)")
    log.info("capturing on %s with %s%s", escape(cfg.interface), describe(),
             f" ({cap.warning})" if getattr(cap, "warning", "") else "")
    run = build_sensor(cfg, cap, dests, config_path, flags)   # opens the database and outputs while still privileged
    try:
        hand_over(run.paths, who)
        log.info("privileges: %s", drop(cfg.user or None))
    except (OSError, PermissionError) as exc:
        cap.close()
        _fail(str(exc))
    sys.exit(run())


def build_sensor(cfg, cap, dests, config_path=None, flags=None):
    import dataclasses

    from ..inventory.store import default_path, open_inventory
    from ..pipeline import DEFAULT_PORTS, DEFAULT_TLS_PORTS, Pipeline, Settings
    from ..clikit import memcap_limits, tune_gc
    from ..sinks.alertfeed import OutboxAlerts
    from ..sinks.assetfeed import AssetChanges
    from ..sinks.outbox import CAPTURE_APPEND_WAIT, Outbox
    from .loop import SensorLoop
    from .reload import Reloader

    db_path = cfg.db or default_path()
    ports = dict(DEFAULT_PORTS)
    for proto, plist in (cfg.ports or {}).items():
        for p in (plist if isinstance(plist, list) else [plist]):
            ports[int(p)] = proto
    limits = dataclasses.replace(memcap_limits(cfg.memcap or None, "memcap"),
                                 link_idle_timeout=float(cfg.link_idle_timeout),
                                 host_idle_timeout=float(cfg.host_idle_timeout))
    settings = Settings(ports=ports, tls_ports=dict(DEFAULT_TLS_PORTS), interval=cfg.interval, limits=limits)
    source = f"iface:{cfg.interface}"
    from ..store import database

    database.on_wait = log.warning     # a long wait for the database goes to the log, not the terminal
    try:
        inventory = open_inventory(db_path)
        outbox = Outbox(db_path, max_records=cfg.outbox_max, append_wait=CAPTURE_APPEND_WAIT)
    except Exception as exc:   # noqa: BLE001 - any failure to open the store is fatal, said in one line
        cap.close()
        _fail(f"{escape(db_path)}: cannot open the database: {exc}")
    consumers: list = []
    json_out = None
    if cfg.jsonl:
        from ..jsonout import JSONLines

        json_out = open(cfg.jsonl, "w", encoding="utf-8")
        consumers.append(JSONLines(json_out))
    consumers.append(inventory)
    # the capture thread writes: another process's lock is waited for briefly, then what it refuses is
    # kept in memory (bounded, counted, logged) for the next batch, so the capture never stalls on it
    inventory.write_wait, inventory.hold_when_busy = CAPTURE_APPEND_WAIT, True
    alerts, checker = _alerts(cfg, inventory)
    if alerts.store is not None:
        alerts.store.write_wait, alerts.store.hold_when_busy = CAPTURE_APPEND_WAIT, True
    consumers.extend(alerts.consumers)
    alerts.start_file(source, 0)
    changes = AssetChanges(outbox, inventory, cfg.asset_quiet_after,   # a finding that is no alert: an asset record
                           alerted=lambda rule: alerts.book.settings.enabled(rule))
    inventory.on_events = changes.on_events
    consumers.append(changes)
    tune_gc()       # as analyze: a flood of new flows must not spend its CPU in young collections
    pipe = Pipeline(consumers, settings)
    pipe.start_interface(cfg.interface)     # SourceStart "iface:<name>": the evidence source of every frame
    host = socket.gethostname()
    started = time.time()

    def heartbeat(st: dict) -> None:
        changes.tick(time.time() - cfg.interval)   # live packet time is this clock: quiet on a silent network too
        outbox.append("heartbeat", f"hb:{host}:{int(started)}:{loop.beats}", "info", time.time(),
                      {"message": f"sensor {host} alive on {source}", **st})

    def extra() -> dict:
        d = {"assets": len(inventory.assets), "outbox": outbox.stats()["records"],
             "db_held": inventory.counts["flushes.held"], "events_dropped": inventory.counts["events.dropped"]}
        d["alerts"] = len(alerts.by_id)
        return d

    loop = SensorLoop(cap, pipe, source, cfg.heartbeat, on_heartbeat=[heartbeat], extra_stats=extra)
    alerts.book.add_listener(OutboxAlerts(outbox))

    def run() -> int:
        return _run(loop, cap, host, started, source, outbox, inventory, alerts, changes, json_out, db_path, dests,
                    lambda deliverers, start: Reloader(config_path, flags or {}, cfg, alerts, checker, deliverers,
                                                       loop, start))

    run.paths = [db_path] + ([cfg.jsonl] if cfg.jsonl else [])
    run.pipeline = pipe
    return run


def _run(loop, cap, host, started, source, outbox, inventory, alerts, changes, json_out, db_path, dests,
         reloader) -> int:
    from ..sinks.deliver import Deliverer
    from ..store import StoreError

    def start(dest):
        d = Deliverer(db_path, dest, host)
        d.start()
        return d

    deliverers = {d.url: start(d) for d in dests}
    loop.on_reload = reloader(deliverers, start)
    signal.signal(signal.SIGTERM, loop.stop)
    signal.signal(signal.SIGINT, loop.stop)
    signal.signal(signal.SIGHUP, loop.reload)
    try:
        final = loop.run()
    finally:
        alerts.finish()
        if alerts.store is not None:
            try:
                alerts.store.flush_held()
            except StoreError as exc:
                log.error("alerts held in memory not stored (%d changes): %s", len(alerts.store.held), exc)
        try:
            inventory.close()
        except StoreError as exc:
            log.error("inventory not written at the stop: %s", exc)
        changes.finish()
        if json_out is not None:
            json_out.close()
        heartbeat_final = {"message": f"sensor {host} stopped on {source}", **loop.stats()}
        try:
            outbox.append("heartbeat", f"hb:{host}:{int(started)}:stop", "info", time.time(), heartbeat_final)
        except StoreError as exc:
            log.warning("last heartbeat not recorded: %s", exc)
        for d in deliverers.values():
            d.stop(timeout=5.0)
        cap.close()
    click.echo(f"otwatch sensor: stopped after {final['packets']} packets "
               f"({final['kernel_dropped']} dropped by the kernel)", err=True)
    return 0


def _alerts(cfg, inventory):
    """The alert stage of ``analyze`` (sensor/alerts) and, with a policy, its checker."""
    from ..alerts.analysis import OfflineAlerts

    from ..alerts.settings import AlertSettings

    settings, policy, checker = AlertSettings(posture_alerts=cfg.posture_alerts), None, None
    if cfg.policy:
        from ..alerts.policyfile import PolicyFileError, load as load_policy_file

        try:
            settings, policy = load_policy_file(cfg.policy, cfg.posture_alerts)
        except PolicyFileError as exc:
            for line in str(exc).splitlines():
                click.echo(f"otwatch sensor: {line}", err=True)
            sys.exit(2)
    alerts = OfflineAlerts(settings, inventory, inventory.db)
    if policy is not None:
        from ..policy.checker import PolicyChecker

        checker = PolicyChecker(policy, alerts.sink)
        alerts.add_producer(checker)
        inventory.zone_of = checker.zone_of      # the inventory sees the checker's zones (reloads included)
    return alerts, checker
