"""Per-frame cost of each built-in model look on this machine, and of the frame loop around it.

    /tmp/venv/bin/python bench/models.py --frames 60 --width 1280 --height 720 [--threads 1]
        [--backend NAME]

Runs every style the Stylizer knows (passthrough is the baseline) on a photo-like synthetic
scene that changes every frame (it pans), each model fed in the pixel format it works in (as
the server feeds it: the built-ins take yuv420p), and prints p50/p95 milliseconds per frame
(wall) and the mean CPU milliseconds per frame (what a loaded machine distorts least). The
media layer calls `process` from one worker thread per leg, so `--threads 1` (cv2's own thread
pool off) is the number that matters when legs share the cores. `--backend NAME` runs the same
prompts on another backend (a plugin's entry-point name) at lucy_2_rt's size instead.

A second table prints what the server spends per frame around the model at that size: the
decoded frame to the model's BGR input (same size, and scaled up from 320x240), the model's
output to the encoder (the frame loop's cv2 yuv420p conversion beside the encoder-side swscale
it replaces), and VP8 / H.264 encoding at the leg's bitrate policy, VP8 decoding.

A third table is the flicker of every style: the mean absolute frame-to-frame change (0-255) of
the output on (a) a still photograph with camera noise (sigma 2.5 per channel, new every frame)
and (b) the same photograph panning slowly (2 px a frame, noise too), next to the input's own;
the target is output <= 1.2 x input. The photograph is matplotlib's sample portrait
(`pip install matplotlib`; the synthetic scene otherwise).

A fourth table (`--tables diffusers`, needs `framewire[diffusers]`) times the diffusers backend
on the CPU with the tests' tiny random-weight components: ms per batch and per frame.

    python bench/models.py --tables flicker,diffusers
"""

from __future__ import annotations

import argparse
import fractions
import itertools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from av import VideoFrame
from av.video.reformatter import VideoReformatter

from framewire.media.codecs import (
    BitrateGovernor,
    BitratePolicy,
    GovernedH264Encoder,
    GovernedVp8Encoder,
)
from framewire.media.pixels import encodable
from framewire.models.base import Frame, FrameModel, pixel_format_of
from framewire.models.registry import ModelRegistry, is_shared
from framewire.models.stylizer import Stylizer

CASES: list[tuple[str, str, bool]] = [
    ("passthrough", "", False),
    ("lucy_2_rt", "", False),
    ("lucy_2_rt", "anime", False),
    ("lucy_2_rt", "pencil sketch", False),
    ("lucy_2_rt", "film noir", False),
    ("lucy_2_rt", "sepia", False),
    ("lucy_2_rt", "cyberpunk neon", False),
    ("lucy_2_rt", "thermal", False),
    ("lucy_2_rt", "watercolor", False),
    ("lucy_2_rt", "red", False),
    ("lucy_2_rt", "teal and orange", False),
    ("lucy_2_rt", "", True),
    ("lucy_2_rt", "anime", True),
    ("lucy_2_rt", "very anime, neon, purple", True),
]
"""(model id, prompt, with a reference image); an empty prompt gets the fallback grade."""


FLICKER_PROMPTS = [
    "anime",
    "watercolor",
    "pencil sketch",
    "cyberpunk neon",
    "thermal",
    "film noir",
    "sepia",
    "teal and orange",
    "",
]
"""One prompt per style, a tint, and the fallback grade."""


def scene(width: int, height: int) -> Frame:
    """A wide photo-like canvas (sky, textured ground, shapes) to pan across."""
    rng = np.random.default_rng(3)
    canvas_w = width * 2
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = np.array([200, 120, 40], np.float32) * (1 - ys) + np.array([235, 210, 170]) * ys
    canvas = np.clip(sky * np.ones((1, canvas_w, 1), np.float32), 0, 255).astype(np.uint8)
    horizon = height * 3 // 5
    ground = rng.normal(0.0, 18.0, (height - horizon, canvas_w)).astype(np.float32)
    canvas[horizon:] = np.clip(np.array([50, 140, 70]) + ground[..., None], 0, 255)
    for _ in range(40):
        centre = (int(rng.integers(0, canvas_w)), int(rng.integers(0, height)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(canvas, centre, int(rng.integers(10, height // 6)), colour, -1)
    return canvas


def pans(canvas: Frame, width: int, count: int = 16) -> list[Frame]:
    """`count` successive views of the canvas, 17 px apart: a slow pan."""
    return [np.ascontiguousarray(canvas[:, x : x + width]) for x in range(0, 17 * count, 17)]


def in_format(model: FrameModel, image: Frame) -> Frame:
    """A BGR image in the pixel format the model works in (what the server hands it)."""
    fmt = pixel_format_of(model)
    if fmt == "yuv420p":
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
    return np.ascontiguousarray(image[..., ::-1]) if fmt == "rgb24" else image


def as_bgr(model: FrameModel, frame: Frame) -> Frame:
    """A model's output in BGR, to compare outputs across pixel formats."""
    fmt = pixel_format_of(model)
    if fmt == "yuv420p":
        return np.asarray(cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)
    return np.ascontiguousarray(frame[..., ::-1]) if fmt == "rgb24" else frame


def measure(model: FrameModel, views: list[Frame], frames: int) -> list[float]:
    """Milliseconds per `process` call over `frames` successive pans, in the model's format."""
    inputs = [in_format(model, view) for view in views]
    return timed(lambda i: model.process(inputs[i % len(inputs)]), frames)


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 (NaN when there are none)."""
    if not values:
        return math.nan, math.nan
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * len(ordered)))]


def timed(step: Callable[[int], object], frames: int) -> list[float]:
    """Milliseconds per call of `step(i)` for `frames` calls, after 3 warm-up calls."""
    costs = []
    for i in range(frames + 3):
        start = time.perf_counter()
        step(i)
        if i >= 3:
            costs.append((time.perf_counter() - start) * 1000.0)
    return costs


def frame_loop_table(views: list[Frame], width: int, height: int, frames: int) -> None:
    """The frame loop's per-frame steps around the model, at the model's size."""
    decoded = [VideoFrame.from_ndarray(v, format="bgr24").reformat(format="yuv420p") for v in views]
    small = [frame.reformat(width=320, height=240) for frame in decoded]
    reformatter = VideoReformatter()
    policy = BitratePolicy.for_video(width, height, 20)
    vp8 = GovernedVp8Encoder(BitrateGovernor(policy))
    h264 = GovernedH264Encoder(BitrateGovernor(policy))
    encoded: list[JitterFrame] = []

    def to_model(frames: list[VideoFrame]) -> Callable[[int], object]:
        return lambda i: reformatter.reformat(
            frames[i % len(frames)], width=width, height=height, format="bgr24"
        ).to_ndarray()

    def to_encoder(i: int) -> VideoFrame:
        frame = encodable(views[i % len(views)])
        frame.pts, frame.time_base = i * 4500, fractions.Fraction(1, 90_000)
        return frame

    def vp8_encode(i: int) -> None:
        payloads, timestamp = vp8.encode(to_encoder(i))
        encoded.append(JitterFrame(b"".join(vp8_depayload(p) for p in payloads), timestamp))

    steps: list[tuple[str, Callable[[int], object]]] = [
        ("decoded -> model input (same size)", to_model(decoded)),
        ("decoded 320x240 -> model input", to_model(small)),
        ("model output -> yuv420p (cv2: frame loop)", lambda i: encodable(views[i % len(views)])),
        (
            "model output -> yuv420p (swscale: stock)",
            lambda i: VideoFrame.from_ndarray(views[i % len(views)], format="bgr24").reformat(
                format="yuv420p"
            ),
        ),
        (f"VP8 encode at {policy.target // 1000} kbps", vp8_encode),
        (f"H.264 encode at {policy.target // 1000} kbps", lambda i: h264.encode(to_encoder(i))),
    ]
    print(f"\nframe loop around the model, {width}x{height}")
    print(f"{'step':<44} {'p50 ms':>7} {'p95 ms':>7}")
    for name, step in steps:
        p50, p95 = percentiles(timed(step, frames))
        print(f"{name:<44} {p50:7.2f} {p95:7.2f}")
    decoder = Vp8Decoder()
    p50, p95 = percentiles(timed(lambda i: decoder.decode(encoded[i]), len(encoded) - 3))
    print(f"{'VP8 decode':<44} {p50:7.2f} {p95:7.2f}")


def photo(width: int, height: int, extra_width: int) -> Frame:
    """A real portrait (matplotlib's sample data), scaled to cover width + extra_width."""
    try:
        from matplotlib import cbook
    except ImportError:
        return scene(width + extra_width, height)[:, : width + extra_width]
    image = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    wide = width + extra_width
    tall = max(height, round(image.shape[0] * wide / image.shape[1]))
    scaled = cv2.resize(image, (wide, tall), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(scaled[:height])


def flicker(frames: list[Frame]) -> float:
    """Mean absolute change between successive frames, 0-255."""
    return float(
        np.mean([np.abs(a.astype(np.int16) - b).mean() for a, b in itertools.pairwise(frames)])
    )


def flicker_scenes(width: int, height: int, count: int) -> dict[str, list[Frame]]:
    rng = np.random.default_rng(0)
    canvas = photo(width, height, 2 * count)

    def with_noise(frame: Frame) -> Frame:
        return np.clip(frame + rng.normal(0.0, 2.5, frame.shape), 0, 255).astype(np.uint8)

    still = np.ascontiguousarray(canvas[:, :width])
    return {
        "still + noise": [with_noise(still) for _ in range(count)],
        "slow pan": [with_noise(canvas[:, 2 * i : 2 * i + width]) for i in range(count)],
    }


def flicker_table(registry: ModelRegistry, width: int, height: int, count: int) -> None:
    scenes = flicker_scenes(width, height, count)
    inputs = {name: flicker(frames) for name, frames in scenes.items()}
    print(f"\nflicker (mean |frame-to-frame change|, 0-255), {width}x{height}, {count} frames")
    header = "".join(f" {name:>15} {'x input':>8}" for name in scenes)
    print(f"{'prompt':<18}{header} {'<= 1.2x':>8}")
    cells = "".join(f" {inputs[name]:15.2f} {1.0:8.2f}" for name in scenes)
    print(f"{'(input)':<18}{cells}")
    for prompt in FLICKER_PROMPTS:
        ratios = []
        for name, frames in scenes.items():
            model = registry.create("lucy_2_rt")
            assert isinstance(model, Stylizer)
            model.set_prompt(prompt)
            outputs = [as_bgr(model, model.process(in_format(model, f))) for f in frames]
            ratios.append(flicker(outputs) / inputs[name])
        cells = "".join(
            f" {r * inputs[n]:15.2f} {r:8.2f}" for n, r in zip(scenes, ratios, strict=True)
        )
        verdict = "yes" if max(ratios) <= 1.2 else "NO"
        print(f"{prompt or '(grade)':<18}{cells} {verdict:>8}")


def diffusion_table(width: int, height: int, frames: int) -> None:
    """The diffusers backend on the CPU, tiny random weights (framewire.models.diffusion_tiny)."""
    import tempfile
    from pathlib import Path

    from framewire.models.base import ModelSpec
    from framewire.models.diffusion import DiffusionModel
    from framewire.models.diffusion_tiny import build

    with tempfile.TemporaryDirectory() as folder:
        model_dir, vae_dir = build(Path(folder))
        options = {"model": str(model_dir), "tiny_vae": str(vae_dir), "skip_threshold": 0.0}
        spec = ModelSpec("tiny", 10, width, height, False, "diffusers", options=options)
        model = DiffusionModel(spec)
        model.warm_up()
        views = pans(scene(width * 2, height), width)
        print(f"\ndiffusers backend, tiny random weights, CPU, {width}x{height}")
        print("(wall p50, and CPU time of all threads per call: the load-independent figure)")
        columns = ("wall ms/batch", "ms/frame", "CPU ms/batch", "ms/frame")
        print(f"{'batch':>5} " + " ".join(f"{c:>13}" for c in columns))
        rgb = [np.ascontiguousarray(v[..., ::-1]) for v in views]
        for size in (1, 2, 4):
            sessions = [model.condition(f"prompt {n}", None) for n in range(size)]

            def step(i: int, size: int = size, sessions: list = sessions) -> object:
                batch = [rgb[(i + n) % len(rgb)] for n in range(size)]
                return model.process_batch(batch, sessions)

            cpu_start = time.process_time()
            p50, _ = percentiles(timed(step, frames))
            cpu = (time.process_time() - cpu_start) * 1000.0 / (frames + 3)
            values = (p50, p50 / size, cpu, cpu / size)
            print(f"{size:>5} " + " ".join(f"{v:13.1f}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument(
        "--threads", type=int, default=1, help="cv2.setNumThreads; 0 = cv2's default"
    )
    parser.add_argument("--backend", help="run the lucy_2_rt cases on this model backend")
    parser.add_argument(
        "--tables",
        default="speed,loop,flicker",
        help="comma-separated: speed, loop, flicker, diffusers",
    )
    args = parser.parse_args()
    tables = set(args.tables.split(","))
    if args.threads:
        cv2.setNumThreads(args.threads)

    registry = ModelRegistry.default()
    if args.backend:
        registry.register(replace(registry.get("lucy_2_rt"), backend=args.backend))
    if "speed" in tables or "loop" in tables:
        speed_tables(registry, args, tables)
    if "flicker" in tables:
        flicker_table(registry, args.width, args.height, min(args.frames, 40))
    if "diffusers" in tables:
        diffusion_table(256, 256, min(args.frames, 20))


def speed_tables(registry: ModelRegistry, args: argparse.Namespace, tables: set[str]) -> None:
    """Per-style cost, and the frame loop's steps around the model."""
    canvas = scene(args.width, args.height)
    views = pans(canvas, args.width)
    grey = cv2.cvtColor(canvas[:, : args.width], cv2.COLOR_BGR2GRAY)
    reference = np.asarray(cv2.applyColorMap(grey, cv2.COLORMAP_AUTUMN), dtype=np.uint8)
    print(f"{args.width}x{args.height}, {args.frames} frames, cv2 threads {cv2.getNumThreads()}")
    if "speed" not in tables:
        frame_loop_table(views, args.width, args.height, args.frames)
        return
    columns = f"{'p50 ms':>7} {'p95 ms':>7} {'CPU ms':>7}"
    print(f"{'model':<12} {'prompt':<28} {'image':<6} {'format':<8} {columns}")
    for model_id, prompt, with_image in CASES:
        model = registry.create(model_id)
        assert not is_shared(model), "this table times v1 backends"
        model.set_prompt(prompt)
        model.set_image(reference if with_image else None)
        cpu_start = time.process_time()
        p50, p95 = percentiles(measure(model, views, args.frames))
        cpu = (time.process_time() - cpu_start) * 1000.0 / (args.frames + 3)
        label = (prompt or "(grade)") if model_id != "passthrough" else "-"
        image = "yes" if with_image else "no"
        fmt = pixel_format_of(model)
        print(f"{model_id:<12} {label:<28} {image:<6} {fmt:<8} {p50:7.1f} {p95:7.1f} {cpu:7.1f}")
    if "loop" in tables:
        frame_loop_table(views, args.width, args.height, args.frames)


if __name__ == "__main__":
    main()
