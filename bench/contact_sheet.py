"""The README's contact sheet: one input frame through each built-in style.

    python bench/contact_sheet.py [-o docs/styles.png]
    python bench/contact_sheet.py --photo [-o docs/styles_photo.jpg]

Takes a frame of the demo clip (framewire.client.demo, the scene `framewire run` uses when no
video is given), runs it through the `lucy_2_rt` model with one prompt per style (and once with
a reference image and no prompt), and tiles the results 3 x 3 with their prompts as captions.
`--photo` does the same on a real photograph, matplotlib's sample portrait (Grace Hopper;
`pip install matplotlib`), at 720 pixels high: how the styles read on a face.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np

from framewire.models.base import Frame
from framewire.models.registry import ModelRegistry
from framewire.models.stylizer import Stylizer
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


def portrait(height: int) -> Frame:
    from matplotlib import cbook

    image = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    width = round(image.shape[1] * height / image.shape[0]) // 2 * 2
    return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC))


def sheet(use_photo: bool) -> Frame:
    registry = ModelRegistry.default()
    spec = registry.get(MODEL)
    if use_photo:
        frame = portrait(spec.height)
    else:
        frame = next(itertools.islice(frames(2.0, spec.width, spec.height, spec.fps), 25, None))
    tiles = [cell(frame, "input")]
    for prompt, with_image in CELLS:
        model = registry.create(MODEL)
        assert isinstance(model, Stylizer)
        model.set_prompt(prompt)
        model.set_image(reference_image(spec.width, spec.height) if with_image else None)
        caption = f'"{prompt}"' if prompt else "no prompt + reference image"
        tiles.append(cell(model.process(frame), caption))
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)]
    return np.vstack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", action="store_true", help="a real portrait as the input")
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    path = Path(args.output or ("docs/styles_photo.jpg" if args.photo else "docs/styles.png"))
    path.parent.mkdir(parents=True, exist_ok=True)
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    quality = [cv2.IMWRITE_JPEG_QUALITY, 85] if jpeg else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    cv2.imwrite(str(path), sheet(args.photo), quality)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
