"""The models file: ids declared in TOML without code, and every way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from framewire.api.app import create_app
from framewire.cli import main
from framewire.models.catalog import ModelsFileError, load_catalog
from framewire.models.stylizer import Stylizer
from framewire.policy.base import ContentRejected
from tests.models.plugins import Inverter, NoBananas, Shouting
from tests.servers import framewire
from tests.servers import test_settings as settings_with
from tests.sessions import open_session

GOOD = """
[models.inverted]
backend = "tests.models.plugins:Inverter"
width = 320
height = 240
fps = 15
accepts_image = false

[models.styled]
backend = "stylizer"
width = 640
height = 360
fps = 20
accepts_image = true
[models.styled.options]
note = "kept for the backend"
"""

BASE = """
[models.m]
backend = "stylizer"
width = 320
height = 240
fps = 15
accepts_image = false
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_a_models_file_declares_ids_sizes_and_backends(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, GOOD))
    registry = catalog.start()
    assert [s.id for s in registry.specs()] == ["inverted", "styled"]
    styled = registry.get("styled")
    assert (styled.width, styled.height, styled.fps, styled.accepts_image) == (640, 360, 20, True)
    assert styled.options == {"note": "kept for the backend"}
    assert isinstance(registry.create("inverted"), Inverter)
    assert isinstance(registry.create("styled"), Stylizer)


BAD_CASES = [
    ("syntax", "[models.m\nbackend = 1", None, None, "not valid TOML"),
    ("no models", "[other]\nx = 1", None, None, "unknown table"),
    ("empty", "", None, "models", "declares no"),
    ("missing width", BASE.replace("width = 320\n", ""), "m", "width", "is missing"),
    ("missing backend", BASE.replace('backend = "stylizer"\n', ""), "m", "backend", "missing"),
    ("bad fps type", BASE.replace("fps = 15", 'fps = "fast"'), "m", "fps", "must be int"),
    ("zero height", BASE.replace("height = 240", "height = 0"), "m", "height", "positive"),
    ("bool as int", BASE.replace("fps = 15", "fps = true"), "m", "fps", "must be int"),
    ("image not bool", BASE.replace("= false", "= 1"), "m", "accepts_image", "must be bool"),
    ("unknown field", BASE + "colour = 3\n", "m", "colour", "not a known field"),
    ("options not table", BASE + 'options = "x"\n', "m", "options", "must be a table"),
    ("unknown backend", BASE.replace('"stylizer"', '"warp_drive"'), "m", "backend", "warp_drive"),
    (
        "module missing",
        BASE.replace('"stylizer"', '"tests.models.no_such:Thing"'),
        "m",
        "backend",
        "cannot import",
    ),
    (
        "attr missing",
        BASE.replace('"stylizer"', '"tests.models.plugins:Nothing"'),
        "m",
        "backend",
        "no attribute",
    ),
    (
        "fails to load",
        BASE.replace('"stylizer"', '"tests.models.plugins:PromptPaint"')
        + "[models.m.options]\nfail = true\n",
        "m",
        "backend",
        "no weights at /nowhere",
    ),
]


@pytest.mark.parametrize(
    ("text", "model_id", "key", "says"),
    [case[1:] for case in BAD_CASES],
    ids=[case[0] for case in BAD_CASES],
)
def test_a_bad_models_file_stops_serve_naming_file_model_and_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    model_id: str | None,
    key: str | None,
    says: str,
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ModelsFileError) as raised:
        load_catalog(path).start()
    assert (raised.value.model_id, raised.value.field or None) == (model_id, key)
    assert main(["serve", "--models", str(path), "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and says in error
    if model_id is not None:
        assert f"model {model_id!r}" in error and f"field {key!r}" in error


def test_a_missing_file_is_a_startup_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--models", str(tmp_path / "nope.toml"), "--port", "1"]) == 2
    assert "nope.toml" in capsys.readouterr().err


async def test_v1_models_lists_exactly_the_ids_of_the_file(tmp_path: Path) -> None:
    async with framewire(models=write(tmp_path, GOOD)) as server, server.client() as http:
        listed = (await http.get("/v1/models")).json()["models"]
    assert listed == [
        {
            "id": "inverted",
            "fps": 15,
            "width": 320,
            "height": 240,
            "accepts_image": False,
            "backend": "tests.models.plugins:Inverter",
        },
        {
            "id": "styled",
            "fps": 20,
            "width": 640,
            "height": 360,
            "accepts_image": True,
            "backend": "stylizer",
        },
    ]


async def test_built_in_ids_are_served_without_a_file() -> None:
    async with framewire() as server, server.client() as http:
        ids = [m["id"] for m in (await http.get("/v1/models")).json()["models"]]
    assert "lucy_2_rt" in ids and "passthrough" in ids


async def test_enhancer_and_moderator_plug_in_from_the_models_file(tmp_path: Path) -> None:
    text = (
        GOOD
        + '[enhancer]\nbackend = "tests.models.plugins:Shouting"\n'
        + '[enhancer.options]\nsuffix = ", loudly"\n'
        + '[moderator]\nbackend = "tests.models.plugins:NoBananas"\n'
    )
    content = create_app(settings_with(models=write(tmp_path, text))).state.sessions.content
    assert isinstance(content.enhancer, Shouting) and isinstance(content.moderator, NoBananas)
    assert content.prompt("cel shading", True, "styled") == "CEL SHADING, loudly"
    with pytest.raises(ContentRejected, match="no bananas"):
        content.prompt("a banana", True, "styled")


async def test_enhancer_and_moderator_plug_in_from_settings() -> None:
    app = create_app(
        settings_with(
            enhancer="tests.models.plugins:Shouting", moderator="tests.models.plugins:NoBananas"
        )
    )
    assert app.state.sessions.content.prompt("anime", True, "lucy_2_rt") == "ANIME!"
    async with framewire(moderator="tests.models.plugins:NoBananas") as server:
        async with server.client() as http:
            response = await http.post(
                "/v1/realtime/sessions",
                json={
                    "model": "lucy_2_rt",
                    "prompt": "banana split",
                    "sdp": {"type": "offer", "sdp": "v=0"},
                },
            )
    assert response.status_code == 422, response.text
    assert "moderation" in response.json()["type"]
    assert response.headers["content-type"].startswith("application/problem+json")


def test_an_unknown_enhancer_is_a_startup_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAMEWIRE_ENHANCER", "no_such_enhancer")
    assert main(["serve", "--port", "1"]) == 2
    assert "enhancer 'no_such_enhancer'" in capsys.readouterr().err


async def test_a_module_attr_backend_from_the_file_runs_a_real_session(tmp_path: Path) -> None:
    async with framewire(models=write(tmp_path, GOOD)) as server, server.client() as http:
        session = await open_session(server, http, model="inverted")
        try:
            frame = await session.peer.wait_frames(3)
            sent = session.peer.source_frame()
            blue, green, red = (int(v) for v in frame[20, 10])  # the camera's red bar, inverted
            assert tuple(int(v) for v in sent[20, 10]) == (0, 0, 255)
            assert blue > 200 and green > 200 and red < 60
        finally:
            await session.close()


def test_serve_check_reads_the_models_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--check", "--models", str(write(tmp_path, GOOD))]) == 0
    assert "models: inverted, styled" in capsys.readouterr().out
    bad = write(tmp_path, BASE.replace("fps = 15", "fps = 0"))
    assert main(["serve", "--check", "--models", str(bad)]) == 2
    assert "model 'm', field 'fps'" in capsys.readouterr().err
