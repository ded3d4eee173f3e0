"""`framewire proxy` as an operator runs it: a real process, configured by flags and env."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx

from tests.servers import API_KEY, framewire

FRAMEWIRE = str(Path(sys.executable).with_name("framewire"))
TOKEN_A, TOKEN_B = "file-token-aaaaaaaa", "env-token-bbbbbbbb"


async def test_the_command_serves_the_proxy_with_tokens_from_file_and_env(
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"# end users\n{TOKEN_A}\n", encoding="utf-8")
    env = dict(os.environ, FRAMEWIRE_UPSTREAM_API_KEY=API_KEY, FRAMEWIRE_PROXY_TOKENS=TOKEN_B)
    async with framewire() as upstream:
        process = await asyncio.create_subprocess_exec(
            FRAMEWIRE,
            "proxy",
            "--upstream",
            upstream.url,
            "--port",
            "0",
            "--tokens-file",
            str(tokens),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        log: list[str] = []
        try:
            while not (found := re.search(r"running on (http://\S+)", "".join(log))):
                line = await asyncio.wait_for(process.stderr.readline(), 20)
                assert line, "".join(log)
                log.append(line.decode())
            async with httpx.AsyncClient(base_url=found.group(1)) as http:
                anonymous = await http.get("/v1/models")
                answers = [
                    await http.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
                    for token in (TOKEN_A, TOKEN_B)
                ]
        finally:
            process.terminate()
            rest = await asyncio.wait_for(process.stderr.read(), 20)
            await process.wait()
    output = "".join(log) + rest.decode()
    assert anonymous.status_code == 401
    assert [a.status_code for a in answers] == [200, 200]
    assert "GET /v1/models 401" in output and "GET /v1/models 200" in output
    for secret in (API_KEY, TOKEN_A, TOKEN_B):
        assert secret not in output


async def test_the_command_refuses_to_start_without_an_upstream_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FRAMEWIRE_UPSTREAM_API_KEY"}
    process = await asyncio.create_subprocess_exec(
        FRAMEWIRE,
        "proxy",
        "--upstream",
        "http://127.0.0.1:9",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert b"FRAMEWIRE_UPSTREAM_API_KEY" in err
