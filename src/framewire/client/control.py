"""The control half of the realtime API over HTTP: requests with the API key, problem+json errors as
exceptions, and bounded retries of 503 and 429 that honour `Retry-After`."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import httpx

RETRY_STATUSES = (429, 503)
DEFAULT_RETRY_DELAY = 1.0


class ProblemError(Exception):
    """A 4xx/5xx answer, carrying its RFC 7807 fields."""

    def __init__(self, status: int, title: str, detail: str, type: str = "about:blank") -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type

    @classmethod
    def of(cls, response: httpx.Response) -> ProblemError:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return cls(response.status_code, response.reason_phrase, response.text[:200])
        return cls(
            int(body.get("status", response.status_code)),
            str(body.get("title", response.reason_phrase)),
            str(body.get("detail", "")),
            str(body.get("type", "about:blank")),
        )


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date); None when absent or invalid."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Control:
    """Sends control requests. A 503 or 429 is retried after its `Retry-After` while the total
    wait stays within `retry_budget` seconds; then the problem is raised like any other."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: str, retry_budget: float
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.retry_budget = retry_budget

    def url(self, path: str) -> str:
        """An absolute URL for a path the server gave (Location, events.url) or a route."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + "/" + path.lstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {"x-api-key": self.api_key, **(headers or {})}
        waited = 0.0
        while True:
            response = await self.http.request(
                method, self.url(path), json=json, headers=all_headers
            )
            if response.status_code not in RETRY_STATUSES:
                break
            delay = retry_after(response)
            delay = DEFAULT_RETRY_DELAY if delay is None else delay
            if waited + delay > self.retry_budget:
                break
            await asyncio.sleep(delay)
            waited += delay
        if response.is_error:
            raise ProblemError.of(response)
        return response
