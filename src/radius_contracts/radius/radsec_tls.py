"""Who may connect over RadSec (RFC 6614): the server's TLS context and the peer checks.

The TLS layer checks the client certificate against the CA (and its validity dates); this
module also builds that context from files, checks the server's own certificate dates (OpenSSL
would serve an expired one), names why a handshake failed (a metrics label), and matches a
NAS's pin (subject CN or SHA-256 fingerprint).
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import time
from pathlib import Path

__all__ = [
    "TlsFilesError",
    "certificate_fingerprint",
    "pin_matches",
    "refusal_reason",
    "subject_cn",
    "tls_context",
]


class TlsFilesError(ValueError):
    """The certificate, key or CA file cannot be used; the message says which and why."""


def tls_context(
    certificate: Path,
    private_key: Path,
    ca_file: Path,
    *,
    alpn: list[str] | None = None,
    tls13_only: bool = False,
) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later (1.3 with ``tls13_only``), client certificates
    required against ``ca_file``, the ALPN names ``alpn`` offered (RFC 9765 §3.3).

    Raises TlsFilesError for a file that is missing, unreadable, not PEM, a key that does not
    match the certificate, or a server certificate outside its validity period.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # RFC 6614 §2.3 asks for TLS 1.1 or later; 1.0 and 1.1 are deprecated (RFC 8996).
    context.minimum_version = ssl.TLSVersion.TLSv1_3 if tls13_only else ssl.TLSVersion.TLSv1_2
    if alpn:
        context.set_alpn_protocols(alpn)
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(certificate, private_key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFilesError(f"certificate {certificate} / key {private_key}: {exc}") from None
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsFilesError(f"CA file {ca_file}: {exc}") from None
    _check_validity(certificate)
    return context


def _check_validity(certificate: Path) -> None:
    # OpenSSL happily serves an expired certificate of its own; every NAS would then refuse
    # it. The stdlib exposes the dates only through this long-standing helper; without it
    # the check is skipped.
    decode = getattr(ssl._ssl, "_test_decode_cert", None)  # type: ignore[attr-defined]
    if decode is None:
        return
    try:
        info = decode(str(certificate))
        not_before = ssl.cert_time_to_seconds(info["notBefore"])
        not_after = ssl.cert_time_to_seconds(info["notAfter"])
    except (ssl.SSLError, OSError, KeyError, ValueError) as exc:
        raise TlsFilesError(f"certificate {certificate}: {exc}") from None
    now = time.time()
    if now > not_after:
        raise TlsFilesError(f"certificate {certificate} expired on {info['notAfter']}")
    if now < not_before:
        raise TlsFilesError(f"certificate {certificate} is not valid before {info['notBefore']}")


def certificate_fingerprint(der: bytes) -> str:
    """``sha256:`` and the lower-case hex SHA-256 of a DER certificate: a pin's spelling."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def subject_cn(peercert: object) -> str | None:
    """The commonName of a peer certificate as ``getpeercert()`` gives it, or None."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def refusal_reason(exc: BaseException) -> str:
    """A metrics label for a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError) or (
        isinstance(exc, ssl.SSLError) and exc.reason == "CERTIFICATE_VERIFY_FAILED"
    ):
        if getattr(exc, "verify_code", None) == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return "certificate_expired"
        return "certificate_untrusted"
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or "")
        if reason in {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNEXPECTED_MESSAGE",
                      "UNSUPPORTED_PROTOCOL", "RECORD_LAYER_FAILURE"}:  # fmt: skip
            return "not_tls"
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "no_certificate"
        if "EXPIRED" in reason:
            return "certificate_expired"
        if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
            return "certificate_untrusted"
        return "tls_error"
    # asyncio aborts a handshake past ssl_handshake_timeout with ConnectionAbortedError.
    if isinstance(exc, ConnectionAbortedError | TimeoutError):
        return "handshake_timeout"
    return "connection_lost"


def pin_matches(pin: str, subject: str | None, fingerprint: str) -> bool:
    """Whether a NAS's pin (``sha256:<hex>``, colons allowed, or a subject CN) names the
    certificate with this subject CN and :func:`certificate_fingerprint`."""
    if pin.lower().startswith("sha256:"):
        wanted = pin.lower().replace(":", "")  # "sha256:ab:cd..." and "sha256:abcd..." alike
        return hmac.compare_digest(wanted, fingerprint.replace(":", ""))
    return subject is not None and hmac.compare_digest(pin.encode(), subject.encode())
