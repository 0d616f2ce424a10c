"""Every failure notifyd names, one class per kind, mapped to an answer at the edge.

    NotifydError
    ├── ConfigError              a config file that cannot be used (file, line, key, reason)
    │   └── ConfigNotWritable    the config file cannot be written (permission, read-only, disk full)
    ├── StoreError
    │   ├── StoreUnavailable     the database cannot be written now (locked, full, read-only) → 503
    │   ├── StoreTooNew          the file was written by a newer notifyd
    │   └── AlreadyRunning       another `notifyd serve` holds this database
    ├── ListenError              the listening address cannot be bound (in use, not allowed)
    ├── NotFound                 no event, job or service by that id or name
    ├── WebhookError             a request the listener refuses (carries status, code, detail)
    │   ├── BadRequest           400: empty, undecodable or non-object JSON
    │   ├── BadHeader            400: a header value notifyd cannot use (an over-long Idempotency-Key)
    │   ├── BadToken             401: token missing or wrong
    │   ├── UnknownSource        404: no such source
    │   ├── PayloadTooLarge      413: body over server.max_body
    │   ├── UnsupportedMedia     415: not JSON, or a charset other than UTF-8
    │   ├── BadPayload           422: JSON of the wrong shape for the source
    │   ├── RequestTimeout       408: the headers or the body did not arrive in time
    │   ├── HeadersTooLarge      431: the request line and headers (or the URL alone) are too long
    │   ├── TooManyFailures      429: too many failed tokens from this client address (Retry-After)
    │   └── Overloaded           503: too many open connections (Retry-After)
    └── DeliveryError            a delivery attempt that did not succeed
        ├── TransientError       worth retrying (timeouts, 5xx, 408, 429); may carry retry_after
        ├── PermanentError       retrying cannot help (4xx, bad URL, bad credentials)
        │   └── ReceiverGone     410 Gone: the receiver wants no more; its service is switched off
        └── Skipped              nothing to deliver: the service was disabled or removed, or the
                                 receiver holds nothing the job is about (a folder no Plex section holds)
"""

from __future__ import annotations


class NotifydError(Exception):
    """Base of every error notifyd raises on purpose."""


class ConfigError(NotifydError):
    """A config file that cannot be used; the message names file, line, key and reason."""

    def __init__(self, reason: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        self.reason = reason
        self.file = file
        self.key = key
        self.line = line
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        super().__init__(f"{where}{key + ': ' if key else ''}{reason}")


class ConfigNotWritable(ConfigError):
    """The config file cannot be written (permission, read-only file system, disk full): an
    operation that failed, not a config to fix; the message names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.file = path


class StoreError(NotifydError):
    """A problem with the SQLite store."""


class StoreUnavailable(StoreError):
    """The database cannot be written right now (locked, disk full, read-only)."""


class StoreTooNew(StoreError):
    """The database schema is newer than this notifyd knows."""


class AlreadyRunning(StoreError):
    """Another `notifyd serve` holds the database."""


class ListenError(NotifydError):
    """The listening address cannot be bound (already in use, not allowed)."""


class NotFound(NotifydError):
    """No event, job, or service by that id or name."""


class WebhookError(NotifydError):
    """A request the listener refuses, with its HTTP status and a stable error code."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class BadRequest(WebhookError):
    """400: the body is empty, not UTF-8, not JSON, too deep, or not an object."""

    status = 400
    code = "invalid_json"


class BadHeader(WebhookError):
    """400: a header value that cannot be used, such as an Idempotency-Key over its length limit."""

    status = 400
    code = "invalid_header"


class BadToken(WebhookError):
    """401: the token is missing or wrong."""

    status = 401
    code = "unauthorized"


class UnknownSource(WebhookError):
    """404: no built-in or configured source by that name."""

    status = 404
    code = "unknown_source"


class PayloadTooLarge(WebhookError):
    """413: the body is larger than server.max_body."""

    status = 413
    code = "payload_too_large"


class UnsupportedMedia(WebhookError):
    """415: the body is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"


class BadPayload(WebhookError):
    """422: valid JSON of the wrong shape for its source."""

    status = 422
    code = "invalid_payload"


class RequestTimeout(WebhookError):
    """408: the request's headers or body did not arrive within their timeout."""

    status = 408
    code = "request_timeout"


class HeadersTooLarge(WebhookError):
    """431: the request line and headers are over 64 KiB, or the URL is over 8 KiB."""

    status = 431
    code = "headers_too_large"


class TooManyFailures(WebhookError):
    """429: this client address presented too many wrong tokens lately; it may try after retry_after s."""

    status = 429
    code = "too_many_failures"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Overloaded(WebhookError):
    """503: more connections are open than server.max_connections allows; try after retry_after s."""

    status = 503
    code = "overloaded"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Deferred(NotifydError):
    """Not now: the job's service is inside its quiet hours, or its turn under the service's pace has
    not come, until `until` (POSIX seconds). The job is given back unfinished, due then, its attempt
    not counted; nothing failed."""

    def __init__(self, until: float, reason: str) -> None:
        self.until = until
        super().__init__(reason)


class DeliveryError(NotifydError):
    """A delivery attempt that did not succeed; `detail` is safe to store (no secrets)."""

    def __init__(self, error: str, detail: str = "") -> None:
        self.error = error
        self.detail = detail
        super().__init__(error)


class TransientError(DeliveryError):
    """Worth retrying later; `retry_after` (seconds) when the receiver said when."""

    def __init__(self, error: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(error, detail)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Retrying cannot help; the job goes dead at once with this reason."""


class ReceiverGone(PermanentError):
    """The receiver answered 410 Gone: it wants no more deliveries."""


class Skipped(DeliveryError):
    """Nothing to deliver (the service was disabled or removed, or the receiver has no place for
    what the job is about): skipped, not failed; `error` says why."""
