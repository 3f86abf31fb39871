"""OPC UA binary (UA TCP, "opc.tcp") — the one definition of the wire format.

Read by the kernel (ext/opcua.py), the full decoder (decode.py), the docs
(docs/protocols/opcua.md) and the tests.  Section numbers refer to OPC 10000-6
(Part 6, Mappings) v1.05 unless noted; Part 4 is Services, Part 7 Profiles.

Every UA TCP message starts with the 8-byte message header (Part 6 §7.1.2.2)::

    0      3      4              8
    +------+------+--------------+----------------------------
    | type | chunk| message size |  body ...
    | HEL  |  F   | uint32 LE    |
    +------+------+--------------+----------------------------
      type  : ASCII HEL ACK ERR RHE (transport, always chunk 'F')
                    OPN MSG CLO     (secure conversation)
      chunk : 'F' final, 'C' intermediate, 'A' abort
      size  : whole chunk including these 8 bytes

Secure conversation chunks (Part 6 §6.7.2) continue with::

    OPN: | secure channel id u32 | asymmetric security header              | sequence header | body
         |                       | SecurityPolicyUri String                |                 |
         |                       | SenderCertificate ByteString            |                 |
         |                       | ReceiverCertificateThumbprint ByteString|                 |
    MSG/CLO:
         | secure channel id u32 | token id u32 (symmetric header)         | sequence header | body [signature]
    sequence header: | sequence number u32 | request id u32 |
    body           : | type id NodeId (binary encoding id) | the service structure ... |

With SignAndEncrypt everything after the symmetric (or asymmetric) security
header is encrypted; with Sign the body is readable and a signature follows it.
"""
from __future__ import annotations

from enum import IntEnum

# ---------------------------------------------------------------------------
# Message header (Part 6 §7.1.2.2)

HEADER_LEN = 8
"""type (3 ASCII) + chunk type (1 ASCII) + message size (uint32 LE)."""
SECURE_CHANNEL_ID_LEN = 4
TOKEN_ID_LEN = 4
SYMMETRIC_PREFIX_LEN = HEADER_LEN + SECURE_CHANNEL_ID_LEN + TOKEN_ID_LEN
"""MSG/CLO: header + secure channel id + symmetric security header (token id) = 16."""
SEQUENCE_HEADER_LEN = 8
"""sequence number u32 + request id u32 (Part 6 §6.7.2.4)."""
SYMMETRIC_BODY_OFFSET = SYMMETRIC_PREFIX_LEN + SEQUENCE_HEADER_LEN
"""Offset of the service type id in a plaintext MSG/CLO chunk (24)."""

PROTOCOL_VERSION = 0
"""The only UA TCP protocol version defined so far (Part 6 §7.1.2.3)."""
MAX_SANE_PROTOCOL_VERSION = 16
"""probe(): a HEL claiming a higher version is not taken as certain."""


def _tag(code: bytes) -> int:
    return (code[0] << 16) | (code[1] << 8) | code[2]


# The three ASCII bytes as one 24-bit integer, read by the kernel.
TAG_HEL = _tag(b"HEL")
TAG_ACK = _tag(b"ACK")
TAG_ERR = _tag(b"ERR")
TAG_RHE = _tag(b"RHE")
TAG_OPN = _tag(b"OPN")
TAG_MSG = _tag(b"MSG")
TAG_CLO = _tag(b"CLO")

CHUNK_FINAL = ord("F")
CHUNK_INTERMEDIATE = ord("C")
CHUNK_ABORT = ord("A")
CHUNK_TYPES = {CHUNK_FINAL: "final", CHUNK_INTERMEDIATE: "intermediate", CHUNK_ABORT: "abort"}


class MessageType(IntEnum):
    """Key[0] codes: the message type codes of the kernel's keys.

    Transport and secure-channel messages are keyed ``(type,)``; services are
    ``(MSG_SERVICE, type_id)`` where type_id is the numeric namespace-0 binary
    encoding id of the body (-1 when it is not one); an encrypted body is
    ``(MSG_ENCRYPTED,)``; an aborted message (chunk 'A') is ``(MSG_ABORT,)``.
    """

    HEL = 1
    ACK = 2
    ERR = 3
    RHE = 4
    OPN = 5
    CLO = 6
    MSG_SERVICE = 7
    MSG_ENCRYPTED = 8
    MSG_ABORT = 9


HEL = int(MessageType.HEL)
ACK = int(MessageType.ACK)
ERR = int(MessageType.ERR)
RHE = int(MessageType.RHE)
OPN = int(MessageType.OPN)
CLO = int(MessageType.CLO)
MSG_SERVICE = int(MessageType.MSG_SERVICE)
MSG_ENCRYPTED = int(MessageType.MSG_ENCRYPTED)
MSG_ABORT = int(MessageType.MSG_ABORT)

WIRE_TYPES = {b"HEL": HEL, b"ACK": ACK, b"ERR": ERR, b"RHE": RHE, b"OPN": OPN, b"MSG": MSG_SERVICE, b"CLO": CLO}
"""ASCII message type → key code (MSG maps to MSG_SERVICE, or MSG_ENCRYPTED/MSG_ABORT)."""

ALWAYS_DETAILED_TYPES = frozenset({HEL, ACK, ERR, RHE, OPN, CLO, MSG_ABORT})
"""Rare, identity-bearing messages: every one becomes a record, not only new keys."""

# Minimum chunk sizes (a smaller size field is a framing violation).
MIN_SIZE = {
    HEL: HEADER_LEN + 5 * 4 + 4,  # 5 x uint32 + EndpointUrl length (Part 6 §7.1.2.3)
    ACK: HEADER_LEN + 5 * 4,      # Part 6 §7.1.2.4
    ERR: HEADER_LEN + 4 + 4,      # Error + Reason length (§7.1.2.5)
    RHE: HEADER_LEN + 4 + 4,      # ServerUri + EndpointUrl lengths (§7.1.2.6)
    OPN: HEADER_LEN + 4 + 3 * 4,  # channel id + three length fields of the asymmetric header
    MSG_SERVICE: SYMMETRIC_PREFIX_LEN,
    CLO: SYMMETRIC_PREFIX_LEN,
}

HELLO_FIELDS = ("protocol_version", "receive_buffer_size", "send_buffer_size", "max_message_size", "max_chunk_count")
"""HEL: these five uint32 at offset 8, then EndpointUrl (String, ≤ 4096 bytes)."""
ACKNOWLEDGE_FIELDS = HELLO_FIELDS
"""ACK: the same five uint32 at offset 8 (the server's revised values)."""
HEL_ENDPOINT_URL_MAX = 4096
"""Part 6 §7.1.2.3: the EndpointUrl shall be shorter than 4096 bytes."""

# ---------------------------------------------------------------------------
# Security (Part 7 security policy profiles; Part 6 §6.1)

POLICY_PREFIX = "http://opcfoundation.org/UA/SecurityPolicy#"


class SecurityPolicy(IntEnum):
    UNKNOWN = 0
    NONE = 1
    BASIC128RSA15 = 2
    BASIC256 = 3
    BASIC256SHA256 = 4
    AES128_SHA256_RSAOAEP = 5
    AES256_SHA256_RSAPSS = 6


SECURITY_POLICIES = {
    # uri: (policy, short name, deprecated, symmetric signature length)
    POLICY_PREFIX + "None": (SecurityPolicy.NONE, "None", False, 0),
    # Basic128Rsa15 and Basic256 use SHA-1; deprecated in spec 1.04 (Part 7 §6.6.163)
    POLICY_PREFIX + "Basic128Rsa15": (SecurityPolicy.BASIC128RSA15, "Basic128Rsa15", True, 20),  # HMAC-SHA1
    POLICY_PREFIX + "Basic256": (SecurityPolicy.BASIC256, "Basic256", True, 20),  # HMAC-SHA1
    POLICY_PREFIX + "Basic256Sha256": (SecurityPolicy.BASIC256SHA256, "Basic256Sha256", False, 32),  # HMAC-SHA256
    POLICY_PREFIX + "Aes128_Sha256_RsaOaep": (SecurityPolicy.AES128_SHA256_RSAOAEP, "Aes128_Sha256_RsaOaep", False, 32),
    POLICY_PREFIX + "Aes256_Sha256_RsaPss": (SecurityPolicy.AES256_SHA256_RSAPSS, "Aes256_Sha256_RsaPss", False, 32),
}
POLICY_NONE_URI = POLICY_PREFIX + "None"
POLICY_URI_MAX = 256
"""The kernel keeps at most this many bytes of a SecurityPolicyUri (real ones are < 64)."""


def policy_name(uri: str | None) -> str:
    """Short name of a policy URI ("Basic256Sha256"), "" if unknown/None."""
    if uri is None:
        return ""
    entry = SECURITY_POLICIES.get(uri)
    return entry[1] if entry else ""


def symmetric_signature_length(uri: str | None) -> int:
    """Bytes of the symmetric signature after each Sign-mode chunk body; -1 if unknown."""
    entry = SECURITY_POLICIES.get(uri) if uri is not None else None
    return entry[3] if entry else -1


class MessageSecurityMode(IntEnum):
    """Part 4 §7.20."""

    INVALID = 0
    NONE = 1
    SIGN = 2
    SIGN_AND_ENCRYPT = 3


MODE_UNKNOWN = -1
"""ctx[1] when the channel's mode is not known (policy known != None and not yet inferred)."""
MODE_NAMES = {-1: "Unknown", 0: "Invalid", 1: "None", 2: "Sign", 3: "SignAndEncrypt"}


class UserTokenType(IntEnum):
    """Part 4 §7.42."""

    ANONYMOUS = 0
    USERNAME = 1
    CERTIFICATE = 2
    ISSUED_TOKEN = 3


USER_TOKEN_TYPE_NAMES = {0: "Anonymous", 1: "UserName", 2: "Certificate", 3: "IssuedToken"}


class ApplicationType(IntEnum):
    """Part 4 §7.4."""

    SERVER = 0
    CLIENT = 1
    CLIENT_AND_SERVER = 2
    DISCOVERY_SERVER = 3


APPLICATION_TYPE_NAMES = {0: "Server", 1: "Client", 2: "ClientAndServer", 3: "DiscoveryServer"}
SECURITY_TOKEN_REQUEST_TYPE_NAMES = {0: "Issue", 1: "Renew"}
TIMESTAMPS_TO_RETURN_NAMES = {0: "Source", 1: "Server", 2: "Both", 3: "Neither", 4: "Invalid"}
BROWSE_DIRECTION_NAMES = {0: "Forward", 1: "Inverse", 2: "Both", 3: "Invalid"}
MONITORING_MODE_NAMES = {0: "Disabled", 1: "Sampling", 2: "Reporting"}

# Identity tokens in ActivateSession (ExtensionObject binary encoding ids, Part 4 §7.36)
IDENTITY_TOKENS = {
    321: ("AnonymousIdentityToken", UserTokenType.ANONYMOUS),
    324: ("UserNameIdentityToken", UserTokenType.USERNAME),
    327: ("X509IdentityToken", UserTokenType.CERTIFICATE),
    940: ("IssuedIdentityToken", UserTokenType.ISSUED_TOKEN),
}

# Notification data in PublishResponse (Part 4 §7.25)
DATA_CHANGE_NOTIFICATION = 811
EVENT_NOTIFICATION_LIST = 916
STATUS_CHANGE_NOTIFICATION = 820
NOTIFICATION_TYPES = {DATA_CHANGE_NOTIFICATION: "DataChangeNotification", EVENT_NOTIFICATION_LIST: "EventNotificationList",
                      STATUS_CHANGE_NOTIFICATION: "StatusChangeNotification"}

# Attribute ids (Part 4 §5.9 / Part 6 A.1)
ATTRIBUTE_NAMES = {
    1: "NodeId", 2: "NodeClass", 3: "BrowseName", 4: "DisplayName", 5: "Description", 6: "WriteMask",
    7: "UserWriteMask", 8: "IsAbstract", 9: "Symmetric", 10: "InverseName", 11: "ContainsNoLoops",
    12: "EventNotifier", 13: "Value", 14: "DataType", 15: "ValueRank", 16: "ArrayDimensions",
    17: "AccessLevel", 18: "UserAccessLevel", 19: "MinimumSamplingInterval", 20: "Historizing",
    21: "Executable", 22: "UserExecutable", 23: "DataTypeDefinition", 24: "RolePermissions",
    25: "UserRolePermissions", 26: "AccessRestrictions", 27: "AccessLevelEx",
}
ATTRIBUTE_VALUE = 13

# Built-in types (Part 6 §5.1.2), the Variant type byte's low 6 bits
BUILTIN_TYPE_NAMES = {
    0: "Null", 1: "Boolean", 2: "SByte", 3: "Byte", 4: "Int16", 5: "UInt16", 6: "Int32", 7: "UInt32",
    8: "Int64", 9: "UInt64", 10: "Float", 11: "Double", 12: "String", 13: "DateTime", 14: "Guid",
    15: "ByteString", 16: "XmlElement", 17: "NodeId", 18: "ExpandedNodeId", 19: "StatusCode",
    20: "QualifiedName", 21: "LocalizedText", 22: "ExtensionObject", 23: "DataValue", 24: "Variant",
    25: "DiagnosticInfo",
}

# NodeId encoding byte (Part 6 §5.2.2.9)
NODEID_TWO_BYTE = 0x00
NODEID_FOUR_BYTE = 0x01
NODEID_NUMERIC = 0x02
NODEID_STRING = 0x03
NODEID_GUID = 0x04
NODEID_BYTESTRING = 0x05
NODEID_NAMESPACE_URI_FLAG = 0x80  # ExpandedNodeId only
NODEID_SERVER_INDEX_FLAG = 0x40   # ExpandedNodeId only

# ---------------------------------------------------------------------------
# Services (Part 4 §5; binary encoding ids from NodeIds.csv)

SERVICE_TABLE = (
    # name, request id, response id, op, always detailed
    ("FindServers", 422, 425, "discovery", True),
    ("FindServersOnNetwork", 12208, 12209, "discovery", True),
    ("GetEndpoints", 428, 431, "discovery", True),
    ("RegisterServer", 437, 440, "discovery", True),
    ("RegisterServer2", 12211, 12212, "discovery", True),
    ("OpenSecureChannel", 446, 449, "secure_channel", True),
    ("CloseSecureChannel", 452, 455, "secure_channel", True),
    ("CreateSession", 461, 464, "session", True),
    ("ActivateSession", 467, 470, "session", True),
    ("CloseSession", 473, 476, "session", True),
    ("Cancel", 479, 482, "session", False),
    ("AddNodes", 488, 491, "write", True),
    ("AddReferences", 494, 497, "write", True),
    ("DeleteNodes", 500, 503, "write", True),
    ("DeleteReferences", 506, 509, "write", True),
    # Browse: moderately frequent (HMIs browse on every screen): new keys only
    ("Browse", 527, 530, "browse", False),
    ("BrowseNext", 533, 536, "browse", False),
    ("TranslateBrowsePathsToNodeIds", 554, 557, "browse", False),
    ("RegisterNodes", 560, 563, "browse", False),
    ("UnregisterNodes", 566, 569, "browse", False),
    ("QueryFirst", 615, 618, "browse", False),
    ("QueryNext", 621, 624, "browse", False),
    ("Read", 631, 634, "read", False),
    ("HistoryRead", 664, 667, "read", False),
    ("Write", 673, 676, "write", True),
    ("HistoryUpdate", 700, 703, "write", True),
    ("Call", 712, 715, "call", True),
    ("CreateMonitoredItems", 751, 754, "subscribe", True),
    ("ModifyMonitoredItems", 763, 766, "subscribe", False),
    ("SetMonitoringMode", 769, 772, "subscribe", False),
    ("SetTriggering", 775, 778, "subscribe", False),
    ("DeleteMonitoredItems", 781, 784, "subscribe", False),
    ("CreateSubscription", 787, 790, "subscribe", True),
    ("ModifySubscription", 793, 796, "subscribe", False),
    ("SetPublishingMode", 799, 802, "subscribe", False),
    ("Publish", 826, 829, "publish", False),
    ("Republish", 832, 835, "publish", False),
    ("TransferSubscriptions", 841, 844, "subscribe", False),
    ("DeleteSubscriptions", 847, 850, "subscribe", False),
)

SERVICE_FAULT = 397
"""ServiceFault_Encoding_DefaultBinary: the response when a service fails as a whole."""


class ServiceInfo:
    """What the tables know about one binary encoding id."""

    __slots__ = ("type_id", "name", "service", "is_request", "op", "always_detailed")

    def __init__(self, type_id, name, service, is_request, op, always_detailed):
        self.type_id = type_id
        self.name = name  # "ReadRequest"
        self.service = service  # "Read"
        self.is_request = is_request
        self.op = op
        self.always_detailed = always_detailed

    def __repr__(self):
        return f"ServiceInfo({self.type_id}, {self.name!r})"


SERVICES: dict[int, ServiceInfo] = {}
for _name, _req, _resp, _op, _detail in SERVICE_TABLE:
    SERVICES[_req] = ServiceInfo(_req, _name + "Request", _name, True, _op, _detail)
    SERVICES[_resp] = ServiceInfo(_resp, _name + "Response", _name, False, _op, _detail)
SERVICES[SERVICE_FAULT] = ServiceInfo(SERVICE_FAULT, "ServiceFault", "ServiceFault", False, "other", True)
del _name, _req, _resp, _op, _detail

SERVICE_IDS = frozenset(SERVICES)
"""Every known service type id; the kernel's plausibility test for plaintext bodies."""
NODE_KEYED_SERVICES = {"Read": "NodeId, AttributeId of each ReadValueId",
                       "HistoryRead": "NodeId of each HistoryReadValueId",
                       "Write": "NodeId, AttributeId of each WriteValue",
                       "Call": "ObjectId, MethodId of each CallMethodRequest",
                       "Browse": "NodeId of each BrowseDescription"}
"""Services whose requests the kernel keys by the node ids they name (docs/protocols/opcua.md,
"Node-keyed services"): what identifies one node in each."""
NODE_KEYED_REQUEST_IDS = frozenset(t for t, s in SERVICES.items() if s.is_request and s.service in NODE_KEYED_SERVICES)
NODE_KEYED_IDS = frozenset(t for t, s in SERVICES.items() if s.service in NODE_KEYED_SERVICES)
ALWAYS_DETAILED_SERVICE_IDS = frozenset(t for t, s in SERVICES.items() if s.always_detailed) - NODE_KEYED_IDS
"""Reported every time.  Write and Call (requests and responses) are node-keyed instead: a
request is reported when it names a node (with attribute, or object and method) not named before
on the link in that service; a response when its key is new."""
KEY_NODES = 0
"""``key[0]`` of a link direction's node set of one service ``(KEY_NODES, type_id)`` in the
kernel's tallies (not a message key: it never reaches the consumers)."""
KEY_OVERFLOW = -2
"""``(MSG_SERVICE, type_id, KEY_OVERFLOW, KEY_OVERFLOW)``: new keys of a node-keyed service past
``limits.link_keys_max`` on the link direction, counted together (target ``overflow``)."""
KEY_UNPARSED = -1
"""``(MSG_SERVICE, type_id, KEY_UNPARSED, 0)``: a node-keyed request whose node list does not
parse (the full decoder says why)."""
NODES_MAX_PER_REQUEST = 65535
"""Node list entries read from one request (each takes at least 3 bytes, so a message under
limits.opcua_max_message has fewer); beyond, the request is unparsed."""
OPEN_SECURE_CHANNEL_REQUEST = 446
OPEN_SECURE_CHANNEL_RESPONSE = 449
CLOSE_SECURE_CHANNEL_REQUEST = 452


def snake(name: str) -> str:
    """CamelCase → snake_case ("GetEndpointsRequest" → "get_endpoints_request")."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


# ---------------------------------------------------------------------------
# Kernel bounds (beyond parsers.limits)

MAX_PENDING_MESSAGES = 64
"""Partially assembled messages (distinct request ids) per direction.  Part 6
leaves this open; real stacks keep a handful in flight.  Beyond it the oldest
is dropped with opcua.too_many_partial_messages."""

# Decoder bounds: a length field is validated against the bytes left before
# anything is allocated; these caps bound what an event carries.
MAX_STRING_CHARS = 4096
"""Characters of one decoded String kept in an event (longer ones are cut, with the length kept)."""
MAX_LIST_ITEMS = 256
"""Items of one decoded array kept in an event (the true count is always reported)."""
MAX_NESTING = 8
"""Nesting depth for DiagnosticInfo / Variant-in-Variant / DataValue in Variant."""

# ---------------------------------------------------------------------------
# Status codes (Part 4 §7.39 / Part 6 StatusCode.csv)

STATUS_GOOD = 0
STATUS_CODES = {
    0x00000000: "Good",
    0x002D0000: "GoodSubscriptionTransferred",
    0x002E0000: "GoodCompletesAsynchronously",
    0x002F0000: "GoodOverload",
    0x00300000: "GoodClamped",
    0x00960000: "GoodLocalOverride",
    0x00A20000: "GoodEntryInserted",
    0x00A30000: "GoodEntryReplaced",
    0x00A50000: "GoodNoData",
    0x00A60000: "GoodMoreData",
    0x00A70000: "GoodCommunicationEvent",
    0x00A80000: "GoodShutdownEvent",
    0x00A90000: "GoodCallAgain",
    0x00AA0000: "GoodNonCriticalTimeout",
    0x00BA0000: "GoodResultsMayBeIncomplete",
    0x00D90000: "GoodDataIgnored",
    0x00DC0000: "GoodEdited",
    0x00DD0000: "GoodPostActionFailed",
    0x00DF0000: "GoodRetransmissionQueueNotSupported",
    0x00E00000: "GoodDependentValueChanged",
    0x00EB0000: "GoodSubNormal",
    0x00EF0000: "GoodPasswordChangeRequired",
    0x01160000: "GoodEdited_DependentValueChanged",
    0x01170000: "GoodEdited_DominantValueChanged",
    0x01180000: "GoodEdited_DominantValueChanged_DependentValueChanged",
    0x04010000: "GoodCascadeInitializationAcknowledged",
    0x04020000: "GoodCascadeInitializationRequest",
    0x04030000: "GoodCascadeNotInvited",
    0x04040000: "GoodCascadeNotSelected",
    0x04070000: "GoodFaultStateActive",
    0x04080000: "GoodInitiateFaultState",
    0x04090000: "GoodCascade",
    0x40000000: "Uncertain",
    0x406C0000: "UncertainReferenceOutOfServer",
    0x408F0000: "UncertainNoCommunicationLastUsableValue",
    0x40900000: "UncertainLastUsableValue",
    0x40910000: "UncertainSubstituteValue",
    0x40920000: "UncertainInitialValue",
    0x40930000: "UncertainSensorNotAccurate",
    0x40940000: "UncertainEngineeringUnitsExceeded",
    0x40950000: "UncertainSubNormal",
    0x40A40000: "UncertainDataSubNormal",
    0x40BC0000: "UncertainReferenceNotDeleted",
    0x40C00000: "UncertainNotAllNodesAvailable",
    0x40DE0000: "UncertainDominantValueChanged",
    0x40E20000: "UncertainDependentValueChanged",
    0x40F20000: "UncertainOverRange",
    0x40F30000: "UncertainUnderRange",
    0x42080000: "UncertainTransducerInManual",
    0x42090000: "UncertainSimulatedValue",
    0x420A0000: "UncertainSensorCalibration",
    0x420F0000: "UncertainConfigurationError",
    0x80000000: "Bad",
    0x80010000: "BadUnexpectedError",
    0x80020000: "BadInternalError",
    0x80030000: "BadOutOfMemory",
    0x80040000: "BadResourceUnavailable",
    0x80050000: "BadCommunicationError",
    0x80060000: "BadEncodingError",
    0x80070000: "BadDecodingError",
    0x80080000: "BadEncodingLimitsExceeded",
    0x80090000: "BadUnknownResponse",
    0x800A0000: "BadTimeout",
    0x800B0000: "BadServiceUnsupported",
    0x800C0000: "BadShutdown",
    0x800D0000: "BadServerNotConnected",
    0x800E0000: "BadServerHalted",
    0x800F0000: "BadNothingToDo",
    0x80100000: "BadTooManyOperations",
    0x80110000: "BadDataTypeIdUnknown",
    0x80120000: "BadCertificateInvalid",
    0x80130000: "BadSecurityChecksFailed",
    0x80140000: "BadCertificateTimeInvalid",
    0x80150000: "BadCertificateIssuerTimeInvalid",
    0x80160000: "BadCertificateHostNameInvalid",
    0x80170000: "BadCertificateUriInvalid",
    0x80180000: "BadCertificateUseNotAllowed",
    0x80190000: "BadCertificateIssuerUseNotAllowed",
    0x801A0000: "BadCertificateUntrusted",
    0x801B0000: "BadCertificateRevocationUnknown",
    0x801C0000: "BadCertificateIssuerRevocationUnknown",
    0x801D0000: "BadCertificateRevoked",
    0x801E0000: "BadCertificateIssuerRevoked",
    0x801F0000: "BadUserAccessDenied",
    0x80200000: "BadIdentityTokenInvalid",
    0x80210000: "BadIdentityTokenRejected",
    0x80220000: "BadSecureChannelIdInvalid",
    0x80230000: "BadInvalidTimestamp",
    0x80240000: "BadNonceInvalid",
    0x80250000: "BadSessionIdInvalid",
    0x80260000: "BadSessionClosed",
    0x80270000: "BadSessionNotActivated",
    0x80280000: "BadSubscriptionIdInvalid",
    0x802A0000: "BadRequestHeaderInvalid",
    0x802B0000: "BadTimestampsToReturnInvalid",
    0x802C0000: "BadRequestCancelledByClient",
    0x80310000: "BadNoCommunication",
    0x80320000: "BadWaitingForInitialData",
    0x80330000: "BadNodeIdInvalid",
    0x80340000: "BadNodeIdUnknown",
    0x80350000: "BadAttributeIdInvalid",
    0x80360000: "BadIndexRangeInvalid",
    0x80370000: "BadIndexRangeNoData",
    0x80380000: "BadDataEncodingInvalid",
    0x80390000: "BadDataEncodingUnsupported",
    0x803A0000: "BadNotReadable",
    0x803B0000: "BadNotWritable",
    0x803C0000: "BadOutOfRange",
    0x803D0000: "BadNotSupported",
    0x803E0000: "BadNotFound",
    0x803F0000: "BadObjectDeleted",
    0x80400000: "BadNotImplemented",
    0x80410000: "BadMonitoringModeInvalid",
    0x80420000: "BadMonitoredItemIdInvalid",
    0x80430000: "BadMonitoredItemFilterInvalid",
    0x80440000: "BadMonitoredItemFilterUnsupported",
    0x80450000: "BadFilterNotAllowed",
    0x80460000: "BadStructureMissing",
    0x80470000: "BadEventFilterInvalid",
    0x80480000: "BadContentFilterInvalid",
    0x80490000: "BadFilterOperandInvalid",
    0x804A0000: "BadContinuationPointInvalid",
    0x804B0000: "BadNoContinuationPoints",
    0x804C0000: "BadReferenceTypeIdInvalid",
    0x804D0000: "BadBrowseDirectionInvalid",
    0x804E0000: "BadNodeNotInView",
    0x804F0000: "BadServerUriInvalid",
    0x80500000: "BadServerNameMissing",
    0x80510000: "BadDiscoveryUrlMissing",
    0x80520000: "BadSemaphoreFileMissing",
    0x80530000: "BadRequestTypeInvalid",
    0x80540000: "BadSecurityModeRejected",
    0x80550000: "BadSecurityPolicyRejected",
    0x80560000: "BadTooManySessions",
    0x80570000: "BadUserSignatureInvalid",
    0x80580000: "BadApplicationSignatureInvalid",
    0x80590000: "BadNoValidCertificates",
    0x805A0000: "BadRequestCancelledByRequest",
    0x805B0000: "BadParentNodeIdInvalid",
    0x805C0000: "BadReferenceNotAllowed",
    0x805D0000: "BadNodeIdRejected",
    0x805E0000: "BadNodeIdExists",
    0x805F0000: "BadNodeClassInvalid",
    0x80600000: "BadBrowseNameInvalid",
    0x80610000: "BadBrowseNameDuplicated",
    0x80620000: "BadNodeAttributesInvalid",
    0x80630000: "BadTypeDefinitionInvalid",
    0x80640000: "BadSourceNodeIdInvalid",
    0x80650000: "BadTargetNodeIdInvalid",
    0x80660000: "BadDuplicateReferenceNotAllowed",
    0x80670000: "BadInvalidSelfReference",
    0x80680000: "BadReferenceLocalOnly",
    0x80690000: "BadNoDeleteRights",
    0x806A0000: "BadServerIndexInvalid",
    0x806B0000: "BadViewIdUnknown",
    0x806D0000: "BadTooManyMatches",
    0x806E0000: "BadQueryTooComplex",
    0x806F0000: "BadNoMatch",
    0x80700000: "BadMaxAgeInvalid",
    0x80710000: "BadHistoryOperationInvalid",
    0x80720000: "BadHistoryOperationUnsupported",
    0x80730000: "BadWriteNotSupported",
    0x80740000: "BadTypeMismatch",
    0x80750000: "BadMethodInvalid",
    0x80760000: "BadArgumentsMissing",
    0x80770000: "BadTooManySubscriptions",
    0x80780000: "BadTooManyPublishRequests",
    0x80790000: "BadNoSubscription",
    0x807A0000: "BadSequenceNumberUnknown",
    0x807B0000: "BadMessageNotAvailable",
    0x807C0000: "BadInsufficientClientProfile",
    0x807D0000: "BadTcpServerTooBusy",
    0x807E0000: "BadTcpMessageTypeInvalid",
    0x807F0000: "BadTcpSecureChannelUnknown",
    0x80800000: "BadTcpMessageTooLarge",
    0x80810000: "BadTcpNotEnoughResources",
    0x80820000: "BadTcpInternalError",
    0x80830000: "BadTcpEndpointUrlInvalid",
    0x80840000: "BadRequestInterrupted",
    0x80850000: "BadRequestTimeout",
    0x80860000: "BadSecureChannelClosed",
    0x80870000: "BadSecureChannelTokenUnknown",
    0x80880000: "BadSequenceNumberInvalid",
    0x80890000: "BadConfigurationError",
    0x808A0000: "BadNotConnected",
    0x808B0000: "BadDeviceFailure",
    0x808C0000: "BadSensorFailure",
    0x808D0000: "BadOutOfService",
    0x808E0000: "BadDeadbandFilterInvalid",
    0x80970000: "BadRefreshInProgress",
    0x80980000: "BadConditionAlreadyDisabled",
    0x80990000: "BadConditionDisabled",
    0x809A0000: "BadEventIdUnknown",
    0x809B0000: "BadNoData",
    0x809D0000: "BadDataLost",
    0x809E0000: "BadDataUnavailable",
    0x809F0000: "BadEntryExists",
    0x80A00000: "BadNoEntryExists",
    0x80A10000: "BadTimestampNotSupported",
    0x80AB0000: "BadInvalidArgument",
    0x80AC0000: "BadConnectionRejected",
    0x80AD0000: "BadDisconnect",
    0x80AE0000: "BadConnectionClosed",
    0x80AF0000: "BadInvalidState",
    0x80B00000: "BadEndOfStream",
    0x80B10000: "BadNoDataAvailable",
    0x80B20000: "BadWaitingForResponse",
    0x80B30000: "BadOperationAbandoned",
    0x80B40000: "BadExpectedStreamToBlock",
    0x80B50000: "BadWouldBlock",
    0x80B60000: "BadSyntaxError",
    0x80B70000: "BadMaxConnectionsReached",
    0x80B80000: "BadRequestTooLarge",
    0x80B90000: "BadResponseTooLarge",
    0x80BB0000: "BadEventNotAcknowledgeable",
    0x80BD0000: "BadInvalidTimestampArgument",
    0x80BE0000: "BadProtocolVersionUnsupported",
    0x80BF0000: "BadStateNotActive",
    0x80C10000: "BadFilterOperatorInvalid",
    0x80C20000: "BadFilterOperatorUnsupported",
    0x80C30000: "BadFilterOperandCountMismatch",
    0x80C40000: "BadFilterElementInvalid",
    0x80C50000: "BadFilterLiteralInvalid",
    0x80C60000: "BadIdentityChangeNotSupported",
    0x80C80000: "BadNotTypeDefinition",
    0x80C90000: "BadViewTimestampInvalid",
    0x80CA0000: "BadViewParameterMismatch",
    0x80CB0000: "BadViewVersionInvalid",
    0x80CC0000: "BadConditionAlreadyEnabled",
    0x80CD0000: "BadDialogNotActive",
    0x80CE0000: "BadDialogResponseInvalid",
    0x80CF0000: "BadConditionBranchAlreadyAcked",
    0x80D00000: "BadConditionBranchAlreadyConfirmed",
    0x80D10000: "BadConditionAlreadyShelved",
    0x80D20000: "BadConditionNotShelved",
    0x80D30000: "BadShelvingTimeOutOfRange",
    0x80D40000: "BadAggregateListMismatch",
    0x80D50000: "BadAggregateNotSupported",
    0x80D60000: "BadAggregateInvalidInputs",
    0x80D70000: "BadBoundNotFound",
    0x80D80000: "BadBoundNotSupported",
    0x80DA0000: "BadAggregateConfigurationRejected",
    0x80DB0000: "BadTooManyMonitoredItems",
    0x80E10000: "BadDominantValueChanged",
    0x80E30000: "BadDependentValueChanged",
    0x80E40000: "BadRequestNotAllowed",
    0x80E50000: "BadTooManyArguments",
    0x80E60000: "BadSecurityModeInsufficient",
    0x80E70000: "BadDataSetIdInvalid",
    0x80E80000: "BadTransactionPending",
    0x80E90000: "BadLocked",
    0x80EA0000: "BadIndexRangeDataMismatch",
    0x80EC0000: "BadRequiresLock",
    0x80ED0000: "BadLocaleNotSupported",
    0x80EE0000: "BadServerTooBusy",
    0x80F00000: "BadNoValue",
    0x80F10000: "BadTransactionFailed",
    0x810D0000: "BadCertificateChainIncomplete",
    0x810E0000: "BadLicenseExpired",
    0x810F0000: "BadLicenseLimitsExceeded",
    0x81100000: "BadLicenseNotAvailable",
    0x81110000: "BadNotExecutable",
    0x81120000: "BadNumericOverflow",
    0x81130000: "BadRequestNotComplete",
    0x81140000: "BadCertificatePolicyCheckFailed",
    0x81150000: "BadAlreadyExists",
    0x81190000: "BadEdited_OutOfRange",
    0x811A0000: "BadInitialValue_OutOfRange",
    0x811B0000: "BadOutOfRange_DominantValueChanged",
    0x811C0000: "BadEdited_OutOfRange_DominantValueChanged",
    0x811D0000: "BadOutOfRange_DominantValueChanged_DependentValueChanged",
    0x811E0000: "BadEdited_OutOfRange_DominantValueChanged_DependentValueChanged",
    0x811F0000: "BadTicketRequired",
    0x81200000: "BadTicketInvalid",
}


def status_name(code: int) -> str:
    """Symbolic name of a StatusCode; the info bits (low 16) are ignored when needed."""
    code &= 0xFFFFFFFF
    name = STATUS_CODES.get(code)
    if name is None:
        name = STATUS_CODES.get(code & 0xFFFF0000)
    if name is None:
        sev = code >> 30
        name = ("Good", "Uncertain", "Bad", "Bad")[sev] + "_0x%08X" % code
    return name


def status_severity(code: int) -> str:
    return ("good", "uncertain", "bad", "bad")[(code & 0xFFFFFFFF) >> 30]
