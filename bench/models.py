"""Per-frame cost of each built-in model look on this machine.

    /tmp/venv/bin/python bench/models.py --frames 60 --width 1280 --height 720 [--threads 1]

Runs every style the Stylizer knows (passthrough is the baseline) on a photo-like synthetic
scene that changes every frame (it pans), and prints p50/p95 milliseconds per frame. The
media layer calls `process` from one worker thread per leg, so `--threads 1` (cv2's own thread
pool off) is the number that matters when legs share the cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from framewire.models.base import Frame, FrameModel
from framewire.models.registry import ModelRegistry

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


def measure(model: FrameModel, canvas: Frame, width: int, frames: int) -> list[float]:
    """Milliseconds per `process` call over `frames` successive pans of the canvas."""
    costs = []
    for i in range(frames + 3):
        x = (i * 17) % (canvas.shape[1] - width)
        frame = np.ascontiguousarray(canvas[:, x : x + width])
        start = time.perf_counter()
        model.process(frame)
        if i >= 3:
            costs.append((time.perf_counter() - start) * 1000.0)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument(
        "--threads", type=int, default=1, help="cv2.setNumThreads; 0 = cv2's default"
    )
    args = parser.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)

    registry = ModelRegistry.default()
    canvas = scene(args.width, args.height)
    grey = cv2.cvtColor(canvas[:, : args.width], cv2.COLOR_BGR2GRAY)
    reference = np.asarray(cv2.applyColorMap(grey, cv2.COLORMAP_AUTUMN), dtype=np.uint8)
    print(f"{args.width}x{args.height}, {args.frames} frames, cv2 threads {cv2.getNumThreads()}")
    print(f"{'model':<12} {'prompt':<28} {'image':<6} {'p50 ms':>7} {'p95 ms':>7}")
    for model_id, prompt, with_image in CASES:
        model = registry.create(model_id)
        model.set_prompt(prompt)
        model.set_image(reference if with_image else None)
        costs = sorted(measure(model, canvas, args.width, args.frames))
        p50 = statistics.median(costs)
        p95 = costs[min(len(costs) - 1, round(0.95 * (len(costs) - 1)))]
        label = (prompt or "(grade)") if model_id != "passthrough" else "-"
        print(
            f"{model_id:<12} {label:<28} {'yes' if with_image else 'no':<6} {p50:7.1f} {p95:7.1f}"
        )


if __name__ == "__main__":
    main()
