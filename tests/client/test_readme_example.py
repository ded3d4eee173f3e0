"""The README's Python client example, run verbatim on the 10 s demo clip: it ends by itself
once the clip is through, and bills about the clip's length, not an inactivity timeout."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from framewire.run import demo
from tests.client.support import read_video
from tests.servers import API_KEY, framewire

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Python client and `framewire run`") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "no python example in the README's client section"
    return found.group(1)


async def test_the_readme_example_ends_with_the_clip_and_bills_its_length(tmp_path: Path) -> None:
    demo.write_clip(tmp_path / "in.mp4")
    reference = np.zeros((64, 64, 3), np.uint8)
    reference[:, :32] = (255, 0, 0)
    assert cv2.imwrite(str(tmp_path / "reference.png"), reference)
    (tmp_path / "example.py").write_text(readme_example())
    async with framewire() as server:
        env = {**os.environ, "FRAMEWIRE_URL": server.url, "FRAMEWIRE_API_KEY": API_KEY}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "example.py",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        # 10 s of clip; the old example waited for the 30 s inactivity timeout instead.
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    seconds, charged, reason = stdout.decode().split()
    assert reason == "disconnect"
    # It did not end early: the output spans the whole clip (frames may be skipped when the
    # machine is loaded, the span may not)...
    video = read_video(tmp_path / "out.mp4")
    assert video.seconds > demo.SECONDS - 1.0
    assert len(video.frames) >= 10
    # ...and billing stopped within a second of the media: the clip's length, or the span the
    # frames actually took when a loaded machine streamed it slower than real time.
    assert 0 < float(seconds) <= max(demo.SECONDS, video.seconds) + 1.0, video.seconds
    assert float(charged) == float(seconds)
