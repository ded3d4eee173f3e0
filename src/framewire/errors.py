"""Domain errors as values: each carries its HTTP status, a problem type slug and a title.
Raised anywhere below the API and mapped once, at the edge, to RFC 7807 problem+json."""

from __future__ import annotations

PROBLEM_BASE = "https://framewire.dev/errors/"


class FramewireError(Exception):
    status = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class BadRequest(FramewireError):
    status, slug, title = 400, "bad-request", "Malformed request"


class InvalidSdp(FramewireError):
    status, slug, title = 400, "invalid-sdp", "Invalid SDP offer"


class InvalidCandidates(FramewireError):
    status, slug, title = 400, "invalid-candidate", "Invalid ICE candidate"


class Unauthorized(FramewireError):
    status, slug, title = 401, "unauthorized", "Missing or invalid API key"


class InsufficientCredits(FramewireError):
    status, slug, title = 402, "insufficient-credits", "Insufficient credits"


class NotFound(FramewireError):
    status, slug, title = 404, "not-found", "Session not found or expired"


class MethodNotAllowed(FramewireError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(FramewireError):
    status, slug, title = 409, "conflict", "Conflicting session state"


class Gone(FramewireError):
    status, slug, title = 410, "session-ended", "Session ended"


class RequestTimeout(FramewireError):
    status, slug, title = 408, "request-timeout", "Request timeout"


class PreconditionFailed(FramewireError):
    status, slug, title = 412, "precondition-failed", "ETag does not match the ICE session"


class ContentTooLarge(FramewireError):
    status, slug, title = 413, "content-too-large", "Content too large"


class UnsupportedMediaType(FramewireError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unprocessable(FramewireError):
    status, slug, title = 422, "invalid-request", "Invalid value in the request"


class NoUsableCodec(FramewireError):
    status, slug, title = 422, "no-usable-codec", "No usable video codec"


class UnsupportedModel(FramewireError):
    status, slug, title = 422, "unsupported-model", "Unsupported model"


class ModerationRejected(FramewireError):
    status, slug, title = 422, "moderation-rejected", "Input rejected by moderation"


class InvalidImage(FramewireError):
    status, slug, title = 422, "invalid-image", "Invalid reference image"


class PreconditionRequired(FramewireError):
    status, slug, title = 428, "precondition-required", "If-Match header required"


class TooManySessions(FramewireError):
    status, slug, title = 429, "too-many-sessions", "Too many concurrent sessions for this key"


class TooManyViewers(FramewireError):
    status, slug, title = 429, "too-many-viewers", "Too many viewers for this session"


class TooManyStreams(FramewireError):
    status, slug, title = 429, "too-many-streams", "Too many event streams for this session"


class TooManyFailedAuthentications(FramewireError):
    status, slug, title = 429, "too-many-failed-authentications", "Too many failed authentications"


class ServiceUnavailable(FramewireError):
    status, slug, title = 503, "service-unavailable", "Service temporarily unavailable"


class UpstreamFailed(FramewireError):
    status, slug, title = 502, "bad-gateway", "Upstream failed"


class NotImplementedYet(FramewireError):
    status, slug, title = 501, "not-implemented", "Not implemented"


class OwnerUnreachable(ServiceUnavailable):
    """The instance that owns a session did not answer a command in time."""
