"""Reading prompts into Looks: synonyms, strength words, negation, and the fallback grade."""

from __future__ import annotations

import pytest

from framewire.vocabulary import DEFAULT, EXTREME, SLIGHT, STRONG, Look, Style, parse_look


@pytest.mark.parametrize(
    ("prompt", "style"),
    [
        ("anime", Style.ANIME),
        ("Cartoons!", Style.ANIME),
        ("cel-shaded hero", Style.ANIME),
        ("Animé", Style.ANIME),
        ("pencil drawing", Style.SKETCH),
        ("film noir", Style.NOIR),
        ("black & white", Style.NOIR),
        ("B/W photo", Style.NOIR),
        ("black-and-white", Style.NOIR),
        ("an old photo", Style.SEPIA),
        ("vintage", Style.SEPIA),
        ("neon city", Style.CYBERPUNK),
        ("infrared", Style.THERMAL),
        ("watercolour painting", Style.WATERCOLOR),
    ],
)
def test_synonyms_select_their_style(prompt: str, style: Style) -> None:
    assert parse_look(prompt).styles == ((style, DEFAULT),)


def test_styles_are_ordered_structure_before_tone() -> None:
    look = parse_look("sepia sketch")
    assert [s for s, _ in look.styles] == [Style.SKETCH, Style.SEPIA]


@pytest.mark.parametrize(
    ("prompt", "amount"),
    [
        ("slightly anime", SLIGHT),
        ("a bit anime", SLIGHT),
        ("anime", DEFAULT),
        ("very anime", STRONG),
        ("extremely anime", EXTREME),
        ("make it slightly more anime", SLIGHT),
        ("anime, but only slightly", SLIGHT),
    ],
)
def test_strength_words_set_the_amount(prompt: str, amount: float) -> None:
    assert parse_look(prompt).styles == ((Style.ANIME, amount),)


def test_strength_words_apply_to_the_next_term_in_their_clause() -> None:
    look = parse_look("very anime, slightly red")
    assert look.styles == ((Style.ANIME, STRONG),)
    assert look.tints == ("red",) and look.tint_amount == SLIGHT


def test_repeating_a_term_keeps_its_strength() -> None:
    assert parse_look("slightly anime, anime style, cel shading") == parse_look("slightly anime")


def test_colours_keep_prompt_order_and_merge_synonyms() -> None:
    look = parse_look("teal and orange, turquoise accents")
    assert look.tints == ("teal", "orange")


def test_negated_terms_are_dropped() -> None:
    look = parse_look("anime, no red, not sepia")
    assert look.styles == ((Style.ANIME, DEFAULT),) and look.tints == ()


@pytest.mark.parametrize("prompt", ["", "a man walking his dog", "zxqv 42", "   "])
def test_prompts_without_known_terms_fall_back_to_the_grade(prompt: str) -> None:
    assert parse_look(prompt) == Look(grade=DEFAULT)


def test_a_strength_word_alone_scales_the_grade() -> None:
    assert parse_look("very dreamy").grade == STRONG
    assert parse_look("subtle mood").grade == SLIGHT
