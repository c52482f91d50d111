"""What an HTTP answer or a failure means: one Status, a human reason, and whether to retry.

The rule is "no false deaths": only definitive evidence is
`broken` (404, 410, other definitive 4xx, a name that does not resolve, a
refused connection); access refusals (401/402/403/451/999, Cloudflare's
``cf-mitigated``) are `blocked`; transient trouble (timeouts, resets, 5xx, 429)
is retried and, if it persists, reported as exactly what it was. Reasons are
meant for people reading a report: "TLS: certificate has expired", not an
exception repr (that goes to CheckResult.error).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp

from linkkeeper.check.accept import AcceptRanges
from linkkeeper.check.resolver import NotContacted
from linkkeeper.vocab import Status

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECT_CODES = frozenset({301, 308})
BLOCKED_CODES = frozenset({401, 402, 403, 451, 999})
THROTTLE_CODES = frozenset({429, 503})  # the host asks us to slow down: back off the whole host
# HEAD answers that say "ask again" rather than "HEAD is broken here": retried, not re-asked with GET.
HEAD_RETRY_CODES = frozenset({408, 429, 502, 503, 504})

_DNS_MISSING = {
    getattr(socket, name)
    for name in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY", "EAI_FAIL")
    if hasattr(socket, name)
}
# OpenSSL X509_V_ERR_* codes
_TLS_EXPIRED = 10
_TLS_NOT_YET_VALID = 9
_TLS_HOSTNAME = 62
_TLS_UNTRUSTED = {2, 18, 19, 20, 21, 27}
_TLS_REVOKED = 23


@dataclass(frozen=True, slots=True)
class Outcome:
    """The meaning of one answer or failure."""

    status: Status
    reason: str
    retryable: bool = False  # worth another try after back-off
    throttle: bool = False  # the host should slow down as a whole


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The limits in force for a request, quoted in timeout reasons."""

    connect: float
    read: float
    total: float


def seconds(value: float) -> str:
    return f"{value:g} s"


def status_text(code: int) -> str:
    """``404 Not Found``; non-standard codes (999) stay bare."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def needs_get_after_head(code: int) -> bool:
    """HEAD answers that servers commonly get wrong: ask again with GET (405, 501, 403, 404...)."""
    return not (200 <= code < 400) and code not in HEAD_RETRY_CODES


def classify_response(
    code: int, headers: Mapping[str, str], accept: AcceptRanges, *, label: str
) -> Outcome:
    """Meaning of a final (non-followed) HTTP answer; `label` is "HTTP 404 Not Found" or "HEAD 405, GET 404"."""
    if code in accept:
        return Outcome(Status.OK, label)
    if code == 403 and "cf-mitigated" in {name.lower() for name in headers}:
        return Outcome(Status.BLOCKED, f"{label} (Cloudflare challenge, cf-mitigated)")
    if code in BLOCKED_CODES:
        return Outcome(Status.BLOCKED, f"{label} (access refused, not evidence of death)")
    if code == 429:
        return Outcome(Status.RATE_LIMITED, label, retryable=True, throttle=True)
    if code == 408:
        return Outcome(Status.TIMEOUT, label, retryable=True)
    if 500 <= code < 600:
        return Outcome(Status.SERVER_ERROR, label, retryable=True, throttle=code in THROTTLE_CODES)
    if 200 <= code < 300:
        return Outcome(Status.BROKEN, f"{label} (not in accepted codes {accept})")
    if 300 <= code < 400:
        return Outcome(Status.BROKEN, f"{label} without a usable Location")
    return Outcome(Status.BROKEN, label)


def classify_error(exc: BaseException, timeouts: Timeouts) -> Outcome:
    """Meaning of a failure without a (complete) HTTP answer."""
    os_error = getattr(exc, "os_error", None)
    refused = exc if isinstance(exc, NotContacted) else os_error
    if isinstance(refused, NotContacted):  # resolver.py refused it before connecting
        return Outcome(refused.status, refused.reason)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return _dns(os_error)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return _certificate(exc.certificate_error)
    if isinstance(exc, ssl.SSLCertVerificationError | ssl.CertificateError):
        return _certificate(exc)
    if isinstance(exc, aiohttp.ClientConnectorSSLError | ssl.SSLError):
        detail = getattr(exc, "reason", None) or getattr(os_error, "reason", None) or str(exc)
        return Outcome(Status.TLS_ERROR, f"TLS: handshake failed ({detail})")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Outcome(
            Status.TIMEOUT, f"connect timeout after {seconds(timeouts.connect)}", retryable=True
        )
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return Outcome(
            Status.TIMEOUT, f"read timeout after {seconds(timeouts.read)}", retryable=True
        )
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Outcome(
            Status.TIMEOUT, f"total timeout after {seconds(timeouts.total)}", retryable=True
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(os_error, ConnectionRefusedError):
            return Outcome(Status.BROKEN, "connection refused")
        return Outcome(
            Status.NETWORK_ERROR,
            f"cannot connect: {getattr(os_error, 'strerror', None) or os_error or exc}",
            retryable=True,
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return _payload(exc)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome(
            Status.NETWORK_ERROR, "server closed the connection without an answer", retryable=True
        )
    if isinstance(exc, ConnectionResetError) or _caused_by(exc, ConnectionResetError):
        return Outcome(Status.NETWORK_ERROR, "connection reset by peer", retryable=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return Outcome(Status.INVALID, f"invalid URL: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return Outcome(Status.NETWORK_ERROR, f"protocol error: {exc.message}")
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        return Outcome(Status.NETWORK_ERROR, f"network error: {exc}", retryable=True)
    return Outcome(Status.NETWORK_ERROR, f"network error: {type(exc).__name__}: {exc}")


def _dns(error: object) -> Outcome:
    errno = getattr(error, "errno", None)
    if isinstance(error, socket.gaierror) and errno not in _DNS_MISSING:
        if errno == getattr(socket, "EAI_AGAIN", None):
            return Outcome(
                Status.NETWORK_ERROR, "DNS: temporary failure in name resolution", retryable=True
            )
        return Outcome(Status.NETWORK_ERROR, f"DNS: {error.strerror or error}", retryable=True)
    return Outcome(Status.BROKEN, "DNS: name does not resolve")


def _certificate(error: BaseException) -> Outcome:
    code = getattr(error, "verify_code", None)
    message = str(getattr(error, "verify_message", "") or error)
    if code == _TLS_EXPIRED:
        reason = "TLS: certificate has expired"
    elif code == _TLS_NOT_YET_VALID:
        reason = "TLS: certificate is not yet valid"
    elif (
        code == _TLS_HOSTNAME
        or "hostname mismatch" in message.lower()
        or (
            isinstance(error, ssl.CertificateError)
            and not isinstance(error, ssl.SSLCertVerificationError)
        )
    ):
        reason = "TLS: certificate is not valid for this host name"
    elif code in _TLS_UNTRUSTED:
        reason = "TLS: self-signed / unknown issuer"
    elif code == _TLS_REVOKED:
        reason = "TLS: certificate has been revoked"
    else:
        reason = f"TLS: certificate verify failed ({message})"
    return Outcome(Status.TLS_ERROR, reason)


def _payload(exc: BaseException) -> Outcome:
    text = f"{exc} {exc.__cause__!r}"
    if _caused_by(exc, ConnectionResetError) or "ConnectionResetError" in text:
        return Outcome(Status.NETWORK_ERROR, "connection reset mid-body", retryable=True)
    if "ContentLengthError" in text or "Not enough data" in text:
        return Outcome(Status.NETWORK_ERROR, "body shorter than its Content-Length", retryable=True)
    if "TransferEncodingError" in text:
        return Outcome(Status.NETWORK_ERROR, "broken chunked transfer encoding", retryable=True)
    if "ContentEncodingError" in text or "decompress" in text.lower():
        return Outcome(Status.NETWORK_ERROR, "undecodable content encoding")
    return Outcome(Status.NETWORK_ERROR, f"incomplete body: {exc}", retryable=True)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
