"""Full decoder: one kernel record (key, raw, ctx) → one typed event.

    decode(key, raw, ctx, side) -> OPCUAEvent     never raises
    describe(key) -> (kind, op, target)          names a key without its bytes
    to_dict(event) -> dict                       JSON-ready (bytes → hex)

``raw`` and ``ctx`` are laid out by the kernel (ext/opcua.py docstring):
raw is one synthetic final chunk (8-byte header with size = len(raw), the
first chunk's security and sequence headers, then the assembled body without
Sign-mode signatures); ctx = (security policy URI | None, mode, channel id).
"""
from __future__ import annotations

import dataclasses
import struct

from . import spec
from .binary import DecodeError, Reader
from .certs import summarize
from .events import (
    ApplicationDescription,
    BrowseDescription,
    BrowsePath,
    BrowsePathResult,
    BrowsePathTarget,
    BrowseResult,
    CallMethod,
    CallResult,
    DataChange,
    EndpointDescription,
    EventFields,
    MonitoredItem,
    MonitoredItemResult,
    OPCUAAbort,
    OPCUAAcknowledge,
    OPCUAActivateSessionRequest,
    OPCUAActivateSessionResponse,
    OPCUABrowseRequest,
    OPCUABrowseResponse,
    OPCUACallRequest,
    OPCUACallResponse,
    OPCUACloseSecureChannel,
    OPCUACloseSessionRequest,
    OPCUACreateMonitoredItemsRequest,
    OPCUACreateMonitoredItemsResponse,
    OPCUACreateSessionRequest,
    OPCUACreateSessionResponse,
    OPCUACreateSubscriptionRequest,
    OPCUACreateSubscriptionResponse,
    OPCUAEncryptedMessage,
    OPCUAError,
    OPCUAEvent,
    OPCUAFindServersRequest,
    OPCUAFindServersResponse,
    OPCUAGetEndpointsRequest,
    OPCUAGetEndpointsResponse,
    OPCUAHello,
    OPCUAOpenSecureChannel,
    OPCUAPublishRequest,
    OPCUAPublishResponse,
    OPCUAReadRequest,
    OPCUAReadResponse,
    OPCUAReverseHello,
    OPCUAServiceFault,
    OPCUAServiceRequest,
    OPCUAServiceResponse,
    OPCUATranslateBrowsePathsToNodeIdsRequest,
    OPCUATranslateBrowsePathsToNodeIdsResponse,
    OPCUAUnknownService,
    OPCUAWriteRequest,
    OPCUAWriteResponse,
    ReadValueId,
    RelativePathElement,
    RequestHeader,
    ResponseHeader,
    UserTokenPolicy,
    WriteValue,
)

__all__ = ["decode", "describe", "to_dict", "MESSAGE_KINDS"]

MESSAGE_KINDS = {
    spec.HEL: ("opcua.hello", "connect"),
    spec.ACK: ("opcua.acknowledge", "connect"),
    spec.ERR: ("opcua.error", "connect"),
    spec.RHE: ("opcua.reverse_hello", "connect"),
    spec.OPN: ("opcua.open_secure_channel", "secure_channel"),
    spec.CLO: ("opcua.close_secure_channel", "secure_channel"),
    spec.MSG_ENCRYPTED: ("opcua.encrypted_message", "other"),
    spec.MSG_ABORT: ("opcua.abort", "other"),
}
"""Kinds of the non-service keys; services are ``opcua.<snake name>`` (opcua.read_request)."""


# ------------------------------------------------------------------ describe
def describe(key: tuple) -> tuple[str, str, str]:
    """(kind, op, target) for a kernel key; target is "" except for node-keyed requests
    (``nodes=<count>``, ``overflow`` past the key cap, ``unparsed``)."""
    if not key:
        return "opcua.unknown", "other", ""
    code = key[0]
    if code == spec.MSG_SERVICE and len(key) > 1:
        info = spec.SERVICES.get(key[1])
        if info is None:
            return "opcua.unknown_service", "other", "type_id=%d" % key[1]
        target = ""
        if len(key) >= 4:       # node-keyed request (spec.NODE_KEYED_SERVICES): (type, tid, count, digest)
            n = key[2]
            target = "overflow" if n == spec.KEY_OVERFLOW else "unparsed" if n == spec.KEY_UNPARSED else \
                "nodes=%d" % n
        return "opcua." + spec.snake(info.name), info.op, target
    kind = MESSAGE_KINDS.get(code)
    if kind is None:
        return "opcua.unknown", "other", ""
    return kind[0], kind[1], ""


# ---------------------------------------------------------------- to_dict
def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def to_dict(event) -> dict:
    """JSON-ready dict of an event: {"event": class name, field: value...}; bytes as hex."""
    d = {"event": type(event).__name__}
    d.update(_plain(event))
    return d


# ------------------------------------------------------------ sub-structures
def _request_header(r: Reader) -> RequestHeader:
    token = r.nodeid()
    ts = r.datetime()
    handle = r.uint32()
    diags = r.uint32()
    audit = r.string()
    hint = r.uint32()
    r.extension_object()
    return RequestHeader(timestamp=ts, request_handle=handle, return_diagnostics=diags, audit_entry_id=audit,
                         timeout_hint=hint, authenticated=token not in ("i=0",))


def _response_header(r: Reader) -> ResponseHeader:
    ts = r.datetime()
    handle = r.uint32()
    result = r.uint32()
    r.diagnostic_info()
    r.array(r.string, 4, "StringTable")
    r.extension_object()
    return ResponseHeader(timestamp=ts, request_handle=handle, service_result=result,
                          service_result_name=spec.status_name(result))


def _strings(r: Reader, what: str) -> tuple:
    return tuple(r.array(r.string, 4, what)[1])


def _app(r: Reader) -> ApplicationDescription:
    uri = r.string()
    product = r.string()
    name = r.localized_text()
    atype = r.uint32()
    gateway = r.string()
    profile = r.string()
    urls = _strings(r, "DiscoveryUrls")
    return ApplicationDescription(application_uri=uri, product_uri=product, application_name=name,
                                  application_type=atype,
                                  application_type_name=spec.APPLICATION_TYPE_NAMES.get(atype, "Unknown"),
                                  gateway_server_uri=gateway, discovery_profile_uri=profile, discovery_urls=urls)


def _token_policy(r: Reader) -> UserTokenPolicy:
    pid = r.string()
    ttype = r.uint32()
    return UserTokenPolicy(policy_id=pid, token_type=ttype,
                           token_type_name=spec.USER_TOKEN_TYPE_NAMES.get(ttype, "Unknown"),
                           issued_token_type=r.string(), issuer_endpoint_url=r.string(),
                           security_policy_uri=r.string())


def _endpoint(r: Reader) -> EndpointDescription:
    url = r.string()
    server = _app(r)
    cert = summarize(r.bytestring())
    mode = r.uint32()
    policy = r.string()
    _, tokens = r.array(lambda: _token_policy(r), 4 * 5 + 4, "UserIdentityTokens")
    transport = r.string()
    level = r.byte()
    return EndpointDescription(endpoint_url=url, server=server, server_certificate=cert, security_mode=mode,
                               security_mode_name=spec.MODE_NAMES.get(mode, "Unknown"), security_policy_uri=policy,
                               user_identity_tokens=tuple(tokens), transport_profile_uri=transport,
                               security_level=level)


def _skip_signed_software_certificates(r: Reader) -> None:
    def one():
        r.skip_bytestring()
        r.skip_bytestring()

    r.array(one, 8, "SoftwareCertificates")


def _skip_signature_data(r: Reader) -> str | None:
    alg = r.string()
    r.skip_bytestring()
    return alg


def _status_names(r: Reader, what: str) -> tuple[int, tuple]:
    n, codes = r.array(r.uint32, 4, what)
    return n, tuple(spec.status_name(c) for c in codes)


def _read_value_id(r: Reader) -> ReadValueId:
    node = r.nodeid()
    attr = r.uint32()
    rng = r.string()
    r.qualified_name()  # DataEncoding
    return ReadValueId(node_id=node, attribute_id=attr, attribute=spec.ATTRIBUTE_NAMES.get(attr, "Unknown"),
                       index_range=rng)


# ------------------------------------------------------------- service bodies
# Each takes (reader, common fields dict) and returns the event; common holds
# side/framing fields and the header, and a partially filled dict is used to
# build a malformed event when a DecodeError escapes.

def _get_endpoints_req(r, f):
    f["endpoint_url"] = r.string()
    f["locale_ids"] = _strings(r, "LocaleIds")
    f["profile_uris"] = _strings(r, "ProfileUris")


def _get_endpoints_resp(r, f):
    n, eps = r.array(lambda: _endpoint(r), 4, "Endpoints")
    f["endpoint_count"], f["endpoints"] = n, tuple(eps)


def _find_servers_req(r, f):
    f["endpoint_url"] = r.string()
    f["locale_ids"] = _strings(r, "LocaleIds")
    f["server_uris"] = _strings(r, "ServerUris")


def _find_servers_resp(r, f):
    n, servers = r.array(lambda: _app(r), 4, "Servers")
    f["server_count"], f["servers"] = n, tuple(servers)


def _create_session_req(r, f):
    f["client_description"] = _app(r)
    f["server_uri"] = r.string()
    f["endpoint_url"] = r.string()
    f["session_name"] = r.string()
    f["client_nonce_length"] = max(r.skip_bytestring(), 0)
    f["client_certificate"] = summarize(r.bytestring())
    f["requested_session_timeout"] = r.double()
    f["max_response_message_size"] = r.uint32()


def _create_session_resp(r, f):
    f["session_id"] = r.nodeid()
    r.nodeid()  # AuthenticationToken: a session secret, not kept
    f["revised_session_timeout"] = r.double()
    f["server_nonce_length"] = max(r.skip_bytestring(), 0)
    f["server_certificate"] = summarize(r.bytestring())
    n, eps = r.array(lambda: _endpoint(r), 4, "ServerEndpoints")
    f["server_endpoint_count"], f["server_endpoints"] = n, tuple(eps)
    _skip_signed_software_certificates(r)
    _skip_signature_data(r)
    f["max_request_message_size"] = r.uint32()


def _activate_session_req(r, f):
    f["client_signature_algorithm"] = _skip_signature_data(r)
    _skip_signed_software_certificates(r)
    f["locale_ids"] = _strings(r, "LocaleIds")
    eo, body = r.extension_object_body()
    f["identity_token_type_id"] = eo.type_id
    token = spec.IDENTITY_TOKENS.get(eo.type_num)
    if token is not None:
        f["identity_token"] = token[0]
        f["user_token_type"] = int(token[1])
        f["user_token_type_name"] = spec.USER_TOKEN_TYPE_NAMES[int(token[1])]
    elif eo.encoding or eo.type_num != 0:
        f["identity_token"] = "Unknown"
    if body is not None:
        f["policy_id"] = body.string()
        if eo.type_num == 324:  # UserNameIdentityToken: UserName, Password, EncryptionAlgorithm
            f["user_name"] = body.string()
            n = body.skip_bytestring()  # the password: skipped, never stored
            f["password_present"] = n > 0
            alg = body.string()
            f["encryption_algorithm"] = alg
            f["password_encrypted"] = bool(alg)
        elif eo.type_num == 327:  # X509IdentityToken: CertificateData
            f["user_certificate"] = summarize(body.bytestring())
        elif eo.type_num == 940:  # IssuedIdentityToken: TokenData, EncryptionAlgorithm
            n = body.skip_bytestring()
            f["password_present"] = False
            alg = body.string()
            f["encryption_algorithm"] = alg
            f["password_encrypted"] = bool(alg)
    _skip_signature_data(r)  # UserTokenSignature


def _activate_session_resp(r, f):
    f["server_nonce_length"] = max(r.skip_bytestring(), 0)
    f["result_count"], f["results"] = _status_names(r, "Results")


def _close_session_req(r, f):
    f["delete_subscriptions"] = r.boolean()


def _read_req(r, f):
    f["max_age"] = r.double()
    ttr = r.uint32()
    f["timestamps_to_return"] = spec.TIMESTAMPS_TO_RETURN_NAMES.get(ttr, "Unknown")
    n, nodes = r.array(lambda: _read_value_id(r), 1 + 4 + 4 + 6, "NodesToRead")
    f["node_count"], f["nodes"] = n, tuple(nodes)


def _read_resp(r, f):
    n, values = r.array(r.data_value, 1, "Results")
    f["result_count"], f["results"] = n, tuple(values)


def _write_value(r: Reader) -> WriteValue:
    node = r.nodeid()
    attr = r.uint32()
    rng = r.string()
    dv = r.data_value()
    return WriteValue(node_id=node, attribute_id=attr, attribute=spec.ATTRIBUTE_NAMES.get(attr, "Unknown"),
                      index_range=rng, value_type=dv.value.type if dv.value else None,
                      value=dv.value.value if dv.value else None)


def _write_req(r, f):
    n, nodes = r.array(lambda: _write_value(r), 1 + 4 + 4 + 1, "NodesToWrite")
    f["node_count"], f["nodes"] = n, tuple(nodes)


def _write_resp(r, f):
    f["result_count"], f["results"] = _status_names(r, "Results")


def _browse_description(r: Reader) -> BrowseDescription:
    node = r.nodeid()
    direction = r.uint32()
    ref = r.nodeid()
    return BrowseDescription(node_id=node, direction=spec.BROWSE_DIRECTION_NAMES.get(direction, "Unknown"),
                             reference_type_id=ref, include_subtypes=r.boolean(), node_class_mask=r.uint32(),
                             result_mask=r.uint32())


def _browse_req(r, f):
    f["view_id"] = r.nodeid()
    r.datetime()
    r.uint32()
    f["max_references_per_node"] = r.uint32()
    n, nodes = r.array(lambda: _browse_description(r), 1 + 4 + 1 + 1 + 4 + 4, "NodesToBrowse")
    f["node_count"], f["nodes"] = n, tuple(nodes)


def _reference(r: Reader) -> tuple[str, str]:
    r.nodeid()  # ReferenceTypeId
    r.boolean()  # IsForward
    target = r.expanded_nodeid()
    name = r.qualified_name()
    r.localized_text()
    r.uint32()  # NodeClass
    r.expanded_nodeid()  # TypeDefinition
    return target, name


def _browse_result(r: Reader) -> BrowseResult:
    status = r.uint32()
    r.skip_bytestring()  # ContinuationPoint
    n, refs = r.array(lambda: _reference(r), 1 + 1 + 1 + 2 + 4 + 1 + 4 + 1, "References")
    return BrowseResult(status_name=spec.status_name(status), reference_count=n, references=tuple(refs))


def _browse_resp(r, f):
    n, results = r.array(lambda: _browse_result(r), 4 + 4 + 4, "Results")
    f["result_count"], f["results"] = n, tuple(results)


def _call_method(r: Reader) -> CallMethod:
    obj = r.nodeid()
    method = r.nodeid()
    n, args = r.array(r.variant, 1, "InputArguments")
    return CallMethod(object_id=obj, method_id=method, argument_count=n, argument_types=tuple(a.type for a in args))


def _call_req(r, f):
    n, methods = r.array(lambda: _call_method(r), 2 + 2 + 4, "MethodsToCall")
    f["method_count"], f["methods"] = n, tuple(methods)


def _call_result(r: Reader) -> CallResult:
    status = r.uint32()
    r.array(r.uint32, 4, "InputArgumentResults")
    r.array(r.diagnostic_info, 1, "InputArgumentDiagnosticInfos")
    n, outs = r.array(r.variant, 1, "OutputArguments")
    return CallResult(status_name=spec.status_name(status), output_count=n, outputs=tuple(outs))


def _call_resp(r, f):
    n, results = r.array(lambda: _call_result(r), 4 + 4 + 4 + 4, "Results")
    f["result_count"], f["results"] = n, tuple(results)


def _create_subscription_req(r, f):
    f["requested_publishing_interval"] = r.double()
    f["requested_lifetime_count"] = r.uint32()
    f["requested_max_keep_alive_count"] = r.uint32()
    f["max_notifications_per_publish"] = r.uint32()
    f["publishing_enabled"] = r.boolean()
    f["priority"] = r.byte()


def _create_subscription_resp(r, f):
    f["subscription_id"] = r.uint32()
    f["revised_publishing_interval"] = r.double()
    f["revised_lifetime_count"] = r.uint32()
    f["revised_max_keep_alive_count"] = r.uint32()


def _monitored_item(r: Reader) -> MonitoredItem:
    rv = _read_value_id(r)
    mode = r.uint32()
    handle = r.uint32()
    interval = r.double()
    r.extension_object()  # Filter
    queue = r.uint32()
    r.boolean()  # DiscardOldest
    return MonitoredItem(node_id=rv.node_id, attribute_id=rv.attribute_id, attribute=rv.attribute,
                         monitoring_mode=spec.MONITORING_MODE_NAMES.get(mode, "Unknown"), client_handle=handle,
                         sampling_interval=interval, queue_size=queue)


def _create_monitored_items_req(r, f):
    f["subscription_id"] = r.uint32()
    ttr = r.uint32()
    f["timestamps_to_return"] = spec.TIMESTAMPS_TO_RETURN_NAMES.get(ttr, "Unknown")
    n, items = r.array(lambda: _monitored_item(r), 15 + 4 + 4 + 8 + 3 + 4 + 1, "ItemsToCreate")
    f["item_count"], f["items"] = n, tuple(items)


def _monitored_item_result(r: Reader) -> MonitoredItemResult:
    status = r.uint32()
    item = r.uint32()
    interval = r.double()
    r.uint32()  # RevisedQueueSize
    r.extension_object()  # FilterResult
    return MonitoredItemResult(status_name=spec.status_name(status), monitored_item_id=item,
                               revised_sampling_interval=interval)


def _create_monitored_items_resp(r, f):
    n, results = r.array(lambda: _monitored_item_result(r), 4 + 4 + 8 + 4 + 3, "Results")
    f["result_count"], f["results"] = n, tuple(results)


def _publish_req(r, f):
    n, acks = r.array(lambda: (r.uint32(), r.uint32()), 8, "SubscriptionAcknowledgements")
    f["acknowledgement_count"], f["acknowledgements"] = n, tuple(acks)


def _data_change(r: Reader) -> DataChange:
    handle = r.uint32()
    dv = r.data_value()
    v = dv.value
    return DataChange(client_handle=handle, value_type=v.type if v else None,
                      array_length=v.array_length if v else None, value=v.value if v else None,
                      status_name=dv.status_name, source_timestamp=dv.source_timestamp,
                      server_timestamp=dv.server_timestamp)


def _event_fields(r: Reader) -> EventFields:
    handle = r.uint32()
    n = r.int32()
    if n < -1:
        raise DecodeError(f"negative EventFields length {n}")
    r.need(max(n, 0), "EventFields")  # every Variant takes at least one byte
    for _ in range(max(n, 0)):
        r.variant()
    return EventFields(client_handle=handle, field_count=max(n, 0))


def _publish_resp(r, f):
    f["subscription_id"] = r.uint32()
    f["available_sequence_numbers"] = r.array(r.uint32, 4, "AvailableSequenceNumbers")[0]
    f["more_notifications"] = r.boolean()
    f["sequence_number"] = r.uint32()
    f["publish_time"] = r.datetime()
    types: list = []
    changes: list = []
    events: list = []
    counts = {"data_change_count": 0, "event_count": 0}

    def keep(target: list, items: list) -> None:
        target.extend(items[: spec.MAX_LIST_ITEMS - len(target)])

    def one():
        eo, body = r.extension_object_body()
        types.append(spec.NOTIFICATION_TYPES.get(eo.type_num, eo.type_id))
        f["notification_types"] = tuple(types[: spec.MAX_LIST_ITEMS])
        if body is None:
            return
        if eo.type_num == spec.DATA_CHANGE_NOTIFICATION:
            # MonitoredItems [ClientHandle UInt32, Value DataValue], DiagnosticInfos
            n, items = body.array(lambda: _data_change(body), 4 + 1, "MonitoredItems")
            counts["data_change_count"] += n
            keep(changes, items)
            body.array(body.diagnostic_info, 1, "DiagnosticInfos")
        elif eo.type_num == spec.EVENT_NOTIFICATION_LIST:
            # Events [ClientHandle UInt32, EventFields Variant[]]
            n, items = body.array(lambda: _event_fields(body), 4 + 4, "Events")
            counts["event_count"] += n
            keep(events, items)
        elif eo.type_num == spec.STATUS_CHANGE_NOTIFICATION:
            # Status StatusCode, DiagnosticInfo
            f["status_change"] = spec.status_name(body.uint32())
            body.diagnostic_info()
        f.update(counts, data_changes=tuple(changes), events=tuple(events),
                 notification_count=counts["data_change_count"] + counts["event_count"])

    r.array(one, 3, "NotificationData")
    f["notification_types"] = tuple(types[: spec.MAX_LIST_ITEMS])
    f["result_count"], f["results"] = _status_names(r, "Results")


# RelativePath text form (Part 4 A.2): these characters of a name are escaped with '&'
_PATH_RESERVED = frozenset("/.<>:#!&")
_HIERARCHICAL_REFERENCES = "i=33"
_AGGREGATES = "i=44"


def _path_name(ns: int, name: str) -> str:
    local = "".join("&" + ch if ch in _PATH_RESERVED else ch for ch in name)
    return f"{ns}:{local}" if ns else local


def _relative_path_element(r: Reader) -> tuple[RelativePathElement, str]:
    """One element and its text form (Part 4 A.2)."""
    ref = r.nodeid()
    inverse = r.boolean()
    subtypes = r.boolean()
    ns = r.uint16()
    name = r.string() or ""
    el = RelativePathElement(reference_type_id=ref, is_inverse=inverse, include_subtypes=subtypes,
                             target_name=name if ns == 0 else "%d:%s" % (ns, name))
    if ref == _HIERARCHICAL_REFERENCES and not inverse and subtypes:
        hop = "/"
    elif ref == _AGGREGATES and not inverse and subtypes:
        hop = "."
    else:
        hop = "<" + ("#" if not subtypes else "") + ("!" if inverse else "") + ref + ">"
    return el, hop + _path_name(ns, name)


def _browse_path(r: Reader) -> BrowsePath:
    start = r.nodeid()
    n, items = r.array(lambda: _relative_path_element(r), 2 + 1 + 1 + 2 + 4, "RelativePath.Elements")
    text = "".join(t for _, t in items) + ("…" if n > len(items) else "")
    return BrowsePath(starting_node=start, element_count=n, elements=tuple(e for e, _ in items),
                      path=text[: spec.MAX_STRING_CHARS])


def _translate_req(r, f):
    n, paths = r.array(lambda: _browse_path(r), 2 + 4, "BrowsePaths")
    f["browse_path_count"], f["browse_paths"] = n, tuple(paths)


def _browse_path_target(r: Reader) -> BrowsePathTarget:
    target = r.expanded_nodeid()
    remaining = r.uint32()
    return BrowsePathTarget(target_id=target, remaining_path_index=None if remaining == 0xFFFFFFFF else remaining)


def _browse_path_result(r: Reader) -> BrowsePathResult:
    status = r.uint32()
    n, targets = r.array(lambda: _browse_path_target(r), 2 + 4, "Targets")
    return BrowsePathResult(status_name=spec.status_name(status), target_count=n, targets=tuple(targets))


def _translate_resp(r, f):
    n, results = r.array(lambda: _browse_path_result(r), 4 + 4, "Results")
    f["result_count"], f["results"] = n, tuple(results)


# type id -> (event class, body decoder or None)
_SERVICE_DECODERS = {
    428: (OPCUAGetEndpointsRequest, _get_endpoints_req),
    431: (OPCUAGetEndpointsResponse, _get_endpoints_resp),
    422: (OPCUAFindServersRequest, _find_servers_req),
    425: (OPCUAFindServersResponse, _find_servers_resp),
    461: (OPCUACreateSessionRequest, _create_session_req),
    464: (OPCUACreateSessionResponse, _create_session_resp),
    467: (OPCUAActivateSessionRequest, _activate_session_req),
    470: (OPCUAActivateSessionResponse, _activate_session_resp),
    473: (OPCUACloseSessionRequest, _close_session_req),
    631: (OPCUAReadRequest, _read_req),
    634: (OPCUAReadResponse, _read_resp),
    673: (OPCUAWriteRequest, _write_req),
    676: (OPCUAWriteResponse, _write_resp),
    527: (OPCUABrowseRequest, _browse_req),
    530: (OPCUABrowseResponse, _browse_resp),
    712: (OPCUACallRequest, _call_req),
    715: (OPCUACallResponse, _call_resp),
    787: (OPCUACreateSubscriptionRequest, _create_subscription_req),
    790: (OPCUACreateSubscriptionResponse, _create_subscription_resp),
    751: (OPCUACreateMonitoredItemsRequest, _create_monitored_items_req),
    754: (OPCUACreateMonitoredItemsResponse, _create_monitored_items_resp),
    826: (OPCUAPublishRequest, _publish_req),
    829: (OPCUAPublishResponse, _publish_resp),
    554: (OPCUATranslateBrowsePathsToNodeIdsRequest, _translate_req),
    557: (OPCUATranslateBrowsePathsToNodeIdsResponse, _translate_resp),
    397: (OPCUAServiceFault, None),
}
DECODED_SERVICE_IDS = frozenset(_SERVICE_DECODERS)
"""Type ids with a field-level decoder; every other known id decodes to its header."""


def _fields_for(cls, f: dict) -> dict:
    names = {fl.name for fl in dataclasses.fields(cls)}
    return {k: v for k, v in f.items() if k in names}


def _service(raw: bytes, side: int) -> OPCUAEvent:
    cid, token, seq, reqid = struct.unpack_from("<IIII", raw, 8)
    f: dict = {"side": side, "secure_channel_id": cid, "token_id": token, "sequence_number": seq,
               "request_id": reqid}
    r = Reader(raw, spec.SYMMETRIC_BODY_OFFSET)
    cls = OPCUAUnknownService
    try:
        type_text, tid = r.nodeid_numeric()
        f["type_id"] = tid
        info = spec.SERVICES.get(tid)
        if info is None:
            f["type_node_id"] = type_text
            f["service"] = "Unknown"
            return OPCUAUnknownService(**f)
        f["service"] = info.name
        entry = _SERVICE_DECODERS.get(tid)
        if entry is not None:
            cls, body = entry
        else:
            cls, body = (OPCUAServiceRequest if info.is_request else OPCUAServiceResponse), None
        f["header"] = _request_header(r) if info.is_request else _response_header(r)
        if body is not None:
            body(r, f)
        return cls(**_fields_for(cls, f))
    except DecodeError as exc:
        f["malformed"] = str(exc)
        return cls(**_fields_for(cls, f))


def _opn(raw: bytes, side: int) -> OPCUAEvent:
    f: dict = {"side": side}
    r = Reader(raw, spec.HEADER_LEN)
    try:
        f["secure_channel_id"] = r.uint32()
        uri = r.string()
        f["security_policy_uri"] = uri
        entry = spec.SECURITY_POLICIES.get(uri) if uri is not None else None
        f["security_policy"] = entry[1] if entry else ""
        f["security_policy_deprecated"] = bool(entry and entry[2])
        f["sender_certificate"] = summarize(r.bytestring())
        thumb = r.bytestring()
        if thumb:
            f["receiver_thumbprint"] = thumb.hex()
            f["encrypted"] = True
            return OPCUAOpenSecureChannel(**f)
        f["sequence_number"] = r.uint32()
        f["request_id"] = r.uint32()
        _, tid = r.nodeid_numeric()
        if tid == spec.OPEN_SECURE_CHANNEL_REQUEST:
            f["direction"] = "request"
            f["request_header"] = _request_header(r)
            f["client_protocol_version"] = r.uint32()
            rt = r.uint32()
            f["request_type"] = spec.SECURITY_TOKEN_REQUEST_TYPE_NAMES.get(rt, "Unknown")
            mode = r.uint32()
            f["security_mode"] = mode
            f["security_mode_name"] = spec.MODE_NAMES.get(mode, "Unknown")
            f["client_nonce_length"] = max(r.skip_bytestring(), 0)
            f["requested_lifetime"] = r.uint32()
        elif tid == spec.OPEN_SECURE_CHANNEL_RESPONSE:
            f["direction"] = "response"
            f["response_header"] = _response_header(r)
            f["server_protocol_version"] = r.uint32()
            f["channel_id"] = r.uint32()
            f["token_id"] = r.uint32()
            f["created_at"] = r.datetime()
            f["revised_lifetime"] = r.uint32()
            f["server_nonce_length"] = max(r.skip_bytestring(), 0)
        elif tid == spec.SERVICE_FAULT:
            f["direction"] = "response"
            f["response_header"] = _response_header(r)
        else:
            raise DecodeError("OPN body type id %d is not OpenSecureChannel" % tid)
    except DecodeError as exc:
        f["malformed"] = str(exc)
    return OPCUAOpenSecureChannel(**f)


def _clo(raw: bytes, ctx, side: int) -> OPCUAEvent:
    cid, token = struct.unpack_from("<II", raw, 8)
    f: dict = {"side": side, "secure_channel_id": cid, "token_id": token}
    if ctx is not None and ctx[1] == spec.MessageSecurityMode.SIGN_AND_ENCRYPT:
        return OPCUACloseSecureChannel(encrypted=True, **f)
    try:
        r = Reader(raw, spec.SYMMETRIC_PREFIX_LEN)
        f["sequence_number"] = r.uint32()
        f["request_id"] = r.uint32()
        _, tid = r.nodeid_numeric()
        if tid != spec.CLOSE_SECURE_CHANNEL_REQUEST:
            raise DecodeError("CLO body type id %d is not CloseSecureChannelRequest" % tid)
        f["request_header"] = _request_header(r)
    except DecodeError as exc:
        f["malformed"] = str(exc)
    return OPCUACloseSecureChannel(**f)


def _abort(raw: bytes, ctx, side: int) -> OPCUAEvent:
    f: dict = {"side": side}
    try:
        r = Reader(raw, spec.HEADER_LEN)
        f["secure_channel_id"] = r.uint32()
        if ctx is not None and ctx[1] == spec.MessageSecurityMode.SIGN_AND_ENCRYPT:
            return OPCUAAbort(encrypted=True, **f)
        r.uint32()  # token id
        r.uint32()  # sequence number
        f["request_id"] = r.uint32()
        code = r.uint32()
        f["status_code"], f["status_name"] = code, spec.status_name(code)
        f["reason"] = r.string()
    except DecodeError as exc:
        f["malformed"] = str(exc)
    return OPCUAAbort(**f)


def _hello(raw: bytes, side: int, cls) -> OPCUAEvent:
    f: dict = {"side": side}
    r = Reader(raw, spec.HEADER_LEN)
    try:
        for name in spec.HELLO_FIELDS:
            f[name] = r.uint32()
        if cls is OPCUAHello:
            f["endpoint_url"] = r.string()
    except DecodeError as exc:
        f["malformed"] = str(exc)
    return cls(**f)


def _error(raw: bytes, side: int) -> OPCUAEvent:
    f: dict = {"side": side}
    r = Reader(raw, spec.HEADER_LEN)
    try:
        code = r.uint32()
        f["status_code"], f["status_name"] = code, spec.status_name(code)
        f["reason"] = r.string()
    except DecodeError as exc:
        f["malformed"] = str(exc)
    return OPCUAError(**f)


def _reverse_hello(raw: bytes, side: int) -> OPCUAEvent:
    f: dict = {"side": side}
    r = Reader(raw, spec.HEADER_LEN)
    try:
        f["server_uri"] = r.string()
        f["endpoint_url"] = r.string()
    except DecodeError as exc:
        f["malformed"] = str(exc)
    return OPCUAReverseHello(**f)


def _encrypted(raw: bytes, ctx, side: int) -> OPCUAEvent:
    cid, token = struct.unpack_from("<II", raw, 8)
    return OPCUAEncryptedMessage(side=side, secure_channel_id=cid, token_id=token, size=len(raw),
                                 encrypted_bytes=max(len(raw) - spec.SYMMETRIC_PREFIX_LEN, 0),
                                 security_policy_uri=ctx[0] if ctx else None)


def decode(key: tuple, raw: bytes, ctx, side: int) -> OPCUAEvent:
    """Decode one assembled message; never raises (malformed → event with ``malformed`` set)."""
    try:
        code = key[0]
        raw = bytes(raw)
        if code == spec.MSG_SERVICE:
            if len(raw) < spec.SYMMETRIC_BODY_OFFSET:
                return OPCUAUnknownService(side=side, malformed="message shorter than its sequence header")
            return _service(raw, side)
        if code == spec.HEL:
            return _hello(raw, side, OPCUAHello)
        if code == spec.ACK:
            return _hello(raw, side, OPCUAAcknowledge)
        if code == spec.ERR:
            return _error(raw, side)
        if code == spec.RHE:
            return _reverse_hello(raw, side)
        if code == spec.OPN:
            return _opn(raw, side)
        if len(raw) < spec.SYMMETRIC_PREFIX_LEN:
            return OPCUAEvent(side=side, malformed="message shorter than its security header")
        if code == spec.CLO:
            return _clo(raw, ctx, side)
        if code == spec.MSG_ENCRYPTED:
            return _encrypted(raw, ctx, side)
        if code == spec.MSG_ABORT:
            return _abort(raw, ctx, side)
        return OPCUAEvent(side=side, malformed="unknown key %r" % (key,))
    except Exception as exc:  # a decoder bug must not take the sensor down; report it
        return OPCUAEvent(side=side, malformed="internal decoder error: %s" % type(exc).__name__)
