"""The log output of a real `framewire serve` over a session's whole life, in both formats:
structured fields when JSON, and never a secret (API key, event token, TURN credential, webhook
or token secret), uvicorn's access lines included."""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path

import httpx
import pytest

from tests.coturn import coturn
from tests.processes import framewire_process, ready
from tests.servers import Running
from tests.sessions import open_session
from tests.test_shutdown import exited
from tests.webhook_receiver import receiver


@pytest.mark.parametrize(
    ("log_format", "level"), [("json", "info"), ("plain", "info"), ("json", "debug")]
)
async def test_a_sessions_whole_life_logs_no_secret(
    log_format: str, level: str, tmp_path: Path
) -> None:
    api_key = "fw_live_" + secrets.token_urlsafe(24)
    token_secret = secrets.token_urlsafe(32)
    path = tmp_path / "server.log"
    async with coturn(secrets.token_urlsafe(16)) as relay, receiver() as hooks:
        env = {
            "FRAMEWIRE_API_KEYS": api_key,
            "FRAMEWIRE_SECRET": token_secret,
            "FRAMEWIRE_TURN_URLS": relay.url,
            "FRAMEWIRE_TURN_SECRET": relay.secret,
            "FRAMEWIRE_WEBHOOK_URL": hooks.url,
            "FRAMEWIRE_WEBHOOK_SECRET": hooks.secret,
            "FRAMEWIRE_TICK_INTERVAL": "1",
        }
        with (
            path.open("wb") as output,
            framewire_process(
                env, "--log-format", log_format, "--log-level", level, output=output
            ) as served,
        ):
            await ready(served.url)
            headers = {"x-api-key": api_key}
            async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=20) as http:
                server = Running(None, served.url)  # type: ignore[arg-type]
                session = await open_session(server, http, prompt="noir film")
                await session.peer.wait_frames(5)
                await session.events.wait_for("generation_tick")
                got = (await http.get(session.url)).json()
                prompt = await http.post(session.url + "/prompt", json={"prompt": "sepia"})
                assert prompt.status_code == 200
                await http.delete(session.url)
                await session.events.wait_closed()
                token = session.body["events"]["event_token"]
                gone = await http.get(f"{session.body['events']['url']}?event_token={token}")
                assert gone.status_code == 410
                await hooks.wait_for("session.ended", session.id)
                await session.close()
            served.process.send_signal(signal.SIGTERM)
            assert await exited(served.process, 30) == 0

    text = path.read_text()
    turn_passwords = {s["credential"] for s in session.body["ice_servers"] + got["ice_servers"]}
    leaks = [api_key, token_secret, relay.secret, hooks.secret, token, got["events"]["event_token"]]
    for secret in [*leaks, *turn_passwords, hooks.secret.removeprefix("whsec_")]:
        assert secret not in text
    assert "event_token=[redacted]" in text  # the access log line is there, masked
    if level == "info":
        assert "aioice" not in text  # its INFO chatter is off unless --log-level debug
    else:
        assert "aioice" in text  # debug lets it through, still redacted
    lines = text.splitlines()
    assert any(session.id in line and "session ended" in line for line in lines)
    if log_format == "json":
        entries = [json.loads(line) for line in lines]
        assert all({"ts", "level", "event", "instance_id"} <= set(e) for e in entries)
        mine = [e for e in entries if e["session_id"] == session.id]
        assert {e["event"].split(" (")[0] for e in mine} >= {
            "session created",
            "generation started",
            "session ended",
        }
        assert all(e["key_id"].startswith("key_") and e["leg_id"] for e in mine)


async def test_a_refused_setting_does_not_echo_the_secrets(tmp_path: Path) -> None:
    api_key = "fw_live_" + secrets.token_urlsafe(24)
    bad_secret = "not-a-whsec-" + secrets.token_urlsafe(16)
    path = tmp_path / "server.log"
    env = {
        "FRAMEWIRE_API_KEYS": api_key,
        "FRAMEWIRE_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "FRAMEWIRE_WEBHOOK_SECRET": bad_secret,
    }
    with path.open("wb") as output, framewire_process(env, output=output) as served:
        assert await exited(served.process, 30) != 0
    text = path.read_text()
    assert "FRAMEWIRE_WEBHOOK_SECRET=whsec_" in text  # names what to fix
    assert api_key not in text and bad_secret not in text
