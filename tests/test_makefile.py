"""`make demo` installs what running needs and nothing more: the Makefile's plan for a fresh
clone (no .venv yet), read with `make --dry-run`."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plan(target: str, tmp_path: Path) -> list[str]:
    """The commands `make TARGET` would run with a .venv that does not exist yet."""
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", target, f"VENV={tmp_path / 'fresh'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.splitlines()


def test_make_demo_installs_the_runtime_only(tmp_path: Path) -> None:
    commands = plan("demo", tmp_path)
    installs = [c for c in commands if "pip install" in c and "--upgrade pip" not in c]
    assert installs == [f"{tmp_path / 'fresh'}/bin/pip install --quiet -c constraints.txt -e ."]
    assert not any("[dev]" in c or "playwright" in c for c in commands)
    # the demo's table reports the frame round trip, which needs the frame stamp
    assert any("framewire run --demo" in c and "--marker" in c for c in commands)


def test_make_install_adds_the_development_tools(tmp_path: Path) -> None:
    """With the diffusers extra the tests run on the CPU, and torch pinned to the version whose
    CPU build installs here (an unpinned torch pulls a CUDA build of several GB)."""
    commands = plan("install", tmp_path)
    fresh = tmp_path / "fresh"
    pip = f"{fresh}/bin/pip install --quiet -c constraints.txt -e '.[dev,diffusers]' torch==2.13.0"
    assert pip in commands


def test_the_package_license_is_an_spdx_string() -> None:
    """A `license = {text = ...}` table makes setuptools print a deprecation warning on every
    install, twice in `make demo`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    assert project["build-system"]["requires"] == ["setuptools>=77"]
