"""The README's contact sheet: one input frame through each built-in style.

    /tmp/venv/bin/python bench/contact_sheet.py [-o docs/styles.png]

Takes a frame of the demo clip (framewire.client.demo, the scene `framewire run` uses when no
video is given), runs it through the `lucy_2_rt` model with one prompt per style (and once with
a reference image and no prompt), and tiles the results 3 x 3 with their prompts as captions.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np

from framewire.models.base import Frame
from framewire.models.registry import ModelRegistry
from framewire.run.demo import frames

MODEL = "lucy_2_rt"
CELLS: list[tuple[str, bool]] = [
    ("anime", False),
    ("watercolor painting", False),
    ("pencil sketch", False),
    ("cyberpunk neon", False),
    ("thermal camera", False),
    ("film noir", False),
    ("sepia", False),
    ("", True),
]
"""(prompt, with the reference image); the input frame comes first."""

CELL_WIDTH = 426
CAPTION = 30


def reference_image(width: int, height: int) -> Frame:
    """A warm sunset palette to steer toward: the look a reference photo gives."""
    ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, axis=0)
    return np.asarray(cv2.applyColorMap(ramp, cv2.COLORMAP_AUTUMN), dtype=np.uint8)


def cell(image: Frame, caption: str) -> Frame:
    """A thumbnail with its caption underneath."""
    height = round(image.shape[0] * CELL_WIDTH / image.shape[1])
    thumb = cv2.resize(image, (CELL_WIDTH, height), interpolation=cv2.INTER_AREA)
    out = np.full((height + CAPTION, CELL_WIDTH, 3), 255, np.uint8)
    out[:height] = thumb
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(out, caption, (8, height + 21), font, 0.55, (30, 30, 30), 1, cv2.LINE_AA)
    return out


def sheet() -> Frame:
    registry = ModelRegistry.default()
    spec = registry.get(MODEL)
    frame = next(itertools.islice(frames(2.0, spec.width, spec.height, spec.fps), 25, None))
    tiles = [cell(frame, "input")]
    for prompt, with_image in CELLS:
        model = registry.create(MODEL)
        model.set_prompt(prompt)
        model.set_image(reference_image(spec.width, spec.height) if with_image else None)
        caption = f'"{prompt}"' if prompt else "no prompt + reference image"
        tiles.append(cell(model.process(frame), caption))
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)]
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="docs/styles.png")
    args = parser.parse_args()
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet(), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
