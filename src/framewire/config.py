"""Settings: one object built once from the environment (the README's "Running the server"
table) and passed down."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VIDEO_CODEC_NAMES = ("h264", "vp8")


class Settings(BaseSettings):
    """Every `FRAMEWIRE_*` variable (README, "Running the server"); the names are a public
    interface."""

    model_config = SettingsConfigDict(
        env_prefix="FRAMEWIRE_",
        extra="ignore",
        hide_input_in_errors=True,  # errors hold secrets
    )

    api_keys: Annotated[dict[str, float | None], NoDecode] = Field(default_factory=dict)
    secret: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    instance_id: str = Field(default_factory=lambda: "fw-" + secrets.token_hex(4))
    redis_url: str | None = None
    tick_interval: float = Field(default=5.0, gt=0)
    max_duration: float = Field(default=600.0, gt=0)
    inactivity_timeout: float = Field(default=30.0, gt=0)
    session_retention: float = Field(default=3600.0, ge=0)
    blocked_terms: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ice_servers: Annotated[list[dict[str, Any]], NoDecode] = Field(default_factory=list)
    ice_interfaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ice_announced_ip: str | None = None
    ice_udp_port: int | None = Field(default=None, ge=1, le=65535)
    """One UDP port (per interface) for the host candidates of every leg."""
    ice_port_range: Annotated[tuple[int, int] | None, NoDecode] = None
    """`first-last`: every media socket (host and relay allocation) binds a port in it."""
    turn_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """TURN URLs (`turn:host:port?transport=udp|tcp`, `turns:host:port?transport=tcp`) handed to
    clients and used by the server."""
    turn_secret: str | None = None
    """Shared with the TURN server (coturn `static-auth-secret`) to mint REST API credentials."""
    ice_disconnect_grace: float = Field(default=5.0, gt=0)
    """Seconds without packets from a client before the server asks it for an ICE restart."""
    ice_restart_timeout: float = Field(default=15.0, gt=0)
    """Seconds for the client to re-offer after `ice-restart`, and for the new path to connect."""
    max_sessions: int | None = Field(default=None, gt=0)
    """None: sized from the measured cost of a session (framewire.sessions.admission)."""
    shed_load: bool = True
    """False: admit up to FRAMEWIRE_MAX_SESSIONS whatever the measured cost and live signals
    say (benchmarks that measure past what holds)."""
    model_workers: int | None = Field(default=None, gt=0)
    """Threads running models (and each frame's pixel work) per process; None: one per CPU."""
    video_codecs: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["h264", "vp8"])
    """Video codecs in order of preference; the client's offer decides which are possible."""
    max_viewers: int = Field(default=16, ge=0)
    """WHEP viewers one session may have at once; beyond it 429."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    """Origins whose pages may call the API (WHIP/WHEP players); keys travel in headers only."""
    models: Path | None = None
    """A models file (TOML) declaring the model ids served; the built-in ids when unset."""
    enhancer: str | None = None
    """Prompt enhancer plug-in: an entry point in `framewire.enhancers` or `module:attr`."""
    moderator: str | None = None
    """Moderator plug-in: an entry point in `framewire.moderators` or `module:attr`."""
    # Tunable for tests and small deployments.
    keepalive_interval: float = Field(default=15.0, gt=0)
    ice_connect_timeout: float = Field(default=30.0, gt=0)
    key_concurrency: int = Field(default=10, gt=0)
    webhook_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Receivers of the usage webhooks (comma-separated); none: no webhooks."""
    webhook_secret: str | None = None
    """`whsec_` + base64 key that signs every webhook (Standard Webhooks)."""
    webhook_retry_for: float = Field(default=3600.0, gt=0)
    """Seconds a webhook is retried (exponential backoff) before it is dropped."""
    webhook_backoff: float = Field(default=5.0, gt=0)
    """Seconds before a webhook's first retry; each further retry waits twice as long."""
    drain_timeout: float = Field(default=30.0, ge=0)
    """Seconds running sessions may continue after SIGTERM before the server ends them."""
    http_header_timeout: float = Field(default=10.0, gt=0)
    """Seconds for a connection to send a request's headers (slowloris, idle connects)."""
    http_body_timeout: float = Field(default=30.0, gt=0)
    """Seconds for a request body to arrive in full once its headers have."""
    http_write_timeout: float = Field(default=30.0, gt=0)
    """Seconds a client may leave our writes unread (a stuck SSE reader) before it is cut off."""
    auth_failure_burst: int = Field(default=20, gt=0)
    """Failed authentications (401) one source address may make at once ..."""
    auth_failure_rate: float = Field(default=1.0, gt=0)
    """... refilled at this many per second; beyond, 429 + Retry-After without a valid key."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        """`key` (unlimited credit) or `key=N` (N credit-seconds), comma-separated."""
        if not isinstance(value, str):
            return value
        keys: dict[str, float | None] = {}
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, credit = item.partition("=")
            keys[key.strip()] = float(credit) if sep else None
        return keys

    @field_validator(
        "blocked_terms", "ice_interfaces", "turn_urls", "webhook_url", "cors_origins", mode="before"
    )
    @classmethod
    def _parse_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("video_codecs", mode="before")
    @classmethod
    def _parse_codecs(cls, value: Any) -> Any:
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list):
            return value
        names = [str(n).strip().lower() for n in names if str(n).strip()]
        unknown = [n for n in names if n not in VIDEO_CODEC_NAMES]
        if unknown or not names:
            raise ValueError(
                f"FRAMEWIRE_VIDEO_CODECS: unknown video codec {', '.join(unknown) or '(none)'}; "
                f"use a comma-separated list of {', '.join(VIDEO_CODEC_NAMES)}"
            )
        return list(dict.fromkeys(names))

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> Settings:
        if self.turn_urls and not self.turn_secret:
            raise ValueError("FRAMEWIRE_TURN_URLS needs FRAMEWIRE_TURN_SECRET")
        if self.ice_udp_port is not None and self.ice_port_range is not None:
            raise ValueError("set FRAMEWIRE_ICE_UDP_PORT or FRAMEWIRE_ICE_PORT_RANGE, not both")
        return self

    @model_validator(mode="after")
    def _webhooks_need_secret(self) -> Settings:
        """Receivers need a `whsec_<base64>` secret, and http(s) URLs."""
        if not self.webhook_url:
            return self
        secret = self.webhook_secret or ""
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            key = b""
        if not secret.startswith("whsec_") or not key:
            raise ValueError("FRAMEWIRE_WEBHOOK_URL needs FRAMEWIRE_WEBHOOK_SECRET=whsec_<base64>")
        for url in self.webhook_url:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"FRAMEWIRE_WEBHOOK_URL: {url!r} is not an http(s) URL")
        return self

    @field_validator("ice_port_range", mode="before")
    @classmethod
    def _parse_range(cls, value: Any) -> Any:
        """`40000-40999`: two ports, the first not above the last."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        first, sep, last = value.strip().partition("-")
        try:
            low, high = int(first), int(last)
        except ValueError:
            low = high = 0
        if not sep or not 1 <= low <= high <= 65535:
            raise ValueError(f"must be FIRST-LAST with 1 <= FIRST <= LAST <= 65535, not {value!r}")
        return (low, high)

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value


class SettingError(ValueError):
    """A setting that cannot work on this machine (a port taken, a range too small)."""

    def __init__(self, setting: str, detail: str) -> None:
        super().__init__(f"{setting}: {detail}")
        self.setting = setting
