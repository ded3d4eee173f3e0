"""The models file (`framewire serve --models FILE`, `FRAMEWIRE_MODELS`): model ids declared in
TOML, without code, and the enhancer and moderator plug-ins.

    [models.sd_turbo]
    backend = "diffusers"            # entry point in `framewire.models`, or "package.module:attr"
    width = 512
    height = 512
    fps = 12
    accepts_image = false
    [models.sd_turbo.options]        # optional, handed to the backend as `spec.options`
    model = "/srv/models/sd-turbo"

    [enhancer]                       # optional; same for [moderator]
    backend = "my_package.llm:Enhancer"
    [enhancer.options]
    endpoint = "http://127.0.0.1:9000"

Every problem is a `ModelsFileError` naming the file, the model id and the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framewire.models.base import ModelSpec
from framewire.models.registry import ModelRegistry, UnknownBackend, is_shared

_REQUIRED: dict[str, type] = {
    "backend": str,
    "width": int,
    "height": int,
    "fps": int,
    "accepts_image": bool,
}
_OPTIONAL = {"options"}
PLUGIN_TABLES = ("enhancer", "moderator")


class ModelsFileError(ValueError):
    """The models file cannot be served; the message says where and why."""

    def __init__(
        self, path: Path, problem: str, model_id: str | None = None, key: str = ""
    ) -> None:
        where = f"models file {str(path)!r}"
        if model_id is not None:
            where += f", model {model_id!r}"
        if key:
            where += f", field {key!r}"
        super().__init__(f"{where}: {problem}")
        self.path, self.model_id, self.field = path, model_id, key


@dataclass(frozen=True)
class PluginRef:
    """A plug-in named in the models file or a setting, and the options it is built with."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    specs: tuple[ModelSpec, ...]
    enhancer: PluginRef | None = None
    moderator: PluginRef | None = None

    path: Path | None = None

    def start(self) -> ModelRegistry:
        """A registry of these ids with every shared model loaded and warmed up; a backend that
        fails here is a ModelsFileError for its model id. Blocks: run it before serving."""
        registry = ModelRegistry(self.specs)
        for spec in self.specs:
            if not is_shared(registry.backend(spec.backend)):
                continue
            try:
                registry.create(spec.id)
            except Exception as exc:  # a plug-in may fail any way: no weights, no GPU, a bug
                raise ModelsFileError(
                    self.path or Path("-"), f"backend failed to load: {exc!r}", spec.id, "backend"
                ) from exc
        return registry


def load_catalog(path: Path) -> Catalog:
    """Read and check the models file: syntax, fields, and that every backend can be found."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelsFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ModelsFileError(path, f"is not valid TOML: {exc}") from None
    unknown = set(document) - {"models", *PLUGIN_TABLES}
    if unknown:
        raise ModelsFileError(path, f"unknown table(s) {sorted(unknown)}")
    models = document.get("models")
    if not isinstance(models, dict) or not models:
        raise ModelsFileError(path, "declares no [models.ID] table", key="models")
    specs = tuple(_spec(path, model_id, table) for model_id, table in models.items())
    registry = ModelRegistry(specs)
    for spec in specs:
        try:
            registry.backend(spec.backend)
        except UnknownBackend as exc:
            raise ModelsFileError(path, str(exc), spec.id, "backend") from None
    plugins = {name: _plugin(path, name, document.get(name)) for name in PLUGIN_TABLES}
    return Catalog(specs, plugins["enhancer"], plugins["moderator"], path)


def _spec(path: Path, model_id: str, table: object) -> ModelSpec:
    if not isinstance(table, dict):
        raise ModelsFileError(path, "must be a table [models.ID]", model_id)
    for key, kind in _REQUIRED.items():
        if key not in table:
            raise ModelsFileError(path, "is missing", model_id, key)
        value = table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ModelsFileError(path, f"must be {kind.__name__}, not {value!r}", model_id, key)
        if kind is int and isinstance(value, int) and value <= 0:
            raise ModelsFileError(path, f"must be positive, not {value}", model_id, key)
    extra = set(table) - set(_REQUIRED) - _OPTIONAL
    if extra:
        raise ModelsFileError(path, "is not a known field", model_id, sorted(extra)[0])
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise ModelsFileError(path, "must be a table", model_id, "options")
    return ModelSpec(
        model_id,
        fps=table["fps"],
        width=table["width"],
        height=table["height"],
        accepts_image=table["accepts_image"],
        backend=table["backend"],
        options=options,
    )


def _plugin(path: Path, name: str, table: object) -> PluginRef | None:
    if table is None:
        return None
    if not isinstance(table, dict) or not isinstance(table.get("backend"), str):
        raise ModelsFileError(path, f'[{name}] needs backend = "name or module:attr"', key=name)
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise ModelsFileError(path, "must be a table", key=f"{name}.options")
    return PluginRef(table["backend"], options)
