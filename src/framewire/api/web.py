"""The web page at `/` (the reference browser client grown into a product) and its assets under
`/static/`, served from the package folder `framewire/web`.

`web_routes()` returns plain Starlette routes so any ASGI app can serve the same page:
`framewire serve` includes `router`; `framewire proxy` uses `web_routes(proxied=True)`, which
marks the page so it sends no API key (the proxy injects its own).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB_PACKAGE = ("framewire", "web")
PROXY_MARKER = '<meta name="framewire-proxy" content="0">'
"""index.html carries this tag; behind the proxy its content becomes "1"."""


def index_html(proxied: bool) -> str:
    """The page's HTML, marked for the proxy when `proxied`."""
    package, folder = WEB_PACKAGE
    page = files(package).joinpath(folder, "index.html").read_text(encoding="utf-8")
    if PROXY_MARKER not in page:
        raise RuntimeError("framewire/web/index.html lost its framewire-proxy meta tag")
    if proxied:
        page = page.replace(PROXY_MARKER, PROXY_MARKER.replace('"0"', '"1"'))
    return page


def web_routes(proxied: bool = False) -> list[BaseRoute]:
    """`GET /` (the page, never cached so a new release shows at once), `GET /watch` (a WHEP
    viewer of one session, the page's share link) and `/static/...`."""
    page = index_html(proxied)
    package, folder = WEB_PACKAGE
    watch_page = files(package).joinpath(folder, "watch.html").read_text(encoding="utf-8")

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def watch(request: Request) -> HTMLResponse:
        return HTMLResponse(watch_page, headers={"Cache-Control": "no-cache"})

    return [
        Route("/", index, methods=["GET"], name="web_index", include_in_schema=False),
        Route("/watch", watch, methods=["GET"], name="web_watch", include_in_schema=False),
        Mount("/static", StaticFiles(packages=[WEB_PACKAGE]), name="static"),
    ]


router = APIRouter(routes=web_routes(), include_in_schema=False)
