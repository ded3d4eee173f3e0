"""The whole life of a realtime session, driven by a real aiortc client over loopback."""

from __future__ import annotations

import numpy as np
from aiortc.mediastreams import AudioStreamTrack

from tests.peers import ClientPeer
from tests.servers import framewire
from tests.sse import EventReader


def saturation(image: np.ndarray) -> float:
    """Mean chroma (max - min channel): ~0 for gray pictures even after lossy coding, unlike HSV
    saturation, which is noisy on dark pixels."""
    channels = image.astype(np.int16)
    return float((channels.max(axis=2) - channels.min(axis=2)).mean())


async def test_session_lifecycle_end_to_end() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer()
        offer = await peer.offer(trickle=True)
        created = await http.post(
            "/v1/realtime/sessions",
            json={
                "model": "lucy_2_rt",
                "sdp": {"type": "offer", "sdp": offer},
                "prompt": "black and white noir film",
                "enhance_prompt": True,
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        session_id = body["session_id"]
        etag = created.headers["etag"]
        assert etag.startswith('"ice-') and etag.endswith('"')
        assert created.headers["location"] == f"/v1/realtime/sessions/{session_id}"
        assert body["sdp"]["type"] == "answer" and "a=ice-ufrag:" in body["sdp"]["sdp"]
        assert body["ice_servers"] == []
        assert body["expires_at"].endswith("Z")
        await peer.accept(body["sdp"]["sdp"])

        events = EventReader(
            server.client(None),
            f"{body['events']['url']}?event_token={body['events']['event_token']}",
        ).start()

        # Trickle the client's candidates, then end-of-candidates, with the ETag.
        for candidate in peer.local_candidates:
            patched = await http.patch(
                f"/v1/realtime/sessions/{session_id}",
                json={"candidates": [candidate]},
                headers={"If-Match": etag},
            )
            assert patched.status_code == 204, patched.text
            assert patched.headers["etag"] == etag

        # Frames come back and show the prompt: black and white.
        frame = await peer.wait_frames(10)
        assert frame.shape == (720, 1280, 3)
        assert saturation(peer.source_frame()) > 150
        assert saturation(frame) < 15

        started = await events.wait_for("generation_started")
        end_of_candidates = await events.wait_for("ice-candidate")
        assert end_of_candidates.data == {"candidate": None}

        # A prompt change changes the pixels.
        changed = await http.post(
            f"/v1/realtime/sessions/{session_id}/prompt",
            json={"prompt": "vivid neon cyberpunk", "enhance_prompt": False},
        )
        assert changed.status_code == 200
        assert changed.json()["prompt"] == "vivid neon cyberpunk"
        await peer.wait_frames(10)
        assert saturation(peer.frames[-1]) > 60

        tick = await events.wait_for("generation_tick")
        assert tick.data["seconds"] >= 1

        ended = await http.delete(f"/v1/realtime/sessions/{session_id}")
        assert ended.status_code == 200
        summary = ended.json()
        assert summary["reason"] == "disconnect" and summary["status"] == "ended"
        assert summary["session_id"] == session_id and summary["model"] == "lucy_2_rt"
        last_tick = [e for e in events.events if e.event == "generation_tick"][-1]
        await events.wait_closed()
        assert events.closed_by_server
        ticks = [e for e in events.events if e.event == "generation_tick"]
        assert (
            ticks[-1].data["seconds"] <= summary["seconds"] < ticks[-1].data["seconds"] + 1.0 + 1e-6
        )
        assert last_tick in ticks
        assert summary["credits_charged"] == summary["seconds"]

        names = events.names()
        assert names.index("generation_started") < names.index("generation_tick")
        assert names[-1] == "generation_ended"
        assert events.events[-1].data == {"seconds": summary["seconds"], "reason": "disconnect"}
        ids = [e.id for e in events.events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert events.raw.rstrip("\n").endswith("data:")
        assert started.id is not None

        again = EventReader(
            server.client(None),
            f"{body['events']['url']}?event_token={body['events']['event_token']}",
        ).start()
        await again.wait_closed()
        assert again.status == 410
        assert '"status":410' in again.raw.replace(" ", "")

        repeat = await http.delete(f"/v1/realtime/sessions/{session_id}")
        assert repeat.status_code == 200 and repeat.json() == summary

        state = await http.get(f"/v1/realtime/sessions/{session_id}")
        assert state.status_code == 200
        assert state.json()["status"] == "ended" and state.json()["summary"] == summary
        await peer.close()


async def test_an_offer_with_audio_and_video_like_a_browser_is_answered_cleanly() -> None:
    async with framewire() as server, server.client() as http:
        peer = ClientPeer()
        peer.pc.addTrack(AudioStreamTrack())
        offer = await peer.offer()
        created = await http.post(
            "/v1/realtime/sessions",
            json={"model": "passthrough", "sdp": {"type": "offer", "sdp": offer}},
        )
        assert created.status_code == 201, created.text
        answer = created.json()["sdp"]["sdp"]
        assert "m=audio" in answer and "m=video" in answer
        await peer.accept(answer)
        frame = await peer.wait_frames(5)
        assert frame.shape == (480, 640, 3)
        leg = server.app.state.legs.all()[0]
        assert leg.stats.frames_in > 0
        await http.delete(f"/v1/realtime/sessions/{created.json()['session_id']}")
        await peer.close()
