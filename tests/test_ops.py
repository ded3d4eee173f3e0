"""Operations endpoints and the published API description."""

from __future__ import annotations

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
