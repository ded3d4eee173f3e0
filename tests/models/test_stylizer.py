"""The Stylizer changes pixels the way each prompt says, steadily and without surprises."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from cv2.typing import MatLike

from framewire.models.base import Frame, ModelSpec
from framewire.models.stylizer import Stylizer

SPEC = ModelSpec("test", fps=20, width=640, height=360, accepts_image=True, backend="stylizer")
STYLES = ["anime", "watercolor", "pencil sketch", "cyberpunk", "thermal", "noir", "sepia"]


def stylize(frame: Frame, prompt: str, image: Frame | None = None) -> Frame:
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    model.set_image(image)
    return model.process(frame)


def u8(image: MatLike) -> Frame:
    """cv2's stubs type results loosely; our frames are uint8."""
    return np.asarray(image, dtype=np.uint8)


def hsv(frame: Frame) -> Frame:
    return u8(cv2.cvtColor(frame, cv2.COLOR_BGR2HSV))


def mean_saturation(frame: Frame) -> float:
    return float(hsv(frame)[..., 1].mean())


def edge_density(frame: Frame) -> float:
    return float((cv2.Canny(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 100, 200) > 0).mean())


def change(a: Frame, b: Frame) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def hue_distance(frame: Frame, target_bgr: tuple[int, int, int]) -> float:
    """Mean circular distance (OpenCV hue units, 0..90) of the frame's hues to the hue of
    `target_bgr`, each pixel weighted by its saturation."""
    pixels = hsv(frame).reshape(-1, 3).astype(np.float64)
    target = float(hsv(np.array([[target_bgr]], np.uint8))[0, 0, 0])
    delta = np.abs((pixels[:, 0] - target + 90.0) % 180.0 - 90.0)
    return float((delta * pixels[:, 1]).sum() / pixels[:, 1].sum())


def lab_distance(frame: Frame, reference: Frame) -> float:
    """How far apart two images' palettes are: Lab means and standard deviations."""
    a_mean, a_std = cv2.meanStdDev(cv2.cvtColor(frame, cv2.COLOR_BGR2Lab))
    b_mean, b_std = cv2.meanStdDev(cv2.cvtColor(reference, cv2.COLOR_BGR2Lab))
    return float(np.abs(a_mean - b_mean).sum() + np.abs(a_std - b_std).sum())


@pytest.mark.parametrize("prompt", ["film noir", "black and white", "monochrome", "greyscale"])
def test_noir_removes_colour(scene: Frame, prompt: str) -> None:
    assert mean_saturation(stylize(scene, prompt)) < 3.0


def test_noir_raises_contrast(scene: Frame) -> None:
    grey = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
    out = cv2.cvtColor(stylize(scene, "noir"), cv2.COLOR_BGR2GRAY)
    assert out.std() > grey.std()


@pytest.mark.parametrize("prompt", ["sepia", "vintage photo"])
def test_sepia_tones_everything_orange_brown(scene: Frame, prompt: str) -> None:
    pixels = hsv(stylize(scene, prompt)).reshape(-1, 3)
    toned = pixels[pixels[:, 1] > 25]
    assert len(toned) > 0.8 * len(pixels)
    in_band = (toned[:, 0] >= 5) & (toned[:, 0] <= 25)
    assert in_band.mean() > 0.95


def test_anime_outlines_region_borders_and_flattens_texture(scene: Frame) -> None:
    out = stylize(scene, "anime")
    grey_out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    grey_in = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
    assert edge_density(out) > 1.2 * edge_density(stylize(scene, "zxqv"))
    dark = grey_out < 50
    assert dark.mean() > 10 * (grey_in < 50).mean()
    # Ink along the borders of big regions: the blue card's left edge (x 75, y 280..330).
    card_border = dark[285:325, 68:82]
    assert card_border.any(axis=1).mean() > 0.6
    # Texture gets no lines and flattens: the grass is near one colour, without ink specks.
    grass = (slice(330, 355), slice(260, 440))
    assert grey_out[grass].std() < 0.5 * grey_in[grass].std()
    assert dark[grass].mean() < 0.01


def test_anime_makes_colours_vivid(scene: Frame) -> None:
    assert mean_saturation(stylize(scene, "cartoon")) > mean_saturation(scene) + 20


@pytest.mark.parametrize("prompt", ["pencil sketch", "charcoal drawing"])
def test_sketch_is_grey_strokes_on_white_paper(scene: Frame, prompt: str) -> None:
    out = stylize(scene, prompt)
    assert mean_saturation(out) < 20
    assert np.median(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)) > 200
    assert edge_density(out) > 1.2 * edge_density(stylize(scene, "zxqv"))


def test_cyberpunk_splits_hues_into_magenta_and_cyan(scene: Frame) -> None:
    pixels = hsv(stylize(scene, "cyberpunk")).reshape(-1, 3)
    coloured = pixels[pixels[:, 1] > 60]
    hue = coloured[:, 0].astype(np.int16)
    magenta = np.abs(hue - 150) <= 20
    cyan = np.abs(hue - 90) <= 20
    assert len(coloured) > 0.8 * len(pixels)
    assert (magenta | cyan).mean() > 0.85
    assert magenta.mean() > 0.1 and cyan.mean() > 0.1


def test_thermal_paints_with_a_heat_colour_map(scene: Frame) -> None:
    out = stylize(scene, "thermal camera").reshape(-1, 1, 3).astype(np.int16)
    colour_map = cv2.applyColorMap(np.arange(256, dtype=np.uint8), cv2.COLORMAP_INFERNO)
    palette = colour_map.reshape(1, 256, 3).astype(np.int16)
    nearest = np.abs(out[::50] - palette).sum(axis=2).min(axis=1)
    before = np.abs(scene.reshape(-1, 1, 3)[::50] - palette).sum(axis=2).min(axis=1)
    assert np.median(nearest) < 0.25 * np.median(before)


def test_thermal_maps_brightness_to_heat(scene: Frame) -> None:
    out = cv2.cvtColor(stylize(scene, "thermal"), cv2.COLOR_BGR2GRAY).astype(np.float64)
    grey = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY).astype(np.float64)
    assert np.corrcoef(out.ravel(), grey.ravel())[0, 1] > 0.8


def test_watercolor_washes_and_softens(scene: Frame) -> None:
    out = stylize(scene, "watercolour painting")
    grey_in = cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY)
    grey_out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    assert grey_out.mean() > grey_in.mean()
    detail_in = cv2.Laplacian(grey_in, cv2.CV_32F).var()
    assert cv2.Laplacian(grey_out, cv2.CV_32F).var() < 0.2 * detail_in
    assert mean_saturation(out) > 0.6 * mean_saturation(scene)


COLOURS = {
    "red": (0, 0, 255),
    "green": (0, 255, 0),
    "blue": (255, 0, 0),
    "purple": (200, 0, 140),
    "orange": (0, 128, 255),
    "yellow": (0, 255, 255),
    "pink": (180, 105, 255),
    "teal": (128, 128, 0),
    "gold": (0, 200, 255),
}


@pytest.mark.parametrize("colour", COLOURS)
def test_named_colour_moves_hue_toward_it(scene: Frame, colour: str) -> None:
    target = COLOURS[colour]
    assert hue_distance(stylize(scene, colour), target) < hue_distance(scene, target) - 5


def test_red_and_blue_tints_move_the_red_blue_balance_apart(scene: Frame) -> None:
    def red_blue(frame: Frame) -> float:
        return float(frame[..., 2].mean() / frame[..., 0].mean())

    assert red_blue(stylize(scene, "red")) > 1.3 * red_blue(scene)
    assert red_blue(stylize(scene, "blue")) < 0.8 * red_blue(scene)


@pytest.mark.parametrize(
    "style", ["anime", "watercolor", "cyberpunk", "thermal", "noir", "sepia", "red", "zxqv"]
)
def test_strength_words_scale_the_change(scene: Frame, style: str) -> None:
    changes = [
        change(stylize(scene, f"{word} {style}".strip()), scene)
        for word in ("slightly", "", "very", "extremely")
    ]
    assert changes == sorted(changes)
    assert changes[0] < 0.8 * changes[1] and changes[1] < changes[3]


def test_strength_words_darken_sketch_strokes(scene: Frame) -> None:
    def ink(frame: Frame) -> float:
        return float(255 - cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).mean())

    inks = [ink(stylize(scene, f"{word} sketch")) for word in ("slightly", "a", "extremely")]
    assert inks[1] < inks[2]
    assert mean_saturation(stylize(scene, "slightly sketch")) > mean_saturation(
        stylize(scene, "sketch")
    )


def test_reference_image_pulls_the_palette_toward_it(scene: Frame) -> None:
    reference = u8(cv2.applyColorMap(cv2.cvtColor(scene, cv2.COLOR_BGR2GRAY), cv2.COLORMAP_AUTUMN))
    for prompt in ("", "anime", "watercolor"):
        plain = stylize(scene, prompt)
        steered = stylize(scene, prompt, image=reference)
        assert lab_distance(steered, reference) < 0.6 * lab_distance(plain, reference)


def test_clearing_the_reference_image_restores_the_prompt_look(scene: Frame) -> None:
    model = Stylizer(SPEC)
    model.set_prompt("sepia")
    plain = model.process(scene)
    model.set_image(np.full((50, 80, 3), (200, 30, 30), np.uint8))
    assert not np.array_equal(model.process(scene), plain)
    model.set_image(None)
    assert np.array_equal(model.process(scene), plain)


def test_models_without_reference_images_ignore_them(scene: Frame) -> None:
    spec = ModelSpec(
        "mirage", fps=25, width=640, height=360, accepts_image=False, backend="stylizer"
    )
    model = Stylizer(spec)
    model.set_prompt("anime")
    plain = model.process(scene)
    model.set_image(np.full((50, 80, 3), (200, 30, 30), np.uint8))
    assert np.array_equal(model.process(scene), plain)


@pytest.mark.parametrize("prompt", ["", "zxqv", "red and gold", *STYLES])
def test_same_frame_gives_identical_output(scene: Frame, prompt: str) -> None:
    """No randomness per frame: a still camera gives a still picture."""
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    model.set_image(scene[::-1])
    first = model.process(scene.copy())
    second = model.process(scene.copy())
    assert np.array_equal(first, second)
    assert np.array_equal(first, stylize(scene, prompt, image=scene[::-1]))


def test_unknown_words_give_a_mild_grade(scene: Frame) -> None:
    out = stylize(scene, "a quietly flurbing zxqv, 42!!")
    assert 1.0 < change(out, scene) < 12.0


def test_empty_prompt_is_the_mild_grade(scene: Frame) -> None:
    assert np.array_equal(stylize(scene, ""), stylize(scene, "zxqv"))


@pytest.mark.parametrize("prompt", ["zxqv", "very anime, neon, purple", "sepia sketch", *STYLES])
@pytest.mark.parametrize("size", [(1280, 704), (333, 181), (16, 9)])
def test_output_keeps_shape_and_dtype(prompt: str, size: tuple[int, int]) -> None:
    width, height = size
    ramp = cv2.resize(np.arange(256, dtype=np.uint8).reshape(16, 16), (width, height))
    frame = u8(cv2.applyColorMap(ramp, cv2.COLORMAP_JET))
    out = stylize(frame, prompt, image=frame)
    assert out.shape == frame.shape and out.dtype == np.uint8


def test_input_frame_is_not_modified(scene: Frame) -> None:
    frame = scene.copy()
    for prompt in ["zxqv", *STYLES]:
        stylize(frame, prompt, image=scene)
    assert np.array_equal(frame, scene)


def test_prompt_changes_apply_whole_between_frames(scene: Frame) -> None:
    """`process` in a worker thread always sees one prompt's look, never a mix."""
    small = u8(cv2.resize(scene, (160, 90)))
    expected = [stylize(small, "noir"), stylize(small, "thermal")]
    model = Stylizer(SPEC)
    model.set_prompt("noir")
    outputs: list[Frame] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            outputs.append(model.process(small))

    thread = threading.Thread(target=worker)
    thread.start()
    for i in range(200):
        model.set_prompt("thermal" if i % 2 == 0 else "noir")
    stop.set()
    thread.join()
    assert outputs
    assert all(any(np.array_equal(o, e) for e in expected) for o in outputs)


def to_yuv(frame: Frame) -> Frame:
    return u8(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420))


def to_bgr(frame: Frame) -> Frame:
    return u8(cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420))


def test_even_sizes_take_the_decoders_yuv420p_and_odd_sizes_bgr() -> None:
    assert Stylizer(SPEC).pixel_format == "yuv420p"
    odd = ModelSpec("odd", fps=20, width=333, height=181, accepts_image=True, backend="stylizer")
    assert Stylizer(odd).pixel_format == "bgr24"


@pytest.mark.parametrize(
    "prompt",
    ["", "zxqv", "slightly noir", "red and gold", "sepia red", "very anime, neon", *STYLES],
)
@pytest.mark.parametrize("with_image", [False, True])
def test_a_yuv420p_frame_gets_the_same_look_as_a_bgr_one(
    scene: Frame, prompt: str, with_image: bool
) -> None:
    """The server hands the model the decoder's yuv420p; what comes back must be the look the
    BGR path gives, as the encoder would carry it (to within rounding and chroma blocks: the
    structural looks see the frame's chroma at half resolution, and an outline may move by a
    pixel)."""
    image = scene[::-1] if with_image else None
    model = Stylizer(SPEC)
    model.set_prompt(prompt)
    model.set_image(image)
    frame = to_yuv(scene)
    untouched = frame.copy()
    out = model.process(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(frame, untouched)
    expected = to_bgr(to_yuv(stylize(scene, prompt, image)))
    difference = np.abs(to_bgr(out).astype(np.int16) - expected)
    assert difference.mean() < 3.0
    assert np.percentile(difference, 95) < 12


def test_tone_looks_on_yuv420p_keep_their_character(scene: Frame) -> None:
    frame = to_yuv(scene)
    for prompt, check in (
        ("film noir", lambda out: mean_saturation(out) < 3.0),
        ("sepia", lambda out: 5 <= np.median(hsv(out)[..., 0]) <= 25),
        ("red", lambda out: out[..., 2].mean() > 1.3 * out[..., 0].mean()),
    ):
        model = Stylizer(SPEC)
        model.set_prompt(prompt)
        assert check(to_bgr(model.process(frame))), prompt
