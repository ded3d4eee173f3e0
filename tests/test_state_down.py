"""When the shared state goes away, requests get a 503 problem with Retry-After, not a 500."""

from __future__ import annotations

import subprocess

from tests.redis_server import own_redis, stop_redis
from tests.servers import framewire

__all__ = ["own_redis"]


async def test_redis_down_answers_503_with_retry_after(
    own_redis: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = own_redis
    async with framewire(redis_url=url) as server, server.client() as http:
        assert (await http.get("/v1/realtime/sessions/rs_missing")).status_code == 404
        stop_redis(process)
        down = await http.get("/v1/realtime/sessions/rs_missing")
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert int(down.headers["retry-after"]) > 0
        assert "Traceback" not in down.text
