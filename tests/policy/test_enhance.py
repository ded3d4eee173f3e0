"""KeywordEnhancer: richer prompts that still mean the same look."""

from __future__ import annotations

import pytest

from framewire.models.registry import DEFAULT_SPECS
from framewire.policy.enhance import KeywordEnhancer
from framewire.vocabulary import parse_look

SPEC = DEFAULT_SPECS[0]
SHORT_PROMPTS = [
    "anime",
    "slightly anime",
    "anime, but only slightly",
    "very red",
    "teal and orange",
    "film noir detective",
    "sepia",
    "pencil sketch of a cat",
    "watercolor",
    "extremely cyberpunk, purple",
    "thermal",
    "a cozy living room",
    "very dreamy",
    "anime, no red",
]


@pytest.mark.parametrize("prompt", SHORT_PROMPTS)
def test_enhanced_prompt_selects_the_same_look(prompt: str) -> None:
    enhanced = KeywordEnhancer().enhance(prompt, SPEC)
    assert enhanced != prompt and enhanced.startswith(prompt)
    assert parse_look(enhanced) == parse_look(prompt)


def test_anime_gains_its_vocabulary() -> None:
    enhanced = KeywordEnhancer().enhance("anime", SPEC)
    assert "cel shading" in enhanced and "bold outlines" in enhanced


@pytest.mark.parametrize("prompt", SHORT_PROMPTS)
def test_enhancement_is_deterministic_and_idempotent(prompt: str) -> None:
    once = KeywordEnhancer().enhance(prompt, SPEC)
    assert KeywordEnhancer().enhance(prompt, SPEC) == once
    assert KeywordEnhancer().enhance(once, SPEC) == once or len(once.split()) > 12


def test_long_prompts_are_returned_unchanged() -> None:
    prompt = "a very detailed anime portrait of a girl standing in the rain at night in Tokyo"
    assert len(prompt.split()) > 12
    assert KeywordEnhancer().enhance(prompt, SPEC) == prompt


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompts_stay_empty(prompt: str) -> None:
    assert KeywordEnhancer().enhance(prompt, SPEC) == prompt
