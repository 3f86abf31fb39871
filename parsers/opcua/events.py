"""Typed, frozen events for OPC UA binary messages (one per complete message).

Every event has ``side`` (0 client = TCP initiator, 1 server) and ``malformed``
(None, or why the body did not parse; the fields decoded before the failure are
kept).  Strings are as sent (bounded by ``spec.MAX_STRING_CHARS``); lists are cut
at ``spec.MAX_LIST_ITEMS`` and their true length is in the ``*_count`` field.

Secrets: ActivateSession events never carry a password, only whether one was
present and whether it was encrypted; session authentication tokens and nonces
are reported by length only.
"""
from __future__ import annotations

from dataclasses import dataclass

from .binary import DataValueSummary, VariantSummary
from .certs import CertificateSummary

__all__ = [
    "Anomaly", "ApplicationDescription", "UserTokenPolicy", "EndpointDescription", "RequestHeader",
    "ResponseHeader", "ReadValueId", "WriteValue", "BrowseDescription", "BrowseResult", "CallMethod",
    "CallResult", "MonitoredItem", "MonitoredItemResult", "DataChange", "EventFields", "RelativePathElement",
    "BrowsePath", "BrowsePathTarget", "BrowsePathResult", "OPCUAEvent", "OPCUAHello", "OPCUAAcknowledge",
    "OPCUAError", "OPCUAReverseHello", "OPCUAAbort", "OPCUAOpenSecureChannel", "OPCUACloseSecureChannel",
    "OPCUAEncryptedMessage", "OPCUAService", "OPCUARequest", "OPCUAResponse", "OPCUAServiceRequest",
    "OPCUAServiceResponse", "OPCUAUnknownService", "OPCUAGetEndpointsRequest", "OPCUAGetEndpointsResponse",
    "OPCUAFindServersRequest", "OPCUAFindServersResponse", "OPCUACreateSessionRequest",
    "OPCUACreateSessionResponse", "OPCUAActivateSessionRequest", "OPCUAActivateSessionResponse",
    "OPCUACloseSessionRequest", "OPCUAReadRequest", "OPCUAReadResponse", "OPCUAWriteRequest",
    "OPCUAWriteResponse", "OPCUABrowseRequest", "OPCUABrowseResponse", "OPCUACallRequest", "OPCUACallResponse",
    "OPCUACreateSubscriptionRequest", "OPCUACreateSubscriptionResponse", "OPCUACreateMonitoredItemsRequest",
    "OPCUACreateMonitoredItemsResponse", "OPCUAPublishRequest", "OPCUAPublishResponse",
    "OPCUATranslateBrowsePathsToNodeIdsRequest", "OPCUATranslateBrowsePathsToNodeIdsResponse", "OPCUAServiceFault",
    "CertificateSummary", "VariantSummary", "DataValueSummary",
]

_E = dict(frozen=True, kw_only=True)


@dataclass(frozen=True)
class Anomaly:
    """A counted protocol anomaly from the kernel (stable dotted id, see docs/protocols/opcua.md)."""

    id: str
    side: int
    detail: str


# --------------------------------------------------------------- structures
@dataclass(**_E)
class ApplicationDescription:
    application_uri: str | None = None
    product_uri: str | None = None
    application_name: str | None = None
    application_type: int = -1
    application_type_name: str = ""
    gateway_server_uri: str | None = None
    discovery_profile_uri: str | None = None
    discovery_urls: tuple[str | None, ...] = ()


@dataclass(**_E)
class UserTokenPolicy:
    policy_id: str | None = None
    token_type: int = -1
    token_type_name: str = ""
    issued_token_type: str | None = None
    issuer_endpoint_url: str | None = None
    security_policy_uri: str | None = None


@dataclass(**_E)
class EndpointDescription:
    endpoint_url: str | None = None
    server: ApplicationDescription | None = None
    server_certificate: CertificateSummary | None = None
    security_mode: int = -1
    security_mode_name: str = ""
    security_policy_uri: str | None = None
    user_identity_tokens: tuple[UserTokenPolicy, ...] = ()
    transport_profile_uri: str | None = None
    security_level: int = 0


@dataclass(**_E)
class RequestHeader:
    timestamp: str | None = None
    request_handle: int = 0
    return_diagnostics: int = 0
    audit_entry_id: str | None = None
    timeout_hint: int = 0
    authenticated: bool = False
    """An authentication token is present (its value, a session secret, is not kept)."""


@dataclass(**_E)
class ResponseHeader:
    timestamp: str | None = None
    request_handle: int = 0
    service_result: int = 0
    service_result_name: str = "Good"


@dataclass(**_E)
class ReadValueId:
    node_id: str
    attribute_id: int
    attribute: str
    index_range: str | None = None


@dataclass(**_E)
class WriteValue:
    node_id: str
    attribute_id: int
    attribute: str
    index_range: str | None = None
    value_type: str | None = None
    value: str | None = None
    """Summary of the written value (escaped, shortened)."""


@dataclass(**_E)
class BrowseDescription:
    node_id: str
    direction: str
    reference_type_id: str
    include_subtypes: bool
    node_class_mask: int
    result_mask: int


@dataclass(**_E)
class BrowseResult:
    status_name: str
    reference_count: int
    references: tuple[tuple[str, str], ...] = ()
    """(target node id, browse name) of the first references."""


@dataclass(**_E)
class CallMethod:
    object_id: str
    method_id: str
    argument_count: int
    argument_types: tuple[str, ...] = ()


@dataclass(**_E)
class CallResult:
    status_name: str
    output_count: int
    outputs: tuple[VariantSummary, ...] = ()


@dataclass(**_E)
class MonitoredItem:
    node_id: str
    attribute_id: int
    attribute: str
    monitoring_mode: str
    client_handle: int
    sampling_interval: float
    queue_size: int


@dataclass(**_E)
class MonitoredItemResult:
    status_name: str
    monitored_item_id: int
    revised_sampling_interval: float


@dataclass(**_E)
class DataChange:
    """One MonitoredItemNotification of a DataChangeNotification (Part 4 §7.25.2)."""

    client_handle: int
    """The handle the client gave the monitored item (CreateMonitoredItems ``client_handle``)."""
    value_type: str | None
    """Variant built-in type name (``Double``, ``String``…); None when the DataValue carries no value."""
    array_length: int | None
    """None for a scalar."""
    value: str | None
    """Escaped, bounded preview of the value (``binary._VALUE_CHARS`` characters, control characters as ``\\xNN``)."""
    status_name: str
    source_timestamp: str | None
    server_timestamp: str | None


@dataclass(**_E)
class EventFields:
    """One EventFieldList of an EventNotificationList (Part 4 §7.25.3): counted, not decoded."""

    client_handle: int
    field_count: int


@dataclass(**_E)
class RelativePathElement:
    """Part 4 §7.31: one hop of a RelativePath."""

    reference_type_id: str
    is_inverse: bool
    include_subtypes: bool
    target_name: str
    """QualifiedName text (``2:Temperature``), as sent."""


@dataclass(**_E)
class BrowsePath:
    """TranslateBrowsePathsToNodeIds request item (Part 4 §5.8.4)."""

    starting_node: str
    element_count: int
    elements: tuple[RelativePathElement, ...] = ()
    path: str = ""
    """The RelativePath in its text form (Part 4 A.2): ``/2:Line2/2:Temperature``; ``.`` for
    Aggregates, ``<ref>`` for other reference types, ``!`` inverse, ``#`` no subtypes; reserved
    characters of a name are ``&``-escaped.  Names are as sent (escape to show)."""


@dataclass(**_E)
class BrowsePathTarget:
    target_id: str
    """ExpandedNodeId text."""
    remaining_path_index: int | None
    """None when the whole path was followed (0xFFFFFFFF on the wire)."""


@dataclass(**_E)
class BrowsePathResult:
    status_name: str
    target_count: int
    targets: tuple[BrowsePathTarget, ...] = ()


# ------------------------------------------------------------------- events
@dataclass(**_E)
class OPCUAEvent:
    side: int
    malformed: str | None = None


@dataclass(**_E)
class OPCUAHello(OPCUAEvent):
    """HEL (Part 6 §7.1.2.3): the client's transport limits and the URL it thinks it uses."""

    protocol_version: int = 0
    receive_buffer_size: int = 0
    send_buffer_size: int = 0
    max_message_size: int = 0
    max_chunk_count: int = 0
    endpoint_url: str | None = None


@dataclass(**_E)
class OPCUAAcknowledge(OPCUAEvent):
    """ACK (Part 6 §7.1.2.4): the server's revised transport limits."""

    protocol_version: int = 0
    receive_buffer_size: int = 0
    send_buffer_size: int = 0
    max_message_size: int = 0
    max_chunk_count: int = 0


@dataclass(**_E)
class OPCUAError(OPCUAEvent):
    """ERR (Part 6 §7.1.2.5): the transport is being closed for this reason."""

    status_code: int = 0
    status_name: str = ""
    reason: str | None = None


@dataclass(**_E)
class OPCUAReverseHello(OPCUAEvent):
    """RHE (Part 6 §7.1.2.6): a server opening a connection to a client."""

    server_uri: str | None = None
    endpoint_url: str | None = None


@dataclass(**_E)
class OPCUAAbort(OPCUAEvent):
    """A message aborted by an 'A' chunk (Part 6 §6.7.3); its partial chunks are discarded."""

    secure_channel_id: int = 0
    request_id: int | None = None
    status_code: int | None = None
    status_name: str | None = None
    reason: str | None = None
    encrypted: bool = False


@dataclass(**_E)
class OPCUAOpenSecureChannel(OPCUAEvent):
    """OPN (Part 6 §6.7.4; Part 4 §5.5.2).

    The asymmetric security header (policy, sender certificate, receiver
    thumbprint) is always readable; the body only when not encrypted
    (``receiver_thumbprint`` is None, i.e. policy None).
    """

    direction: str | None = None
    """"request" / "response" from the body's type id; None when encrypted."""
    secure_channel_id: int = 0
    security_policy_uri: str | None = None
    security_policy: str = ""
    """Short policy name ("None", "Basic256Sha256"), "" if not a known policy."""
    security_policy_deprecated: bool = False
    sender_certificate: CertificateSummary | None = None
    receiver_thumbprint: str | None = None
    encrypted: bool = False
    sequence_number: int | None = None
    request_id: int | None = None
    request_header: RequestHeader | None = None
    response_header: ResponseHeader | None = None
    # request body
    client_protocol_version: int | None = None
    request_type: str | None = None
    """Issue / Renew."""
    security_mode: int | None = None
    security_mode_name: str | None = None
    client_nonce_length: int | None = None
    requested_lifetime: int | None = None
    # response body
    server_protocol_version: int | None = None
    channel_id: int | None = None
    token_id: int | None = None
    created_at: str | None = None
    revised_lifetime: int | None = None
    server_nonce_length: int | None = None


@dataclass(**_E)
class OPCUACloseSecureChannel(OPCUAEvent):
    """CLO (Part 6 §6.7.6)."""

    secure_channel_id: int = 0
    token_id: int = 0
    encrypted: bool = False
    sequence_number: int | None = None
    request_id: int | None = None
    request_header: RequestHeader | None = None


@dataclass(**_E)
class OPCUAEncryptedMessage(OPCUAEvent):
    """A MSG whose body is encrypted (SignAndEncrypt): only the framing is visible."""

    secure_channel_id: int = 0
    token_id: int = 0
    size: int = 0
    """Bytes of the (assembled) message."""
    encrypted_bytes: int = 0
    security_policy_uri: str | None = None


@dataclass(**_E)
class OPCUAService(OPCUAEvent):
    """A plaintext service message (MSG): common framing fields."""

    secure_channel_id: int = 0
    token_id: int = 0
    sequence_number: int = 0
    request_id: int = 0
    type_id: int = -1
    """Binary encoding id of the body (e.g. 631 ReadRequest)."""
    service: str = ""
    """Message type name ("ReadRequest", "ServiceFault")."""


@dataclass(**_E)
class OPCUARequest(OPCUAService):
    header: RequestHeader | None = None


@dataclass(**_E)
class OPCUAResponse(OPCUAService):
    header: ResponseHeader | None = None


@dataclass(**_E)
class OPCUAServiceRequest(OPCUARequest):
    """A request decoded to its header only (services without a field-level decoder)."""


@dataclass(**_E)
class OPCUAServiceResponse(OPCUAResponse):
    """A response decoded to its header only (services without a field-level decoder)."""


@dataclass(**_E)
class OPCUAUnknownService(OPCUAService):
    """A plaintext MSG whose type id is not a known service (StubbedService)."""

    type_node_id: str | None = None


@dataclass(**_E)
class OPCUAGetEndpointsRequest(OPCUARequest):
    endpoint_url: str | None = None
    locale_ids: tuple[str | None, ...] = ()
    profile_uris: tuple[str | None, ...] = ()


@dataclass(**_E)
class OPCUAGetEndpointsResponse(OPCUAResponse):
    endpoint_count: int = 0
    endpoints: tuple[EndpointDescription, ...] = ()


@dataclass(**_E)
class OPCUAFindServersRequest(OPCUARequest):
    endpoint_url: str | None = None
    locale_ids: tuple[str | None, ...] = ()
    server_uris: tuple[str | None, ...] = ()


@dataclass(**_E)
class OPCUAFindServersResponse(OPCUAResponse):
    server_count: int = 0
    servers: tuple[ApplicationDescription, ...] = ()


@dataclass(**_E)
class OPCUACreateSessionRequest(OPCUARequest):
    client_description: ApplicationDescription | None = None
    server_uri: str | None = None
    endpoint_url: str | None = None
    session_name: str | None = None
    client_nonce_length: int = 0
    client_certificate: CertificateSummary | None = None
    requested_session_timeout: float = 0.0
    max_response_message_size: int = 0


@dataclass(**_E)
class OPCUACreateSessionResponse(OPCUAResponse):
    session_id: str | None = None
    revised_session_timeout: float = 0.0
    server_nonce_length: int = 0
    server_certificate: CertificateSummary | None = None
    server_endpoint_count: int = 0
    server_endpoints: tuple[EndpointDescription, ...] = ()
    max_request_message_size: int = 0


@dataclass(**_E)
class OPCUAActivateSessionRequest(OPCUARequest):
    """Identity token facts; never the password."""

    identity_token: str = ""
    """ExtensionObject type name: AnonymousIdentityToken, UserNameIdentityToken, ... ("" if none)."""
    identity_token_type_id: str | None = None
    user_token_type: int = -1
    user_token_type_name: str = ""
    policy_id: str | None = None
    user_name: str | None = None
    password_present: bool = False
    password_encrypted: bool = False
    encryption_algorithm: str | None = None
    user_certificate: CertificateSummary | None = None
    client_signature_algorithm: str | None = None
    locale_ids: tuple[str | None, ...] = ()


@dataclass(**_E)
class OPCUAActivateSessionResponse(OPCUAResponse):
    server_nonce_length: int = 0
    result_count: int = 0
    results: tuple[str, ...] = ()


@dataclass(**_E)
class OPCUACloseSessionRequest(OPCUARequest):
    delete_subscriptions: bool = False


@dataclass(**_E)
class OPCUAReadRequest(OPCUARequest):
    max_age: float = 0.0
    timestamps_to_return: str = ""
    node_count: int = 0
    nodes: tuple[ReadValueId, ...] = ()


@dataclass(**_E)
class OPCUAReadResponse(OPCUAResponse):
    result_count: int = 0
    results: tuple[DataValueSummary, ...] = ()


@dataclass(**_E)
class OPCUAWriteRequest(OPCUARequest):
    node_count: int = 0
    nodes: tuple[WriteValue, ...] = ()


@dataclass(**_E)
class OPCUAWriteResponse(OPCUAResponse):
    result_count: int = 0
    results: tuple[str, ...] = ()


@dataclass(**_E)
class OPCUABrowseRequest(OPCUARequest):
    view_id: str | None = None
    max_references_per_node: int = 0
    node_count: int = 0
    nodes: tuple[BrowseDescription, ...] = ()


@dataclass(**_E)
class OPCUABrowseResponse(OPCUAResponse):
    result_count: int = 0
    results: tuple[BrowseResult, ...] = ()


@dataclass(**_E)
class OPCUACallRequest(OPCUARequest):
    method_count: int = 0
    methods: tuple[CallMethod, ...] = ()


@dataclass(**_E)
class OPCUACallResponse(OPCUAResponse):
    result_count: int = 0
    results: tuple[CallResult, ...] = ()


@dataclass(**_E)
class OPCUACreateSubscriptionRequest(OPCUARequest):
    requested_publishing_interval: float = 0.0
    requested_lifetime_count: int = 0
    requested_max_keep_alive_count: int = 0
    max_notifications_per_publish: int = 0
    publishing_enabled: bool = False
    priority: int = 0


@dataclass(**_E)
class OPCUACreateSubscriptionResponse(OPCUAResponse):
    subscription_id: int = 0
    revised_publishing_interval: float = 0.0
    revised_lifetime_count: int = 0
    revised_max_keep_alive_count: int = 0


@dataclass(**_E)
class OPCUACreateMonitoredItemsRequest(OPCUARequest):
    subscription_id: int = 0
    timestamps_to_return: str = ""
    item_count: int = 0
    items: tuple[MonitoredItem, ...] = ()


@dataclass(**_E)
class OPCUACreateMonitoredItemsResponse(OPCUAResponse):
    result_count: int = 0
    results: tuple[MonitoredItemResult, ...] = ()


@dataclass(**_E)
class OPCUAPublishRequest(OPCUARequest):
    acknowledgement_count: int = 0
    acknowledgements: tuple[tuple[int, int], ...] = ()
    """(subscription id, sequence number)."""


@dataclass(**_E)
class OPCUAPublishResponse(OPCUAResponse):
    subscription_id: int = 0
    available_sequence_numbers: int = 0
    more_notifications: bool = False
    sequence_number: int = 0
    publish_time: str | None = None
    notification_types: tuple[str, ...] = ()
    notification_count: int = 0
    """Monitored-item notifications plus events across all NotificationData."""
    data_change_count: int = 0
    """MonitoredItemNotifications across all DataChangeNotifications."""
    data_changes: tuple[DataChange, ...] = ()
    """The first ``spec.MAX_LIST_ITEMS`` of them."""
    event_count: int = 0
    """EventFieldLists across all EventNotificationLists."""
    events: tuple[EventFields, ...] = ()
    status_change: str | None = None
    """Status name of a StatusChangeNotification (the subscription's state changed), None if none."""
    result_count: int = 0
    results: tuple[str, ...] = ()


@dataclass(**_E)
class OPCUATranslateBrowsePathsToNodeIdsRequest(OPCUARequest):
    browse_path_count: int = 0
    browse_paths: tuple[BrowsePath, ...] = ()


@dataclass(**_E)
class OPCUATranslateBrowsePathsToNodeIdsResponse(OPCUAResponse):
    result_count: int = 0
    results: tuple[BrowsePathResult, ...] = ()


@dataclass(**_E)
class OPCUAServiceFault(OPCUAResponse):
    """ServiceFault: ``header.service_result`` says why the whole service failed."""
