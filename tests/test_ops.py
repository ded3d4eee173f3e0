"""Operations endpoints and the published API description."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from framewire.models.base import ModelSpec
from framewire.models.passthrough import Passthrough
from framewire.models.registry import ModelRegistry
from tests.servers import framewire
from tests.sessions import open_session


async def test_openapi_describes_every_seed_route_with_its_body() -> None:
    async with framewire() as server, server.client(None) as http:
        spec = (await http.get("/openapi.json")).json()
        paths = spec["paths"]
        base = "/v1/realtime/sessions"
        assert set(paths[base]) == {"post"}
        assert set(paths[base + "/{session_id}"]) == {"get", "patch", "delete"}
        for route in ("/prompt", "/image"):
            assert "requestBody" in paths[base + "/{session_id}" + route]["post"]
        assert "get" in paths[base + "/{session_id}/events"]
        patch_body = paths[base + "/{session_id}"]["patch"]["requestBody"]["content"]
        assert set(patch_body) == {"application/json", "application/trickle-ice-sdpfrag"}
        create = paths[base]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(create["required"]) == {"model", "sdp"}


async def test_health_readiness_and_metrics_follow_the_load() -> None:
    async with framewire(max_sessions=1) as server, server.client() as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert (await http.get("/readyz")).status_code == 200
        session = await open_session(server, http)
        await session.peer.wait_frames(3)
        full = await http.get("/readyz")
        assert full.status_code == 503 and int(full.headers["retry-after"]) > 0
        metrics = (await http.get("/metrics")).text
        assert 'framewire_sessions_active{instance_id="' in metrics
        active = [ln for ln in metrics.splitlines() if ln.startswith("framewire_sessions_active{")]
        assert active[0].endswith(" 1.0")
        frames_out = [ln for ln in metrics.splitlines() if ln.startswith("framewire_frames_out")]
        assert float(frames_out[0].split()[-1]) >= 3
        await http.delete(session.url)
        await session.close()
        assert (await http.get("/readyz")).status_code == 200


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page by name and labels (instance_id left out)."""
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance_id"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_counters_never_go_down_when_a_session_ends() -> None:
    async with framewire() as server, server.client() as http:
        session = await open_session(server, http)
        await session.peer.wait_frames(10)
        before = scrape((await http.get("/metrics")).text)
        await http.delete(session.url)
        await session.events.wait_closed()
        after = scrape((await http.get("/metrics")).text)
        await session.close()

    counters = [k for k in before if k[0].endswith(("_total", "_count", "_sum", "_bucket"))]
    assert len(counters) > 20
    for sample in counters:
        assert after[sample] >= before[sample], sample
    assert after[("framewire_frames_out_total", ())] >= 10
    assert after[("framewire_frame_latency_seconds_count", ())] >= 10
    assert after[("framewire_encode_seconds_count", ())] >= 10
    assert after[("framewire_decode_seconds_count", ())] >= 10
    assert after[("framewire_model_seconds_count", ())] >= 10
    assert after[("framewire_keyframes_sent_total", ())] >= 1
    assert after[("framewire_sessions_created_total", (("model", "passthrough"),))] == 1
    ended = ("framewire_sessions_ended_total", (("model", "passthrough"), ("reason", "disconnect")))
    assert ended not in before and after[ended] == 1
    assert after[("framewire_sse_connections_total", ())] == 1
    assert after[("framewire_sse_connections_open", ())] == 0
    assert after[("framewire_sessions_active", ())] == 0


def negotiated(answer: str) -> str:
    """The video codec an answer SDP puts first (`video/VP8`, `video/H264`)."""
    video = answer.split("m=video", 1)[1]
    first = video.split("\r\n", 1)[0].split()[3]
    return "video/" + video.split(f"a=rtpmap:{first} ", 1)[1].split("/")[0]


def ten_fps() -> ModelRegistry:
    registry = ModelRegistry.default()
    registry.register(ModelSpec("ten", 10, 320, 240, False, "ten"), Passthrough)
    return registry


async def test_session_stats_move_while_media_flows() -> None:
    async with framewire(registry=ten_fps()) as server, server.client() as http:
        session = await open_session(server, http, model="ten")  # the camera sends 20 fps
        await session.peer.wait_frames(40)  # 4 s at the model's 10 fps
        first = (await http.get(session.url)).json()["stats"]
        await session.peer.wait_frames(20)
        stats = (await http.get(session.url)).json()["stats"]
        await http.delete(session.url)
        await session.close()

    assert stats["frames_out"] >= first["frames_out"] + 20
    assert 7 <= stats["fps_out"] <= 11  # the model's rate
    assert 14 <= stats["fps_in"] <= 22  # the camera's
    assert stats["frames_dropped"] > first["frames_dropped"] > 0  # the pacer drops the excess
    assert 0 < stats["added_latency_ms_p50"] <= stats["added_latency_ms_p95"]
    assert stats["candidate_type"] == "host"  # loopback: no STUN, no TURN
    assert stats["codec"] == negotiated(session.body["sdp"]["sdp"])
    assert stats["keyframes_sent"] >= 1
    assert stats["packets_in"] > first["packets_in"] and stats["packets_out"] > 0
    assert stats["bitrate_in_kbps"] > 0 and stats["bitrate_out_kbps"] > 0
    assert stats["jitter_ms"] >= 0 and stats["packets_lost"] >= 0
