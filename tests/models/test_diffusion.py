"""The `diffusers` backend on the CPU with tiny random weights: the real loading code, the real
single-step img2img, and real sessions through the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from framewire.media.batching import BatchSlot
from framewire.models.base import ModelSpec
from framewire.models.diffusion import DiffusionModel, DiffusionSession
from framewire.models.diffusion_tiny import build
from tests.servers import framewire
from tests.sessions import open_session


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("tiny-diffusion"))


def spec_for(weights: tuple[Path, Path], **options: Any) -> ModelSpec:
    model, vae = weights
    return ModelSpec(
        "turbo",
        fps=10,
        width=128,
        height=96,
        accepts_image=True,
        backend="diffusers",
        options={"model": str(model), "tiny_vae": str(vae), **options},
    )


@pytest.fixture(scope="module")
def model(weights: tuple[Path, Path]) -> Iterator[DiffusionModel]:
    loaded = DiffusionModel(spec_for(weights, skip_threshold=0.0))
    loaded.warm_up()
    yield loaded


def camera(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (96, 128, 3), np.uint8)


def test_frames_come_out_at_the_model_size_and_deterministic(model: DiffusionModel) -> None:
    frames = [camera(1), camera(2)]
    first = model.process_batch(frames, [model.condition("a cat", None)] * 2)
    again = model.process_batch(frames, [model.condition("a cat", None)] * 2)
    assert [f.shape for f in first] == [(96, 128, 3)] * 2
    assert all(f.dtype == np.uint8 for f in first)
    assert not np.array_equal(first[0], first[1])  # each output follows its own input
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # no flicker


def test_a_prompt_changes_the_conditioning_and_the_picture(model: DiffusionModel) -> None:
    cat, sky = model.condition("a cat", None), model.condition("blue sky at night", None)
    assert float((cat.embeddings - sky.embeddings).abs().mean()) > 0.01
    assert model.condition("a cat", None).embeddings is cat.embeddings  # cached per prompt
    frame = camera(3)
    out_cat, out_sky = model.process_batch([frame, frame], [cat, sky])
    assert not np.array_equal(out_cat, out_sky)


def test_a_reference_image_conditions_the_frames(model: DiffusionModel) -> None:
    frame = camera(4)
    plain = model.condition("a cat", None)
    referenced = model.condition("a cat", np.full((200, 300, 3), (0, 0, 255), np.uint8))
    assert referenced.reference is not None and plain.reference is None
    out_plain, out_ref = model.process_batch([frame, frame], [plain, referenced])
    assert not np.array_equal(out_plain, out_ref)


def test_near_identical_frames_skip_the_model(weights: tuple[Path, Path]) -> None:
    skipping = DiffusionModel(spec_for(weights, skip_threshold=2.0))
    skipping.warm_up()
    session: DiffusionSession = skipping.condition("a cat", None)
    frame = camera(5)
    first = skipping.process_batch([frame], [session])[0]
    noisy = np.clip(frame.astype(np.int16) + 1, 0, 255).astype(np.uint8)  # sensor noise
    again = skipping.process_batch([noisy], [session])[0]
    assert session.runs == 1 and again is first
    moved = np.roll(frame, 16, axis=1)
    skipping.process_batch([moved], [session])
    assert session.runs == 2


def test_bad_options_fail_clearly(weights: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"options\.model"):
        DiffusionModel(ModelSpec("t", 10, 64, 64, False, "diffusers"))
    with pytest.raises(ValueError, match="unknown options"):
        DiffusionModel(spec_for(weights, steps=4))
    missing = DiffusionModel(spec_for((tmp_path / "none", tmp_path / "none")))
    with pytest.raises(OSError):
        missing.warm_up()  # nothing is downloaded: a missing directory is an error


MODELS = """
[models.turbo]
backend = "diffusers"
width = 128
height = 96
fps = 8
accepts_image = true
[models.turbo.options]
model = "{model}"
tiny_vae = "{vae}"
"""


async def test_two_sessions_run_through_one_batched_diffusers_model(
    weights: tuple[Path, Path], tmp_path: Path
) -> None:
    path = tmp_path / "models.toml"
    path.write_text(MODELS.format(model=weights[0], vae=weights[1]))
    async with framewire(models=path) as server, server.client() as http:
        legs = server.app.state.legs
        first = await open_session(server, http, model="turbo", prompt="a cat")
        second = await open_session(server, http, model="turbo", prompt="a dog")
        try:
            model = legs.runner("turbo").model
            assert isinstance(model, DiffusionModel)
            sizes: list[int] = []
            original = model.pipe.img2img

            def spy(frames: Any, embeddings: Any, references: Any) -> Any:
                sizes.append(len(frames))
                return original(frames, embeddings, references)

            model.pipe.img2img = spy
            frame = await first.peer.wait_frames(3, timeout=60)
            await second.peer.wait_frames(3, timeout=60)
            assert frame.shape == (96, 128, 3)
            for _ in range(40):  # both sessions' frames in one UNet call, soon
                if 2 in sizes:
                    break
                await first.peer.wait_frames(1, timeout=60)
            assert 2 in sizes and max(sizes) == 2

            slots = [leg.model for leg in legs.all()]
            assert all(isinstance(slot, BatchSlot) for slot in slots)
            before = {id(slot): slot.conditioning.value.embeddings for slot in slots}
            changed = await http.post(
                f"{first.url}/prompt", json={"prompt": "a red house", "enhance_prompt": False}
            )
            assert changed.status_code == 200
            await first.peer.wait_frames(3, timeout=60)
            after = {id(slot): slot.conditioning.value.embeddings for slot in slots}
            moved = [not bool((before[k] == after[k]).all()) for k in before]
            assert sorted(moved) == [False, True]  # only that session's conditioning changed
        finally:
            await first.close()
            await second.close()
