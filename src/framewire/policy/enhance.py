"""Deterministic prompt enhancement: a short prompt gains descriptive phrases for each style it
names, worded so the Stylizer still reads the same Look (no new styles, colours or strengths)."""

from __future__ import annotations

from framewire.models.base import ModelSpec
from framewire.vocabulary import Style, parse_look

MAX_WORDS = 12
"""Prompts longer than this already say what the user wants; they are returned unchanged."""

EXPANSIONS: dict[Style, str] = {
    Style.ANIME: "cel shading, bold outlines, vibrant flat colours",
    Style.WATERCOLOR: "soft washes of pigment, wet edges, textured paper",
    Style.SKETCH: "graphite lines, cross hatching, white paper",
    Style.CYBERPUNK: "glowing neon signs, rainy night city, high contrast",
    Style.THERMAL: "infrared camera, heat signature, false colour palette",
    Style.NOIR: "high contrast black and white, dramatic shadows, film grain",
    Style.SEPIA: "faded antique photograph, aged paper, warm tones",
}
TINT_EXPANSION = "colour graded, tinted shadows and highlights"
GRADE_EXPANSION = "cinematic colour grade, rich natural tones"


class KeywordEnhancer:
    """PromptEnhancer that appends one fixed phrase per style (and for tints or the fallback
    grade). Same input, same output; phrases already present are not repeated."""

    def enhance(self, prompt: str, spec: ModelSpec) -> str:
        """`spec` is unused: the vocabulary is the Stylizer's, and descriptive phrases of this
        kind are also what text-conditioned GPU models expect."""
        stripped = prompt.strip()
        if not stripped or len(stripped.split()) > MAX_WORDS:
            return prompt
        look = parse_look(stripped)
        phrases = [EXPANSIONS[style] for style, _ in look.styles]
        if look.tints:
            phrases.append(TINT_EXPANSION)
        if look.grade:
            phrases.append(GRADE_EXPANSION)
        lowered = stripped.casefold()
        additions = [phrase for phrase in phrases if phrase not in lowered]
        return ", ".join([stripped.rstrip(",;. "), *additions]) if additions else prompt
