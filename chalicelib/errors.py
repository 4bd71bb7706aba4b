"""The project's error hierarchy. Routes map these to HTTP answers; adapters raise them, keeping the cause."""

from __future__ import annotations


class LeadloopError(Exception):
    """Base of every error Leadloop raises on purpose. `code` is the stable machine-readable name."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class MalformedInput(LeadloopError):
    status, code = 400, "malformed"


class Unauthenticated(LeadloopError):
    status, code = 401, "unauthenticated"


class Forbidden(LeadloopError):
    status, code = 403, "forbidden"


class NotFound(LeadloopError):
    status, code = 404, "not_found"


class Conflict(LeadloopError):
    status, code = 409, "conflict"


class TooLarge(LeadloopError):
    status, code = 413, "too_large"


class InvalidContent(LeadloopError):
    status, code = 422, "invalid"


class RecordRefused(InvalidContent):
    """Storage will never accept this write as it is (an item over DynamoDB's size limit); not retryable."""

    code = "record_refused"


class UnreadableRecord(InvalidContent):
    """A stored record that no longer maps to the domain (corrupt, or from an incompatible version)."""

    code = "unreadable_record"


class ConcurrentUpdate(Conflict):
    """A conditional write lost against another writer; the caller reloads and retries."""

    code = "concurrent_update"


class StorageUnavailable(LeadloopError):
    """Storage throttled or failed; retryable, never a client error."""

    status, code = 503, "unavailable"
