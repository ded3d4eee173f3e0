"""Model ids -> specs, and specs -> running FrameModels through pluggable backends.

Backends are found by name: first those registered on this registry at runtime, then the
`framewire.models` entry-point group (how a GPU package plugs in without touching the server),
then the built-in CPU classes, so a source checkout without installed metadata still works; a
name `package.module:attr` is imported directly (a backend declared only in a models file).

A backend whose class has `shared = True` follows contract v2 (`SharedModel`): the registry makes
one instance per model id and hands the same one to every leg.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import cast

from framewire.models.base import FrameModel, ModelBackend, ModelSpec, SharedModel, pixel_format_of
from framewire.models.diffusion import DiffusionModel
from framewire.models.passthrough import Passthrough
from framewire.models.stylizer import Stylizer
from framewire.plugins import PluginNotFound, load_plugin

ENTRY_POINT_GROUP = "framewire.models"

_BUILT_IN: dict[str, ModelBackend] = {
    "stylizer": Stylizer,
    "passthrough": Passthrough,
    "diffusers": DiffusionModel,
}

DEFAULT_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("lucy_2_rt", fps=20, width=1280, height=720, accepts_image=True, backend="stylizer"),
    ModelSpec("mirage", fps=25, width=1280, height=704, accepts_image=False, backend="stylizer"),
    ModelSpec("mirage_v2", fps=22, width=1280, height=704, accepts_image=False, backend="stylizer"),
    ModelSpec(
        "lucy_v2v_720p_rt", fps=25, width=1280, height=704, accepts_image=True, backend="stylizer"
    ),
    ModelSpec(
        "passthrough", fps=30, width=640, height=480, accepts_image=True, backend="passthrough"
    ),
)


class UnknownModel(KeyError):
    """No spec is registered under this model id; the API maps it to 422."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.model_id = model_id

    def __str__(self) -> str:
        return f"unknown model {self.model_id!r}"


class UnknownBackend(LookupError):
    """A spec names a backend that is neither registered, installed, nor built in."""

    def __init__(self, backend: str, reason: str = "") -> None:
        super().__init__(f"no model backend named {backend!r}" + (f" ({reason})" if reason else ""))
        self.backend = backend


def is_shared(backend: object) -> bool:
    """Whether a backend (or an instance it made) declares contract v2."""
    return getattr(backend, "shared", False) is True


class ModelRegistry:
    """The model ids one app serves. Build one per app (no module-level registry)."""

    def __init__(self, specs: Iterable[ModelSpec] = ()) -> None:
        self._specs: dict[str, ModelSpec] = {}
        self._backends: dict[str, ModelBackend] = {}
        self._shared: dict[str, SharedModel] = {}
        self._lock = threading.Lock()
        for spec in specs:
            self.register(spec)

    @classmethod
    def default(cls) -> ModelRegistry:
        """The documented model ids on the built-in CPU backends, plus `passthrough`."""
        return cls(DEFAULT_SPECS)

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def get(self, model_id: str) -> ModelSpec:
        try:
            return self._specs[model_id]
        except KeyError:
            raise UnknownModel(model_id) from None

    def register(self, spec: ModelSpec, backend: ModelBackend | None = None) -> None:
        """Add or replace `spec`. A `backend` given here becomes this registry's implementation
        of the name `spec.backend`, for every spec that names it."""
        if spec.fps <= 0 or spec.width <= 0 or spec.height <= 0:
            raise ValueError(f"model {spec.id!r}: fps, width and height must be positive")
        if backend is not None:
            self._backends[spec.backend] = backend
        self._specs[spec.id] = spec

    def create(self, model_id: str) -> FrameModel | SharedModel:
        """The model for one leg: a fresh v1 instance, or the model id's one shared (v2)
        instance, made and warmed up on first use. May block (loading weights): call it from a
        worker thread. Raises ValueError for a model whose `pixel_format` the media layer lacks."""
        spec = self.get(model_id)
        backend = self.backend(spec.backend)
        if not is_shared(backend):
            made = backend(spec)
            pixel_format_of(made)
            return made
        with self._lock:
            if model_id not in self._shared:
                model = cast(SharedModel, backend(spec))
                pixel_format_of(model)
                model.warm_up()
                self._shared[model_id] = model
            return self._shared[model_id]

    def warm_up(self) -> None:
        """Make and warm up every shared model now (startup), so the first session waits for
        nothing and a model that cannot load stops the server before it serves."""
        for spec in self.specs():
            if is_shared(self.backend(spec.backend)):
                self.create(spec.id)

    def backend(self, name: str) -> ModelBackend:
        """The backend called `name`; raises UnknownBackend."""
        if name in self._backends:
            return self._backends[name]
        try:
            found = load_plugin(name, ENTRY_POINT_GROUP, _BUILT_IN)
        except PluginNotFound as exc:
            raise UnknownBackend(name, exc.reason) from None
        if not callable(found):
            raise UnknownBackend(name, "it is not callable")
        backend = cast(ModelBackend, found)
        self._backends[name] = backend
        return backend
