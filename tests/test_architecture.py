"""The house rules, checked on the source so they stay true: imports point down the layers
(cli > run · workers > proxy · client > api > sessions > media > models, policy, state, rtc,
config), nothing above `state/` names a state adapter, and no function in src/ is longer than
60 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "framewire"
MAX_FUNCTION_LINES = 60
RANK = {
    "cli": 7,
    "run": 6, "workers": 6,
    "proxy": 5, "client": 5,
    "api": 4,
    "sessions": 3,
    "media": 2,
    "models": 1, "policy": 1, "state": 1, "config": 1, "errors": 1, "vocabulary": 1, "rtc": 1,
    "settings_view": 1, "plugins": 1, "__init__": 1,
}  # fmt: skip
SIBLINGS = {
    "settings_view": {"config"},
    "models": {"vocabulary", "plugins"},
    "policy": {"models.base", "vocabulary", "plugins"},
}
"""What the bottom layer may take from its own rank: a model and the prompt enhancer share the
vocabulary; policy knows the model contract, never a model; the settings' printable view reads
the settings; models and policy find their plug-ins by the one lookup in `plugins`."""
ADAPTERS = ("framewire.state.memory", "framewire.state.redis")


def modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        yield ".".join(parts), path, ast.parse(path.read_text(), str(path))


def imported(tree: ast.Module) -> Iterator[str]:
    """Every framewire module (or `module.name`) a module imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("framewire"):
            for alias in node.names:
                yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("framewire"))


def allowed(source: str, target: str) -> bool:
    layer = source.split(".")[0]
    if layer not in RANK:
        return False  # a new package or module: give it its place in RANK
    path = target.removeprefix("framewire").removeprefix(".")
    into = path.split(".")[0]
    if into not in RANK:
        into = "__init__"  # a name from framewire/__init__.py (`__version__`)
    if into == layer or RANK[into] < RANK[layer]:
        return True
    return any(path == s or path.startswith(s + ".") for s in SIBLINGS.get(layer, ()))


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{name} imports {target}"
        for name, _, tree in modules()
        for target in imported(tree)
        if not allowed(name, target)
    ]
    assert upward == []


def test_only_the_state_layer_names_a_state_adapter() -> None:
    naming = [
        f"{name} imports {target}"
        for name, _, tree in modules()
        if not name.startswith("state.")
        for target in imported(tree)
        if target.startswith(ADAPTERS)
    ]
    assert naming == []


def test_no_function_is_longer_than_60_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({size} lines)"
        for _, path, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (size := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_rules_see_a_violation() -> None:
    """The checks themselves can fail: an upward import and an adapter are caught."""
    assert not allowed("media.leg", "framewire.sessions.live.LiveSession")
    assert not allowed("policy.enhance", "framewire.models.stylizer.Stylizer")
    assert not allowed("state.base", "framewire.api.app")
    assert allowed("api.app", "framewire.sessions.service.SessionService")
    assert allowed("policy.enhance", "framewire.vocabulary.parse_look")
    tree = ast.parse("from framewire.state.redis import RedisState")
    assert list(imported(tree)) == ["framewire.state.redis.RedisState"]
