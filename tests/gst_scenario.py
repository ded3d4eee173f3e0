"""GStreamer publishes over WHIP, an aiortc viewer watches over WHEP: run inside a network
namespace of its own holding a veth pair (libnice ignores loopback), as
`unshare -n` + tests/test_whip_gstreamer.py set it up. Prints one JSON line of measurements."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np

from framewire.models.base import ModelSpec
from framewire.models.registry import ModelRegistry
from tests.servers import API_KEY, framewire
from tests.test_session_flow import saturation
from tests.whip import Viewer

SERVER_ADDRESS = "10.99.0.1"
VIEWER_ADDRESS = "10.99.0.2"
CLIENT = Path(__file__).with_name("gst_whip_client.py")


def mean_bgr(image: np.ndarray) -> list[float]:
    return [round(float(v), 1) for v in image.reshape(-1, 3).mean(axis=0)]


async def published(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()
    if not line.startswith("published "):
        raise RuntimeError(f"GStreamer client said {line!r}")
    return line.split(" ", 1)[1]


async def main() -> dict[str, object]:
    registry = ModelRegistry.default()
    registry.register(ModelSpec("small_style", 20, 320, 240, False, "stylizer"))
    async with framewire(registry=registry, ice_interfaces=[SERVER_ADDRESS]) as server:
        client = await asyncio.create_subprocess_exec(
            "/usr/bin/python3",
            str(CLIENT),
            f"{server.url}/v1/whip/small_style",
            API_KEY,
            stdout=asyncio.subprocess.PIPE,
        )
        viewer = Viewer([VIEWER_ADDRESS])
        try:
            location = await published(client)
            async with server.client() as http:
                assert (await viewer.watch(http, location)).status_code == 201
                await viewer.wait_frames(20, timeout=60)
                assert viewer.last is not None
                plain, plain_saturation = mean_bgr(viewer.last), saturation(viewer.last)
                state = (await http.get(location)).json()
                changed = await http.post(
                    f"{location}/prompt",
                    json={"prompt": "black and white noir film", "enhance_prompt": False},
                )
                assert changed.status_code == 200
                await viewer.wait_frames(len(viewer.stamps) + 20, timeout=60)
                noir = max(saturation(image) for image in viewer.recent)
                return {
                    "plain_bgr": plain,
                    "plain_saturation": plain_saturation,
                    "noir_saturation": noir,
                    "frames": len(viewer.stamps),
                    "status": state["status"],
                    "frames_in": state["stats"]["frames_in"],
                }
        finally:
            await viewer.close()
            client.terminate()
            await client.wait()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
    sys.exit(0)
