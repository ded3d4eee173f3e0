"""`framewire run` as a user runs it: a subprocess, against a running server and embedded."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import av
import cv2

from framewire.run import demo
from tests.client.support import read_video
from tests.servers import API_KEY, framewire
from tests.test_session_flow import saturation

FRAMEWIRE = str(Path(sys.executable).parent / "framewire")


async def framewire_run(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        FRAMEWIRE,
        "run",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def row(table: str, name: str) -> str:
    found = re.search(rf"^\s+{re.escape(name)}\s{{2,}}(.+)$", table, re.MULTILINE)
    assert found, f"no {name!r} row in:\n{table}"
    return found.group(1)


async def test_run_against_a_server_writes_the_transformed_video_and_a_table(
    tmp_path: Path,
) -> None:
    clip = demo.write_clip(tmp_path / "in.mp4", seconds=1.5, width=640, height=360)
    output = tmp_path / "out.mp4"
    async with framewire() as server:
        code, table, errors = await framewire_run(
            *(str(clip), "-o", str(output), "--prompt", "black and white", "--marker"),
            *("--url", server.url, "--api-key", API_KEY),
        )
    assert code == 0, errors
    assert row(table, "frames in") == "30 sent"
    received = int(row(table, "frames out").split()[0])
    assert row(table, "frames out") == f"{received} received, {received} written"
    if received < 30:
        assert row(table, "frames skipped").startswith(
            f"{30 - received}: the model makes 20 fps at"
        )
    assert row(table, "enhanced prompt").startswith("black and white")
    latency = re.fullmatch(
        r"(\d+) / (\d+) ms  \((\d+) of (\d+) frames matched by marker\)",
        row(table, "round trip p50/p95"),
    )
    assert latency, row(table, "round trip p50/p95")
    p50, p95, matched, of = map(int, latency.groups())
    assert 0 < p50 <= p95 < 2000 and of == received and matched >= 0.8 * received
    generation = row(table, "generation")
    assert generation.endswith(" s, ended by the client")
    assert row(table, "credits").endswith("unlimited remaining")
    video = read_video(output)
    assert len(video.frames) == received >= 10
    with av.open(str(output)) as container:
        assert container.streams.video[0].base_rate == 20  # ffprobe's r_frame_rate: the model's
    # Billing stops within a second of the media (the clip's length, or the span its frames took
    # when a loaded machine streamed it slower than real time).
    assert float(generation.split()[0]) <= max(1.5, video.seconds) + 1.0
    assert video.sizes == {(1280, 720)}
    assert max(saturation(f) for f in video.frames) < 15


async def test_run_demo_on_an_embedded_server_writes_a_webm_and_a_still(tmp_path: Path) -> None:
    output, still = tmp_path / "demo.webm", tmp_path / "demo.png"
    code, table, errors = await framewire_run(
        *("--demo", "--duration", "1.5", "-o", str(output), "--still", str(still)),
        *("--model", "lucy_2_rt", "--prompt", "black and white"),
    )
    assert code == 0, errors
    assert "embedded server on http://127.0.0.1:" in errors
    assert (tmp_path / "demo-input.mp4").is_file()
    assert row(table, "model") == "lucy_2_rt (1280x720 @ 20 fps)"
    assert row(table, "round trip p50/p95") == "n/a (no --marker)"
    assert row(table, "output") == f"{output}  (still: {still})"
    video = read_video(output)
    assert video.codec == "vp8" and video.sizes == {(1280, 720)}
    assert len(video.frames) == int(row(table, "frames out").split()[0]) >= 10
    image = cv2.imread(str(still))
    assert image is not None and image.shape == (720, 1280, 3)
    assert saturation(image) < 15
