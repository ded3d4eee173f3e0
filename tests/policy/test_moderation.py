"""DefaultModerator: blocked terms through obfuscation, no false alarms, strict image decoding."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from framewire.models.base import Frame
from framewire.policy.base import ContentRejected, InvalidImage
from framewire.policy.moderation import DefaultModerator


@pytest.fixture(scope="module")
def moderator() -> DefaultModerator:
    return DefaultModerator()


@pytest.mark.parametrize(
    "prompt",
    [
        "nude",
        "a NUDE woman",
        "N.U.D.E",
        "n u d e beach",
        "n-u-d-e",
        "nud3",
        "nüde",
        "ñúdé portrait",
        "\uff4e\uff55\uff44\uff45",  # full-width letters
        "nu\u200bde",
        "nuuuude",
        "nudes",
        "p0rn",
        "$ex",
        "s e x",
        "heil hitler",
        "HEILHITLER",
        "child-porn",
        "l0l1",
        "anime, xxx",
    ],
)
def test_blocked_terms_are_caught_through_obfuscation(
    moderator: DefaultModerator, prompt: str
) -> None:
    with pytest.raises(ContentRejected) as raised:
        moderator.check_prompt(prompt)
    assert raised.value.detail


@pytest.mark.parametrize(
    "prompt",
    [
        "Anime style portrait",
        "a sunset over the sea",
        "classic sepia photograph",
        "a therapist's office",
        "grapes in a bowl",
        "Essex countryside",
        "Scunthorpe at dusk",
        "a skyscraper",
        "analysis of a cocktail",
        "class photo, 1920s",
        "4 x 4 truck",
        "I am a cat",
        "sun-kissed beach",
        "Isis the goddess",
        "a denuded hillside",
    ],
)
def test_harmless_prompts_pass(moderator: DefaultModerator, prompt: str) -> None:
    moderator.check_prompt(prompt)


def test_extra_terms_from_config_are_blocked_with_the_same_normalisation() -> None:
    moderator = DefaultModerator(extra_terms=["Zorglub", "  banned phrase ", "c0de 1337"])
    for prompt in [
        "a zorglub",
        "Z0RGLUB",
        "z o r g l u b",
        "banned   phrase",
        "BANNED-PHRASE",
        "code leet",
        "c0de 1337",
    ]:
        with pytest.raises(ContentRejected):
            moderator.check_prompt(prompt)
    moderator.check_prompt("a zorgluborama")
    DefaultModerator().check_prompt("a zorglub")


def encode(ext: str, image: Frame, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(ext, image, params or [])
    assert ok
    return buffer.tobytes()


ENCODINGS: list[tuple[str, list[int] | None]] = [
    (".png", None),
    (".jpg", None),
    (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),  # lossy: VP8 chunk
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless: VP8L chunk
]


@pytest.fixture(scope="module")
def picture() -> Frame:
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :32] = (30, 60, 200)
    image[:, 32:] = (200, 160, 20)
    return image


@pytest.mark.parametrize(("ext", "params"), ENCODINGS)
def test_png_jpeg_and_webp_decode_to_bgr(
    moderator: DefaultModerator, picture: Frame, ext: str, params: list[int] | None
) -> None:
    image = moderator.decode_image(encode(ext, picture, params))
    assert image.shape == picture.shape and image.dtype == np.uint8
    assert np.abs(image.astype(int) - picture).mean() < 10


def test_grey_and_alpha_images_decode_to_three_channels(moderator: DefaultModerator) -> None:
    grey = np.full((8, 6), 128, np.uint8)
    rgba = np.full((8, 6, 4), 200, np.uint8)
    assert moderator.decode_image(encode(".png", grey)).shape == (8, 6, 3)
    assert moderator.decode_image(encode(".png", rgba)).shape == (8, 6, 3)
    lossy_alpha = encode(".webp", rgba, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert lossy_alpha[12:16] == b"VP8X"
    assert moderator.decode_image(lossy_alpha).shape == (8, 6, 3)
    with pytest.raises(InvalidImage, match="6x8"):
        DefaultModerator(max_pixels=47).decode_image(lossy_alpha)


GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "not a PNG, JPEG or WebP"),
        (b"hello, this is not an image at all", "not a PNG, JPEG or WebP"),
        (GIF, "GIF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG header"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG header"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WebP header"),
    ],
)
def test_garbage_gif_and_broken_headers_are_rejected(
    moderator: DefaultModerator, data: bytes, detail: str
) -> None:
    with pytest.raises(InvalidImage, match=detail):
        moderator.decode_image(data)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_truncated_images_are_rejected(
    moderator: DefaultModerator, picture: Frame, ext: str
) -> None:
    data = encode(ext, picture)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        moderator.decode_image(data[: len(data) * 2 // 3])


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a size; its pixel data never needs to exist."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def test_oversized_images_are_rejected_from_the_header(moderator: DefaultModerator) -> None:
    with pytest.raises(InvalidImage, match="40 megapixels"):
        moderator.decode_image(png_header(10_000, 5_000))


@pytest.mark.parametrize(("ext", "params"), ENCODINGS)
def test_pixel_limit_reads_each_format_header(
    picture: Frame, ext: str, params: list[int] | None
) -> None:
    data = encode(ext, picture, params)
    assert DefaultModerator(max_pixels=64 * 48).decode_image(data).shape == picture.shape
    with pytest.raises(InvalidImage, match="64x48"):
        DefaultModerator(max_pixels=64 * 48 - 1).decode_image(data)
