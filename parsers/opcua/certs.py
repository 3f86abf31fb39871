"""X.509 application certificates seen on the wire (OPN SenderCertificate,
EndpointDescription.ServerCertificate, CreateSession client/server certificates).

``summarize(der) -> CertificateSummary`` never raises: a certificate that does
not parse gives a summary with ``error`` set.  OPC UA ByteString certificates
may be a chain (several DER certificates back to back, Part 6 §6.2.6): the
first one is the application certificate and is the one summarised.
Summaries are cached by SHA-1 (GetEndpoints repeats one certificate per endpoint).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from ..common import escape

CACHE_SIZE = 256
"""Distinct certificates whose summaries are cached (a site has a handful of servers)."""


@dataclass(frozen=True)
class CertificateSummary:
    size: int
    """Bytes of the first DER certificate (or of the whole field when it does not parse)."""
    thumbprint_sha1: str
    """SHA-1 of the DER certificate, hex: the value OPC UA uses as thumbprint."""
    subject: str | None = None
    issuer: str | None = None
    serial: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    key_type: str | None = None
    """"RSA", "EC", "Ed25519"...; None when unknown."""
    key_size: int | None = None
    signature_algorithm: str | None = None
    """e.g. "sha256WithRSAEncryption" (SHA-1 signatures are a finding)."""
    san_uris: tuple[str, ...] = ()
    """SubjectAltName URIs: the ApplicationUri must be one of them."""
    san_dns: tuple[str, ...] = ()
    self_signed: bool | None = None
    chain_length: int = 1
    error: str | None = None


def _der_length(der: bytes) -> int:
    """Length of the first DER element (a SEQUENCE), or len(der) if unreadable."""
    if len(der) < 2 or der[0] != 0x30:
        return len(der)
    b = der[1]
    if b < 0x80:
        return min(2 + b, len(der))
    n = b & 0x7F
    if n == 0 or n > 4 or len(der) < 2 + n:
        return len(der)
    return min(2 + n + int.from_bytes(der[2 : 2 + n], "big"), len(der))


def _chain_length(der: bytes) -> int:
    count, pos = 0, 0
    while pos < len(der) and count < 16:
        n = _der_length(der[pos:])
        if n <= 0:
            break
        pos += n
        count += 1
    return max(count, 1)


def summarize(der: bytes | None) -> CertificateSummary | None:
    if not der:
        return None
    return _summarize(bytes(der))


@lru_cache(maxsize=CACHE_SIZE)
def _summarize(blob: bytes) -> CertificateSummary:
    first = blob[: _der_length(blob)]
    thumb = hashlib.sha1(first).hexdigest()
    chain = _chain_length(blob)
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

        cert = x509.load_der_x509_certificate(first)
    except Exception as exc:  # any parse failure is reported, not raised
        return CertificateSummary(size=len(first), thumbprint_sha1=thumb, chain_length=chain,
                                  error="unparsable certificate: %s" % escape(type(exc).__name__))
    fields: dict = {}
    errors = []
    try:
        fields["subject"] = escape(cert.subject.rfc4514_string())
        fields["issuer"] = escape(cert.issuer.rfc4514_string())
        fields["self_signed"] = cert.subject == cert.issuer
    except Exception as exc:
        errors.append("name: " + type(exc).__name__)
    try:
        fields["serial"] = "%x" % cert.serial_number
    except Exception as exc:
        errors.append("serial: " + type(exc).__name__)
    try:
        fields["not_before"] = cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        fields["not_after"] = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    except Exception as exc:
        errors.append("validity: " + type(exc).__name__)
    try:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            fields["key_type"], fields["key_size"] = "RSA", key.key_size
        elif isinstance(key, ec.EllipticCurvePublicKey):
            fields["key_type"], fields["key_size"] = "EC", key.key_size
        elif isinstance(key, dsa.DSAPublicKey):
            fields["key_type"], fields["key_size"] = "DSA", key.key_size
        elif isinstance(key, ed25519.Ed25519PublicKey):
            fields["key_type"], fields["key_size"] = "Ed25519", 256
        elif isinstance(key, ed448.Ed448PublicKey):
            fields["key_type"], fields["key_size"] = "Ed448", 456
        else:
            fields["key_type"] = type(key).__name__
    except Exception as exc:
        errors.append("key: " + type(exc).__name__)
    try:
        oid = cert.signature_algorithm_oid
        fields["signature_algorithm"] = getattr(oid, "_name", None) or oid.dotted_string
    except Exception as exc:
        errors.append("signature: " + type(exc).__name__)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        fields["san_uris"] = tuple(escape(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier))[:16]
        fields["san_dns"] = tuple(escape(u) for u in san.get_values_for_type(x509.DNSName))[:16]
    except x509.ExtensionNotFound:
        pass
    except Exception as exc:
        errors.append("san: " + type(exc).__name__)
    if fields.get("self_signed"):
        # same name: also check the signature really is its own (else a name clash)
        try:
            cert.verify_directly_issued_by(cert)
        except Exception:
            fields["self_signed"] = False
    return CertificateSummary(size=len(first), thumbprint_sha1=thumb, chain_length=chain,
                              error="; ".join(errors) or None, **fields)
