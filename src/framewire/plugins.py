"""Plug-in lookup shared by models, enhancers and moderators: a name is either an entry point in
a group (how an installed package plugs in) or `package.module:attr` (how a local module does,
with nothing installed)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points


class PluginNotFound(LookupError):
    """No entry point, built-in or importable `module:attr` answers to this name."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r}: {reason}")
        self.name = name
        self.reason = reason


def load_plugin(name: str, group: str, built_in: Mapping[str, object] | None = None) -> object:
    """The object `name` designates: `module:attr` is imported; any other name is looked up in
    the entry-point `group`, then in `built_in` (a source checkout without installed metadata)."""
    if ":" in name:
        return _import(name)
    for entry_point in entry_points(group=group, name=name):
        try:
            return entry_point.load()
        except Exception as exc:  # a broken plug-in package may fail any way on import
            raise PluginNotFound(name, f"entry point failed to load: {exc!r}") from exc
    if built_in is not None and name in built_in:
        return built_in[name]
    raise PluginNotFound(name, f"no entry point of that name in group {group!r}")


def _import(name: str) -> object:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise PluginNotFound(name, "expected 'package.module:attr'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or the module's own code failing on import
        raise PluginNotFound(name, f"cannot import {module_name!r}: {exc!r}") from exc
    try:
        target: object = module
        for part in attr.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise PluginNotFound(name, f"module {module_name!r} has no attribute {attr!r}") from None
    return target
