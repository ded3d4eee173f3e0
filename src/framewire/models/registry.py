"""Model ids -> specs, and specs -> running FrameModels through pluggable backends.

Backends are found by name: first those registered on this registry at runtime, then the
`framewire.models` entry-point group (how a GPU package plugs in without touching the server),
then the built-in CPU classes, so a source checkout without installed metadata still works.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import cast

from framewire.models.base import FrameModel, ModelBackend, ModelSpec
from framewire.models.passthrough import Passthrough
from framewire.models.stylizer import Stylizer

ENTRY_POINT_GROUP = "framewire.models"

_BUILT_IN: dict[str, ModelBackend] = {"stylizer": Stylizer, "passthrough": Passthrough}

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

    def __init__(self, backend: str) -> None:
        super().__init__(f"no model backend named {backend!r}")
        self.backend = backend


class ModelRegistry:
    """The model ids one app serves. Build one per app (no module-level registry)."""

    def __init__(self, specs: Iterable[ModelSpec] = ()) -> None:
        self._specs: dict[str, ModelSpec] = {}
        self._backends: dict[str, ModelBackend] = {}
        for spec in specs:
            self.register(spec)

    @classmethod
    def default(cls) -> ModelRegistry:
        """The seed's model ids on the built-in CPU backends, plus `passthrough`."""
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

    def create(self, model_id: str) -> FrameModel:
        """A fresh model instance for one leg."""
        spec = self.get(model_id)
        return self._backend(spec.backend)(spec)

    def _backend(self, name: str) -> ModelBackend:
        if name in self._backends:
            return self._backends[name]
        for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=name):
            backend = cast(ModelBackend, entry_point.load())
            self._backends[name] = backend
            return backend
        if name in _BUILT_IN:
            return _BUILT_IN[name]
        raise UnknownBackend(name)
