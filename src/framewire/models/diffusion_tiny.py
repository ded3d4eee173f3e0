"""Tiny random-weight diffusers components, built from configs and saved in the layout the
`diffusers` backend reads (unet/, text_encoder/, tokenizer/, scheduler/ and a tiny autoencoder):
the real loading and inference code runs on the CPU, nothing downloaded. The tests and
`bench/models.py` use them; so can a deployment checking its wiring before the weights arrive:

    python -m framewire.models.diffusion_tiny /tmp/tiny-diffusion   # prints a models file table

The pictures are noise-coloured: the weights are random.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import diffusers
import torch
from transformers import CLIPTextConfig, CLIPTextModel


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (GPT-2 / CLIP)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    kept += range(ord("®"), ord("ÿ") + 1)
    extra = [b for b in range(256) if b not in kept]
    return [chr(b) for b in kept] + [chr(256 + n) for n in range(len(extra))]


def _tokenizer(folder: Path) -> None:
    """A character-level CLIP vocabulary (no merges): every prompt tokenizes, differently."""
    folder.mkdir(parents=True)
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    config = {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def build(root: Path) -> tuple[Path, Path]:
    """Write the components under `root`; returns (model directory, tiny autoencoder directory)."""
    torch.manual_seed(0)
    parts: Any = diffusers  # partly untyped
    parts.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    ).save_pretrained(root / "model" / "unet")
    CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=520,
            max_position_embeddings=77,
            bos_token_id=512,
            eos_token_id=513,
            pad_token_id=513,
        )
    ).save_pretrained(root / "model" / "text_encoder")
    parts.EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
    ).save_pretrained(root / "model" / "scheduler")
    _tokenizer(root / "model" / "tokenizer")
    parts.AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16),
        decoder_block_out_channels=(16, 16, 16, 16),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
    ).save_pretrained(root / "taesd")
    return root / "model", root / "taesd"


MODELS_TABLE = """[models.tiny_diffusion]
backend = "diffusers"
width = 128
height = 96
fps = 8
accepts_image = true
[models.tiny_diffusion.options]
model = "{model}"
tiny_vae = "{vae}"
"""


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m framewire.models.diffusion_tiny DIRECTORY", file=sys.stderr)
        return 2
    model, vae = build(Path(argv[0]))
    print(MODELS_TABLE.format(model=model, vae=vae), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
