"""WHIP and WHEP through `framewire proxy`: an end user publishes with the proxy's bearer token
(the proxy sends its own API key upstream) and watches the result, never talking to upstream."""

from __future__ import annotations

from tests.proxy.support import assert_not_leaked, bearer
from tests.proxy.support import proxy_for as proxy
from tests.servers import API_KEY, framewire
from tests.whip import Publisher, Viewer

TOKEN = "end-user-token"


async def test_whip_and_whep_through_the_proxy() -> None:
    async with (
        framewire() as upstream,
        proxy(upstream.url, tokens=[TOKEN]) as front,
        bearer(front.url, TOKEN) as http,
    ):
        publisher, viewer = Publisher(), Viewer()
        try:
            published = await publisher.publish(http)
            assert published.status_code == 201, published.text
            assert publisher.location.startswith("/v1/realtime/sessions/")  # relative: the proxy's
            assert any('rel="ice-server"' not in link for link in publisher.links)  # events
            watched = await viewer.watch(http, publisher.location)
            assert watched.status_code == 201, watched.text
            await viewer.wait_frames(10)
            assert viewer.stamps[-1] is not None
            ended = await http.delete(publisher.location)
            assert ended.status_code == 200 and ended.json()["reason"] == "disconnect"
            async with bearer(front.url, None) as anonymous:
                refused = await anonymous.post(
                    "/v1/whip/passthrough",
                    content="v=0\r\n",
                    headers={"Content-Type": "application/sdp"},
                )
                assert refused.status_code == 401
            assert_not_leaked([published, watched, ended], API_KEY)
        finally:
            await viewer.close()
            await publisher.close()
