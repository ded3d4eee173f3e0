"""The model registry: the shipped ids, lookup errors, and backends as plugins."""

from __future__ import annotations

import numpy as np
import pytest

from framewire.models.base import Frame, FrameModel, ModelSpec
from framewire.models.passthrough import Passthrough
from framewire.models.registry import (
    ENTRY_POINT_GROUP,
    ModelRegistry,
    UnknownBackend,
    UnknownModel,
)
from framewire.models.stylizer import Stylizer

SHIPPED = {
    "lucy_2_rt": (1280, 720, 20, True, "stylizer"),
    "mirage": (1280, 704, 25, False, "stylizer"),
    "mirage_v2": (1280, 704, 22, False, "stylizer"),
    "lucy_v2v_720p_rt": (1280, 704, 25, True, "stylizer"),
    "passthrough": (640, 480, 30, True, "passthrough"),
}


def test_default_registry_ships_the_seed_models() -> None:
    specs = {
        s.id: (s.width, s.height, s.fps, s.accepts_image, s.backend)
        for s in ModelRegistry.default().specs()
    }
    assert specs == SHIPPED


def test_unknown_model_id_raises_unknown_model() -> None:
    registry = ModelRegistry.default()
    with pytest.raises(UnknownModel) as raised:
        registry.get("lucy_9000")
    assert isinstance(raised.value, KeyError)
    assert raised.value.model_id == "lucy_9000"
    assert "lucy_9000" in str(raised.value)
    with pytest.raises(UnknownModel):
        registry.create("lucy_9000")


@pytest.mark.parametrize("model_id", list(SHIPPED))
def test_create_returns_a_working_model(scene: Frame, model_id: str) -> None:
    model = ModelRegistry.default().create(model_id)
    model.set_prompt("anime")
    model.set_image(scene)
    out = model.process(scene)
    assert out.shape == scene.shape and out.dtype == np.uint8


def test_stylizer_models_transform_and_passthrough_does_not(scene: Frame) -> None:
    registry = ModelRegistry.default()
    assert isinstance(registry.create("lucy_2_rt"), Stylizer)
    assert not np.array_equal(registry.create("mirage").process(scene), scene)
    passthrough = registry.create("passthrough")
    assert isinstance(passthrough, Passthrough)
    passthrough.set_prompt("noir")
    assert passthrough.process(scene) is scene


def test_each_create_is_a_fresh_instance() -> None:
    registry = ModelRegistry.default()
    assert registry.create("mirage") is not registry.create("mirage")


def test_built_in_backends_are_installed_as_entry_points() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert names["stylizer"] is Stylizer and names["passthrough"] is Passthrough


class Inverter:
    """A stand-in GPU backend: inverts every frame."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def set_prompt(self, prompt: str) -> None: ...

    def set_image(self, image: Frame | None) -> None: ...

    def process(self, frame: Frame) -> Frame:
        return 255 - frame


def test_a_runtime_registered_backend_is_used(scene: Frame) -> None:
    registry = ModelRegistry.default()
    spec = ModelSpec(
        "inverted", fps=30, width=640, height=360, accepts_image=False, backend="inverter"
    )
    registry.register(spec, Inverter)
    model: FrameModel = registry.create("inverted")
    assert isinstance(model, Inverter) and model.spec == spec
    assert np.array_equal(model.process(scene), 255 - scene)
    assert registry.get("inverted") == spec


def test_a_registered_spec_may_reuse_a_built_in_backend() -> None:
    registry = ModelRegistry.default()
    registry.register(
        ModelSpec("tiny", fps=10, width=320, height=180, accepts_image=True, backend="stylizer")
    )
    model = registry.create("tiny")
    assert isinstance(model, Stylizer) and model.spec.width == 320


def test_registries_are_independent() -> None:
    registry = ModelRegistry.default()
    registry.register(ModelSpec("extra", 10, 64, 64, False, "passthrough"))
    with pytest.raises(UnknownModel):
        ModelRegistry.default().get("extra")


def test_a_spec_naming_a_missing_backend_fails_on_create() -> None:
    registry = ModelRegistry()
    registry.register(ModelSpec("ghost", 10, 64, 64, False, "no_such_backend"))
    with pytest.raises(UnknownBackend, match="no_such_backend"):
        registry.create("ghost")


def test_specs_must_have_a_positive_size_and_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        ModelRegistry().register(ModelSpec("bad", 0, 64, 64, False, "passthrough"))


@pytest.mark.parametrize("declared", ["nv12", "BGR", 24])
def test_a_model_declaring_an_unknown_pixel_format_fails_on_create(declared: object) -> None:
    class Odd(Inverter):
        pixel_format = declared

    registry = ModelRegistry()
    registry.register(ModelSpec("odd", 10, 64, 64, False, "odd"), Odd)
    with pytest.raises(ValueError, match="pixel_format"):
        registry.create("odd")
