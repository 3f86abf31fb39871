"""MQTT 3.1, 3.1.1 and 5.0: spec tables, events, full decoder, sans-IO connection.

The framing kernel is ``otwatch.ext.mqtt`` (compiled or pure); see
docs/protocols/mqtt.md.
"""
from .connection import MQTTConnection
from .decode import decode, describe, to_dict
from .events import Anomaly

__all__ = ["MQTTConnection", "decode", "describe", "to_dict", "Anomaly"]
