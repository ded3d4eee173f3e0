"""Operations on a session that run on its owner instance, as typed commands. Each one crosses
the command bus as `{"kind": ..., **fields}` plus a binary payload (a reference image travels
as its bytes); errors come back by name and are raised again, the same type, on the caller."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from framewire import errors
from framewire.media.leg import LegFailed
from framewire.policy.base import ContentRejected, InvalidImage
from framewire.rtc.restart import RestartConflict
from framewire.rtc.signaling import InvalidCandidate, InvalidOffer
from framewire.rtc.sockets import PortsExhausted
from framewire.state.base import Record


@dataclass(frozen=True)
class Trickle:
    """Add the client's candidates; new ICE credentials (`ufrag`, `pwd`) restart ICE."""

    session_id: str
    if_match: list[str]
    candidates: list[Any]
    ufrag: str | None = None
    pwd: str | None = None


@dataclass(frozen=True)
class Restart:
    """Restart ICE from a new offer."""

    session_id: str
    if_match: list[str]
    offer: str


@dataclass(frozen=True)
class SetPrompt:
    session_id: str
    prompt: str
    enhanced: str
    enhance: bool


@dataclass(frozen=True)
class SetImage:
    """A new reference image (the payload) and, optionally, a prompt with it."""

    session_id: str
    prompt: str | None
    enhanced: str | None
    enhance: bool


@dataclass(frozen=True)
class End:
    session_id: str
    reason: str


@dataclass(frozen=True)
class Stats:
    """The leg's media figures (GET session `stats`)."""

    session_id: str


@dataclass(frozen=True)
class AddViewer:
    """A WHEP viewer of the session, from its (recvonly) offer."""

    session_id: str
    offer: str


@dataclass(frozen=True)
class PatchViewer:
    """A viewer's trickle; new ICE credentials (`ufrag`, `pwd`) restart its ICE."""

    session_id: str
    viewer_id: str
    if_match: list[str]
    candidates: list[Any]
    ufrag: str | None = None
    pwd: str | None = None


@dataclass(frozen=True)
class RemoveViewer:
    session_id: str
    viewer_id: str


Command = (
    Trickle | Restart | SetPrompt | SetImage | End | Stats | AddViewer | PatchViewer | RemoveViewer
)
KINDS: dict[str, type[Command]] = {
    cls.__name__: cls
    for cls in (
        Trickle,
        Restart,
        SetPrompt,
        SetImage,
        End,
        Stats,
        AddViewer,
        PatchViewer,
        RemoveViewer,
    )
}


def encode(command: Command) -> Record:
    return {"kind": type(command).__name__, **dataclasses.asdict(command)}


def decode(body: Record) -> Command:
    fields = dict(body)
    kind = KINDS.get(str(fields.pop("kind", "")))
    if kind is None:
        raise errors.BadRequest(f"unknown command {body.get('kind')!r}")
    return kind(**fields)


TRANSPORTED: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (InvalidOffer, InvalidCandidate, RestartConflict, LegFailed, ContentRejected,
                InvalidImage, PortsExhausted)
}  # fmt: skip
"""Errors below the domain's own that an owner's handler may raise for its caller."""


def error_reply(exc: Exception) -> Record | None:
    """The reply carrying `exc` to the caller, if it is an error the caller should see."""
    name = type(exc).__name__
    if isinstance(exc, errors.FramewireError) and getattr(errors, name, None) is type(exc):
        return {"error": {"kind": name, "detail": exc.detail}}
    if TRANSPORTED.get(name) is type(exc):
        return {"error": {"kind": name, "detail": str(exc)}}
    return None


def raise_remote(reply: Record) -> None:
    """Raise again an error an owner's handler replied with."""
    error = reply.get("error")
    if error is None:
        return
    kind, detail = str(error["kind"]), str(error["detail"])
    cls = TRANSPORTED.get(kind) or getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        raise cls(detail)
    raise errors.FramewireError(detail)
