"""The enhancer and moderator a deployment runs: the built-ins by default, or plug-ins named in
the models file (`[enhancer]`, `[moderator]`) or the settings `FRAMEWIRE_ENHANCER` /
`FRAMEWIRE_MODERATOR`: an entry point in `framewire.enhancers` / `framewire.moderators`, or
`package.module:attr`. The named object is called with the plug-in's options as keyword
arguments and must return an object with the `PromptEnhancer` / `Moderator` methods."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from framewire.plugins import PluginNotFound, load_plugin
from framewire.policy.base import Moderator, PromptEnhancer
from framewire.policy.enhance import KeywordEnhancer
from framewire.policy.moderation import DefaultModerator

ENHANCER_GROUP = "framewire.enhancers"
MODERATOR_GROUP = "framewire.moderators"
BUILT_IN_ENHANCERS: dict[str, object] = {"keywords": KeywordEnhancer}
BUILT_IN_MODERATORS: dict[str, object] = {"blocklist": DefaultModerator}


class PolicyPluginError(ValueError):
    """A named enhancer or moderator cannot be found or built; the server does not start."""


def build_enhancer(name: str | None, options: Mapping[str, Any]) -> PromptEnhancer:
    enhancer = _build("enhancer", name or "keywords", ENHANCER_GROUP, BUILT_IN_ENHANCERS, options)
    if not callable(getattr(enhancer, "enhance", None)):
        raise PolicyPluginError(f"enhancer {name!r}: the object it made has no enhance()")
    return cast(PromptEnhancer, enhancer)


def build_moderator(
    name: str | None, options: Mapping[str, Any], blocked_terms: list[str]
) -> Moderator:
    """`blocked_terms` (FRAMEWIRE_BLOCKED_TERMS) go to the built-in `blocklist` moderator."""
    if name is None or name == "blocklist":
        options = {"extra_terms": blocked_terms, **options}
    moderator = _build(
        "moderator", name or "blocklist", MODERATOR_GROUP, BUILT_IN_MODERATORS, options
    )
    for method in ("check_prompt", "decode_image"):
        if not callable(getattr(moderator, method, None)):
            raise PolicyPluginError(f"moderator {name!r}: the object it made has no {method}()")
    return cast(Moderator, moderator)


def _build(
    kind: str, name: str, group: str, built_in: Mapping[str, object], options: Mapping[str, Any]
) -> object:
    try:
        factory = load_plugin(name, group, built_in)
    except PluginNotFound as exc:
        raise PolicyPluginError(f"{kind} {exc}") from None
    if not callable(factory):
        raise PolicyPluginError(f"{kind} {name!r}: not callable")
    try:
        return cast(Callable[..., object], factory)(**options)
    except Exception as exc:  # the plug-in's constructor: bad options, missing service, ...
        raise PolicyPluginError(f"{kind} {name!r} failed to start: {exc!r}") from exc
