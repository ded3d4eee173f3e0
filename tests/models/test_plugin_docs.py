"""The complete v2 example of docs/plugins.md runs as written, declared only in a models file."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from framewire.models.catalog import load_catalog

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def block(marker: str) -> str:
    """The fenced code block of the doc whose first line is `marker`."""
    for body in re.findall(r"```\w*\n(.*?)```", DOC.read_text(), flags=re.S):
        if body.startswith(marker):
            return str(body)
    raise AssertionError(f"no block starting {marker!r} in {DOC}")


@pytest.fixture
def importable(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("my_models", None)


def test_the_documented_v2_backend_serves_from_its_models_file(importable: Path) -> None:
    (importable / "my_models.py").write_text(block("# my_models.py"))
    (importable / "models.toml").write_text(block("# models.toml"))
    registry = load_catalog(importable / "models.toml").start()
    model = registry.create("tint")
    assert registry.create("tint") is model  # shared: one instance for the id
    grey = np.full((480, 640, 3), 100, np.uint8)
    red, plain = model.process_batch(
        [grey, grey], [model.condition("red", None), model.condition("hello", None)]
    )
    assert tuple(red[0, 0]) == (193, 64, 64) and np.array_equal(plain, grey)
