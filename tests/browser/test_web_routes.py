"""How the page and its assets are served, by `framewire serve` and by any app that mounts
`web_routes()` (the proxy does, marked so the page sends no key)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from framewire.api.web import web_routes
from tests.servers import framewire
from tests.test_errors import assert_problem

SERVE_MARKER = '<meta name="framewire-proxy" content="0">'
PROXY_MARKER = '<meta name="framewire-proxy" content="1">'


async def test_serve_serves_the_page_and_its_assets() -> None:
    async with framewire() as server, server.client(None) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert SERVE_MARKER in page.text
        for asset in ("/static/app.js", "/static/style.css", "/static/icon.svg"):
            assert f'"{asset}"' in page.text
        script = await http.get("/static/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "EventSource" in script.text and "If-Match" in script.text
        style = await http.get("/static/style.css")
        assert style.headers["content-type"].startswith("text/css")
        assert "/" not in (await http.get("/openapi.json")).json()["paths"]


async def test_missing_assets_and_escapes_are_problems() -> None:
    async with framewire() as server, server.client(None) as http:
        for path in ("/static/missing.js", "/static/../config.py", "/static/%2e%2e/cli.py"):
            response = await http.get(path)
            assert_problem(response, 404)


async def test_web_routes_mark_the_page_for_the_proxy() -> None:
    app = Starlette(routes=web_routes(proxied=True))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as http:
        page = await http.get("/")
        assert PROXY_MARKER in page.text and SERVE_MARKER not in page.text
        assert (await http.get("/static/app.js")).status_code == 200
