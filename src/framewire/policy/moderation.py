"""The default content policy: a blocked-term list that sees through common obfuscation, and a
strict reference-image decoder (PNG/JPEG/WebP only, bounded size).

Prompt matching trade-off: terms match whole words of the normalised prompt (case, accents,
leetspeak and punctuation inside words undone), so "therapist", "grape" or "Sussex" pass while
"nudes" and "N.U.D.E" do not. Letters spaced out one by one ("n u d e") are re-joined and searched
as a substring, because a run of single letters is itself a sign of evasion; a genuine spelled-out
sequence that happens to contain a term would be rejected. Words glued to a term ("nudeart") and
misspellings get through: a word list is a floor, and a deployment that needs more plugs in its
own Moderator.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Iterable

import cv2
import numpy as np

from framewire.models.base import Frame
from framewire.policy.base import ContentRejected, InvalidImage

BLOCKED_TERMS: tuple[str, ...] = (
    # sexual content involving minors
    "child porn",
    "child pornography",
    "csam",
    "jailbait",
    "loli",
    "lolicon",
    "shota",
    "shotacon",
    "pedo",
    "pedophile",
    "paedophile",
    "pedophilia",
    "underage nude",
    "underage sex",
    # explicit sexual content and sexual violence
    "nude",
    "naked",
    "nudity",
    "porn",
    "porno",
    "pornography",
    "pornographic",
    "hentai",
    "nsfw",
    "xxx",
    "sex",
    "sexual",
    "topless",
    "genitals",
    "rape",
    "raped",
    "raping",
    "rapist",
    # violent extremism
    "nazi",
    "neo nazi",
    "swastika",
    "heil hitler",
    "sieg heil",
    "kkk",
    "ku klux klan",
    "white power",
    "beheading",
    "behead",
    "school shooting",
    "mass shooting",
    "suicide bomber",
    "terrorist attack",
    # slurs
    "nigger",
    "faggot",
    "kike",
    "retard",
)

MAX_PIXELS = 40_000_000

_LEET_COMMON = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_LEET_FORMS = (
    str.maketrans(_LEET_COMMON | {"1": "i"}),
    str.maketrans(_LEET_COMMON | {"1": "l"}),
)
"""'1' stands for either 'i' or 'l', so each prompt is read both ways."""

_INNER_MARKS = re.compile(r"(?<=[a-z])[.\-_*'`~^+:]+(?=[a-z])")
_REPEATS = re.compile(r"([a-z])\1{2,}")


def _fold(text: str) -> str:
    """Casefold and strip accents, compatibility forms (full-width letters) and invisible
    format characters such as zero-width spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = (c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in kept if unicodedata.category(c) != "Cf").casefold()


def _readings(prompt: str) -> list[list[str]]:
    """The prompt as word lists, once per combination of: the two leetspeak readings; in-word
    punctuation dropped ("n.u.d.e" -> "nude") or read as a space ("sun-kissed"); letters
    repeated three or more times squeezed to one ("nuuude") or kept ("xxx")."""
    folded = _fold(prompt)
    readings = []
    for table in _LEET_FORMS:
        text = folded.translate(table)
        for joined in (_INNER_MARKS.sub("", text), text):
            for variant in (joined, _REPEATS.sub(r"\1", joined)):
                readings.append(re.findall(r"[a-z0-9]+", variant))
    return readings


def _letter_runs(words: list[str]) -> list[str]:
    """Runs of three or more one-character words, joined: "n u d e" -> "nude"."""
    runs: list[str] = []
    current: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1:
            current.append(word)
            continue
        if len(current) >= 3:
            runs.append("".join(current))
        current = []
    return runs


class DefaultModerator:
    """Moderator for deployments without their own: blocked terms plus `extra_terms` (from
    FRAMEWIRE_BLOCKED_TERMS), and strict decoding of reference images."""

    def __init__(self, extra_terms: Iterable[str] = (), max_pixels: int = MAX_PIXELS) -> None:
        terms = {
            " ".join(re.findall(r"[a-z0-9]+", _fold(term).translate(table)))
            for term in (*BLOCKED_TERMS, *extra_terms)
            for table in _LEET_FORMS
        }
        terms.discard("")
        alternatives = "|".join(
            r"\s?".join(map(re.escape, term.split()))
            for term in sorted(terms, key=len, reverse=True)
        )
        self._words = re.compile(rf"\b(?:{alternatives})(?:e?s)?\b")
        self._squashed = tuple(term.replace(" ", "") for term in terms)
        self.max_pixels = max_pixels

    def check_prompt(self, prompt: str) -> None:
        for words in _readings(prompt):
            if self._words.search(" ".join(words)) or any(
                term in run for run in _letter_runs(words) for term in self._squashed
            ):
                raise ContentRejected("the prompt contains a term this service does not allow")

    def decode_image(self, data: bytes) -> Frame:
        width, height = _dimensions(data)
        if width <= 0 or height <= 0:
            raise InvalidImage(f"image header gives an empty size ({width}x{height})")
        if width * height > self.max_pixels:
            raise InvalidImage(
                f"image is {width}x{height}; at most {self.max_pixels / 1e6:g} megapixels allowed"
            )
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise InvalidImage("image data is truncated or corrupt")
        return np.asarray(image, dtype=np.uint8)


def _dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG, JPEG or WebP header, before any pixel is decoded."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InvalidImage("PNG header is truncated or malformed")
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_dimensions(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_dimensions(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        raise InvalidImage("GIF images are not supported; send PNG, JPEG or WebP")
    raise InvalidImage("not a PNG, JPEG or WebP image")


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers (baseline, progressive, ...); C4/C8/CC are other segments."""


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF and position + 9 <= len(data):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        if marker == 0xDA or length < 2:
            break
        position += 2 + length
    raise InvalidImage("JPEG header is truncated or malformed")


def _webp_dimensions(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise InvalidImage("WebP header is truncated or malformed")
