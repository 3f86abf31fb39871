"""East-west baselines: learn what each communicating pair does, then report departures.

Contract (one module per concern):

* ``rules``    the rule ids the baseline raises (imported by the alert catalogue)
* ``model``    what is learned: assets, pairs (client → server, protocol, port) and,
               per pair, Modbus units / function codes / register coverage, MQTT
               topics and session habits, OPC UA services / nodes / security, timing
* ``intervals`` interval sets (register coverage)
* ``learn``    a Pipeline consumer that fills a model from observations, keeps the
               learning curve and says when learning is done
* ``detect``   a Pipeline consumer that compares observations with a model and hands
               ``Finding``s (sensor.alerts.model) to an ``AlertSink``
* ``monitor``  learn, then detect: one consumer for a live sensor (switches when learning ends)
* ``timing``   per-interval counts per pair and request (sliding windows for sweeps, storms and
               floods: ``sensor.alerts.windows``, shared with the policy checker)
* ``facts``    observations -> facts, read once for the learner and the detector
* ``yamlio``   reviewable, deterministic YAML export/import (export → import → export
               is identical)
* ``store``    where the learning state lives between runs (a YAML file)
* ``diff``     what two baselines (or two captures) disagree on
* ``cli``      ``otwatch baseline ...``

Observations are the only input (docs/architecture.md, "What the next consumers
take from the stream"); packet time only, so a capture and the wire learn alike.
"""
