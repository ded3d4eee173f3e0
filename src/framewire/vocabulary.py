"""Prompt -> Look: the visual vocabulary (styles, strengths, colours) and the parser that reads a
prompt into it. Neutral ground: the stylizer model renders a Look, the prompt enhancer (policy)
words its expansions so they keep the same Look; neither imports the other.

A Look is an immutable description of what to do to a frame (styles with amounts, tint colours,
or a mild grade when nothing in the prompt is known). Parsing is pure and deterministic, so the
prompt enhancer can check that its expansion keeps the same Look.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum


class Style(Enum):
    """The built-in effects, declared in the order they are applied (structure before tone)."""

    ANIME = "anime"
    WATERCOLOR = "watercolor"
    SKETCH = "sketch"
    CYBERPUNK = "cyberpunk"
    THERMAL = "thermal"
    NOIR = "noir"
    SEPIA = "sepia"


BGR = tuple[int, int, int]

SLIGHT = 0.35
DEFAULT = 0.7
STRONG = 0.85
EXTREME = 1.0
"""Effect amounts in (0, 1]: strength words pick one; everything else uses DEFAULT."""

STYLE_TERMS: dict[str, Style] = {
    "anime": Style.ANIME,
    "cartoon": Style.ANIME,
    "cartoonish": Style.ANIME,
    "manga": Style.ANIME,
    "comic": Style.ANIME,
    "toon": Style.ANIME,
    "cel shaded": Style.ANIME,
    "cel shading": Style.ANIME,
    "ghibli": Style.ANIME,
    "watercolor": Style.WATERCOLOR,
    "watercolour": Style.WATERCOLOR,
    "aquarelle": Style.WATERCOLOR,
    "painting": Style.WATERCOLOR,
    "painted": Style.WATERCOLOR,
    "painterly": Style.WATERCOLOR,
    "gouache": Style.WATERCOLOR,
    "sketch": Style.SKETCH,
    "sketched": Style.SKETCH,
    "pencil": Style.SKETCH,
    "drawing": Style.SKETCH,
    "drawn": Style.SKETCH,
    "charcoal": Style.SKETCH,
    "graphite": Style.SKETCH,
    "line art": Style.SKETCH,
    "cyberpunk": Style.CYBERPUNK,
    "neon": Style.CYBERPUNK,
    "synthwave": Style.CYBERPUNK,
    "vaporwave": Style.CYBERPUNK,
    "blade runner": Style.CYBERPUNK,
    "thermal": Style.THERMAL,
    "infrared": Style.THERMAL,
    "heatmap": Style.THERMAL,
    "heat map": Style.THERMAL,
    "heat vision": Style.THERMAL,
    "noir": Style.NOIR,
    "black and white": Style.NOIR,
    "black white": Style.NOIR,
    "b and w": Style.NOIR,
    "b w": Style.NOIR,
    "monochrome": Style.NOIR,
    "monochromatic": Style.NOIR,
    "grayscale": Style.NOIR,
    "greyscale": Style.NOIR,
    "sepia": Style.SEPIA,
    "vintage": Style.SEPIA,
    "antique": Style.SEPIA,
    "daguerreotype": Style.SEPIA,
    "old photo": Style.SEPIA,
    "old photograph": Style.SEPIA,
}

COLOURS: dict[str, BGR] = {
    "red": (40, 30, 220),
    "green": (60, 180, 40),
    "blue": (220, 90, 30),
    "purple": (180, 40, 130),
    "orange": (20, 140, 255),
    "yellow": (30, 210, 240),
    "pink": (180, 105, 255),
    "magenta": (200, 40, 220),
    "teal": (128, 128, 0),
    "cyan": (220, 200, 0),
    "gold": (40, 180, 230),
    "brown": (40, 80, 140),
}
"""Tint colours (BGR) by canonical name; COLOUR_TERMS maps synonyms onto them."""

COLOUR_TERMS: dict[str, str] = {name: name for name in COLOURS} | {
    "crimson": "red",
    "scarlet": "red",
    "emerald": "green",
    "azure": "blue",
    "navy": "blue",
    "violet": "purple",
    "lavender": "purple",
    "amber": "orange",
    "fuchsia": "magenta",
    "turquoise": "teal",
    "golden": "gold",
}

STRENGTH_TERMS: dict[str, float] = {
    "slightly": SLIGHT,
    "slight": SLIGHT,
    "subtle": SLIGHT,
    "subtly": SLIGHT,
    "a bit": SLIGHT,
    "a little": SLIGHT,
    "a touch": SLIGHT,
    "a hint": SLIGHT,
    "lightly": SLIGHT,
    "mild": SLIGHT,
    "mildly": SLIGHT,
    "faint": SLIGHT,
    "gentle": SLIGHT,
    "very": STRONG,
    "strong": STRONG,
    "strongly": STRONG,
    "heavy": STRONG,
    "heavily": STRONG,
    "really": STRONG,
    "deep": STRONG,
    "extremely": EXTREME,
    "extreme": EXTREME,
    "intense": EXTREME,
    "intensely": EXTREME,
    "ultra": EXTREME,
    "super": EXTREME,
    "maximum": EXTREME,
}

NEGATIONS = frozenset({"no", "not", "without", "non"})

_MAX_PHRASE = 3
_MODIFIER_REACH = 3
"""A strength word applies to a term at most this many words after it, within one clause."""


@dataclass(frozen=True)
class Look:
    """What the stylizer does to each frame; equal prompts meaning the same thing give equal Looks.

    `styles` is ordered as `Style` declares; `tints` are canonical colour names in prompt order;
    `grade` is the amount of the mild fallback grade (0 when the prompt named anything).
    """

    styles: tuple[tuple[Style, float], ...] = ()
    tints: tuple[str, ...] = ()
    tint_amount: float = 0.0
    grade: float = 0.0


@dataclass
class _Mention:
    key: Style | str
    amount: float | None


def _clauses(prompt: str) -> Iterator[list[str]]:
    """Lower-case, accent-free words, split into clauses at punctuation that ends a phrase."""
    text = unicodedata.normalize("NFKD", prompt)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("&", " and ").replace("/", " ")
    for clause in re.split(r"[,;:.!?()\n]+", text):
        words = re.findall(r"[a-z0-9]+", clause)
        if words:
            yield words


def _match(words: list[str], i: int) -> tuple[int, Style | str | float | None]:
    """Longest vocabulary phrase starting at words[i]: (length, meaning), or (1, None)."""
    for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
        phrase = " ".join(words[i : i + n])
        candidates = [phrase]
        if n == 1 and phrase.endswith("s") and len(phrase) > 3:
            candidates.append(phrase[:-1])
        for candidate in candidates:
            if candidate in STYLE_TERMS:
                return n, STYLE_TERMS[candidate]
            if candidate in COLOUR_TERMS:
                return n, COLOUR_TERMS[candidate]
            if candidate in STRENGTH_TERMS:
                return n, STRENGTH_TERMS[candidate]
    return 1, None


def _mentions(prompt: str) -> tuple[list[_Mention], float | None]:
    """Styles and colours the prompt names, each with the strength word aimed at it if any.

    A strength word applies to the next term in its clause; one with no term after it applies
    to the last term before it ("anime, but only slightly"). Returns also the first strength word
    of a prompt that names no term at all, which scales the fallback grade.
    """
    mentions: list[_Mention] = []
    loose: float | None = None
    for words in _clauses(prompt):
        clause: list[_Mention] = []
        pending: tuple[float, int] | None = None
        i = 0
        while i < len(words):
            length, meaning = _match(words, i)
            if isinstance(meaning, float):
                pending = (meaning, i)
                loose = meaning if loose is None else loose
            elif meaning is not None:
                negated = any(w in NEGATIONS for w in words[max(0, i - 2) : i])
                amount = None
                if pending is not None and i - pending[1] <= _MODIFIER_REACH:
                    amount = pending[0]
                pending = None
                if not negated:
                    clause.append(_Mention(meaning, amount))
            i += length
        mentions.extend(clause)
        if pending is not None and mentions and mentions[-1].amount is None:
            mentions[-1].amount = pending[0]
    return mentions, loose


def _amount(mentions: list[_Mention]) -> float:
    """The first explicit strength among a term's mentions; repeating a term does not reset it."""
    return next((m.amount for m in mentions if m.amount is not None), DEFAULT)


def parse_look(prompt: str) -> Look:
    """Read a free-text prompt into a Look; unknown words never fail, they fall back to a grade."""
    mentions, loose = _mentions(prompt)
    styles = tuple(
        (style, _amount([m for m in mentions if m.key is style]))
        for style in Style
        if any(m.key is style for m in mentions)
    )
    colour_mentions = [m for m in mentions if isinstance(m.key, str)]
    tints = tuple(dict.fromkeys(str(m.key) for m in colour_mentions))
    if not styles and not tints:
        return Look(grade=loose if loose is not None else DEFAULT)
    return Look(
        styles=styles,
        tints=tints,
        tint_amount=_amount(colour_mentions) if tints else 0.0,
    )
