"""The reference API's curl examples, as written (examples/seed_curl.sh), against framewire.

Only what must change changes: the base URL; the placeholders the examples leave for real values
(`rs_abc123`, the `"ice-1a2b3c"` ETag, the elided `...` SDP offer, `<base64-encoded image>`);
and the example candidate's private address becomes 127.0.0.1, as tests send nothing off the
machine. The ICE-restart example runs in tests/test_ice_restart.py once restarts exist there."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np

from tests.peers import ClientPeer
from tests.servers import API_KEY, framewire

EXAMPLES = Path(__file__).parent.parent / "examples" / "seed_curl.sh"
SDP_PLACEHOLDER = re.compile(r'"sdp": "v=0[^"]*\.\.\."')


def seed_commands() -> list[str]:
    text = EXAMPLES.read_text()
    return [block.strip() for block in text.split("\n\n") if block.startswith("curl ")]


async def run_curl(command: str) -> tuple[int, dict[str, str], str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command.replace("curl ", "curl -sS -D - ", 1),
        env={**os.environ, "DECART_API_KEY": API_KEY},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    head, _, body = out.decode().replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return status, headers, body


async def test_the_seed_curl_examples_work_with_the_base_url_swapped() -> None:
    commands = seed_commands()
    create, trickle, prompt, image, restart, delete, get = commands
    assert 'If-Match: "*"' in restart
    peer = ClientPeer()
    offer = await peer.offer()
    ok, png = cv2.imencode(".png", np.full((32, 32, 3), (40, 160, 220), np.uint8))
    assert ok
    async with framewire() as server:

        def swap(command: str, session_id: str = "", etag: str = "") -> str:
            command = command.replace("https://api.decart.ai", server.url)
            real = '"sdp": ' + json.dumps(offer)
            command = SDP_PLACEHOLDER.sub(lambda _: real, command)
            command = command.replace("rs_abc123", session_id)
            command = command.replace('"ice-1a2b3c"', etag)
            command = command.replace("<base64-encoded image>", base64.b64encode(png).decode())
            return command.replace("192.168.1.5", "127.0.0.1")

        status, headers, body = await run_curl(swap(create))
        assert status == 201, body
        created = json.loads(body)
        session_id, etag = created["session_id"], headers["etag"]
        assert headers["location"].endswith(session_id)
        assert created["sdp"]["type"] == "answer"
        assert set(created) >= {"session_id", "sdp", "ice_servers", "events", "expires_at"}

        status, headers, body = await run_curl(swap(trickle, session_id, etag))
        assert status == 204 and headers["etag"] == etag, body

        status, _, body = await run_curl(swap(prompt, session_id))
        assert status == 200 and json.loads(body)["prompt"] == "Anime style"

        status, _, body = await run_curl(swap(image, session_id))
        assert status == 200, body

        status, _, body = await run_curl(swap(get, session_id))
        state = json.loads(body)
        assert status == 200 and state["prompt"] == "Transform into this character"
        assert state["has_image"] is True and state["events"]["event_token"]

        status, _, body = await run_curl(swap(delete, session_id))
        summary = json.loads(body)
        assert status == 200 and summary["reason"] == "disconnect"

        status, _, body = await run_curl(swap(get, session_id))
        assert status == 200 and json.loads(body)["summary"] == summary
    await peer.close()
