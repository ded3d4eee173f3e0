"""The `framewire` command as a new user meets it: help texts, --version, serve --check, a busy
port, and `framewire run`'s exit status and one-line message for each bad input."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from framewire import __version__
from framewire.cli import build_parser
from framewire.run import demo
from tests.client.test_run_command import framewire_run, row
from tests.servers import API_KEY, framewire

FRAMEWIRE = str(Path(sys.executable).parent / "framewire")


async def framewire_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        FRAMEWIRE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", ["serve", "proxy", "run"])
def test_every_option_says_its_default_and_the_help_points_to_the_settings(command: str) -> None:
    parser = subparsers()[command]
    for action in parser._actions:
        flag = isinstance(action, argparse._StoreTrueAction | argparse._HelpAction)
        if not action.option_strings or flag or action.required:
            continue
        assert action.help and "(default: " in action.help, (command, action.option_strings)
    text = parser.format_help()
    assert "FRAMEWIRE_" in text and "Running the server" in text
    assert "`" not in text


def test_run_help_lists_the_models_the_containers_and_the_exit_codes() -> None:
    text = subparsers()["run"].format_help()
    for model in ("lucy_2_rt", "mirage", "mirage_v2", "lucy_v2v_720p_rt", "passthrough"):
        assert model in text
    for suffix in (".mp4", ".mov", ".mkv", ".webm"):
        assert suffix in text
    for code in ("0", "1", "2", "3"):
        assert f"\n    {code}  " in text


async def test_version() -> None:
    code, out, _ = await framewire_cli("--version")
    assert (code, out.strip()) == (0, f"framewire {__version__}")


async def test_serve_check_prints_the_settings_with_secrets_masked() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "FRAMEWIRE_API_KEYS": "sk-live-abcdef=5,sk-other-123456",
        "FRAMEWIRE_SECRET": "very-secret-signing-key",
        "FRAMEWIRE_REDIS_URL": "redis://user:hunter2@127.0.0.1:6379/0",
        "FRAMEWIRE_TICK_INTERVAL": "2",
    }
    code, out, err = await framewire_cli("serve", "--check", env=env)
    assert code == 0, err
    for secret in ("sk-live", "abcdef", "sk-other", "very-secret", "hunter2"):
        assert secret not in out
    lines = dict(line.split("=", 1) for line in out.splitlines())
    assert lines["FRAMEWIRE_API_KEYS"] == "2 key(s): ****=5, ****"
    assert lines["FRAMEWIRE_SECRET"] == "****"
    assert lines["FRAMEWIRE_REDIS_URL"] == "redis://user:****@127.0.0.1:6379/0"
    assert lines["FRAMEWIRE_TICK_INTERVAL"] == "2.0"
    assert lines["FRAMEWIRE_MAX_DURATION"] == "600.0"


async def test_serve_check_names_an_invalid_setting() -> None:
    env = {"PATH": "/usr/bin:/bin", "FRAMEWIRE_TICK_INTERVAL": "-1"}
    code, out, err = await framewire_cli("serve", "--check", env=env)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "framewire serve: invalid setting: FRAMEWIRE_TICK_INTERVAL: Input should be greater than 0"
    ]


async def test_serve_on_a_busy_port_fails_before_printing_a_key_or_starting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = await framewire_cli("serve", "--port", str(port))
    assert code == 3
    assert err.strip().splitlines() == [
        f"framewire serve: cannot listen on 127.0.0.1:{port}: the port is already in use"
    ]
    assert "fw_dev_" not in out + err and "startup" not in out + err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    demo.write_clip(folder / "clip.mp4", seconds=0.5, width=320, height=180)
    (folder / "notes.txt").write_text("not a video\n")
    (folder / "clips").mkdir()
    return folder


BAD_INPUTS = [
    (["{d}/missing.mp4", "-o", "{d}/o.mp4"], "no such file: {d}/missing.mp4"),
    (["{d}/clips", "-o", "{d}/o.mp4"], "{d}/clips is a directory, not a video file"),
    (["{d}/notes.txt", "-o", "{d}/o.mp4"], "{d}/notes.txt is not a video file FFmpeg can read"),
    (
        ["{d}/clip.mp4", "-o", "{d}/o.mp4", "--image", "{d}/ref.png"],
        "no such file: {d}/ref.png",
    ),
    (
        ["{d}/clip.mp4", "-o", "{d}/o.mp4", "--image", "{d}/notes.txt"],
        "{d}/notes.txt is not a PNG, JPEG or WebP image",
    ),
    (
        ["{d}/clip.mp4", "-o", "{d}/new/o.mp4"],
        "-o {d}/new/o.mp4: no such directory {d}/new (create it first)",
    ),
    (
        ["{d}/clip.mp4", "-o", "{d}/o.avi"],
        "-o {d}/o.avi: the output must end in .mp4 .mov .mkv .webm",
    ),
    (
        ["{d}/clip.mp4", "-o", "{d}/o.mp4", "--model", "lucy"],
        "unknown model 'lucy': choose one of lucy_2_rt, mirage, mirage_v2, lucy_v2v_720p_rt, "
        "passthrough",
    ),
    (["{d}/clip.mp4", "--demo", "-o", "{d}/o.mp4"], "give an INPUT video or --demo (not both)"),
    (
        ["{d}/clip.mp4", "-o", "{d}/o.mp4", "--duration", "0"],
        "--duration must be a positive number of seconds, not 0",
    ),
    (
        ["{d}/clip.mp4", "-o", "{d}/o.mp4", "--still", "{d}/still.gif"],
        "--still {d}/still.gif: the still must end in .png .jpg .jpeg",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
async def test_a_bad_input_is_one_plain_line_and_exit_2_before_anything_starts(
    files: Path, args: list[str], message: str
) -> None:
    code, out, err = await framewire_run(*(a.format(d=files) for a in args))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"framewire run: {message.format(d=files)}"]
    assert not (files / "new").exists()
    assert not [name for name in os.listdir(files) if name.startswith("o.")]


async def test_a_refused_session_exits_1_with_the_servers_answer(files: Path) -> None:
    async with framewire(blocked_terms=["forbidden"]) as server:
        code, out, err = await framewire_run(
            *(str(files / "clip.mp4"), "-o", str(files / "refused.mp4")),
            *("--prompt", "something forbidden", "--url", server.url, "--api-key", API_KEY),
        )
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("framewire run: the server refused: 422 ")


async def test_a_session_cut_short_by_credits_exits_3_and_says_why(tmp_path: Path) -> None:
    clip = demo.write_clip(tmp_path / "clip.mp4", seconds=6.0, width=320, height=180)
    output = tmp_path / "short.mp4"
    async with framewire(api_keys={"low": 1.0}) as server:
        code, table, err = await framewire_run(
            *(str(clip), "-o", str(output), "--url", server.url, "--api-key", "low")
        )
    assert code == 3, err
    assert row(table, "credits").endswith(" charged, 0 remaining")
    assert row(table, "generation").endswith(" s, the API key ran out of credits")
    assert err.splitlines()[-1] == (
        "framewire run: the session ended early: the API key ran out of credits "
        f"(insufficient_credits); {output} holds the frames received until then"
    )
    assert output.is_file()
