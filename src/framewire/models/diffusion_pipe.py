"""The torch side of the `diffusers` backend: loading the components and the single-step
image-to-image batch. Imported only when a diffusers model id warms up (optional extra)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import cv2
import numpy as np

from framewire.models.base import Frame
from framewire.models.diffusion import DiffusionOptions

try:
    import torch
    from diffusers import AutoencoderTiny, UNet2DConditionModel
    from diffusers.schedulers import DDPMScheduler
    from transformers import CLIPTextModel, CLIPTokenizer
except ImportError as missing:  # the extra is not installed
    raise ImportError(
        f"the diffusers backend needs: pip install 'framewire[diffusers]' ({missing})"
    ) from missing


class TurboPipe:
    """Single-step img2img on fixed noise: encode, noise to one timestep, one UNet step, decode."""

    def __init__(
        self,
        options: DiffusionOptions,
        parts: dict[str, Any],
        device: torch.device,
        shape: tuple[int, int],
    ) -> None:
        self.options = options
        self.device = device
        self.dtype = torch.float16 if device.type == "cuda" else torch.float32
        self.unet, self.vae = parts["unet"], parts["vae"]
        self.text_encoder, self.tokenizer = parts["text_encoder"], parts["tokenizer"]
        scheduler = parts["scheduler"]
        train_steps = int(scheduler.config.num_train_timesteps)
        self.timestep = max(0, min(train_steps - 1, round(options.strength * train_steps) - 1))
        alpha = float(scheduler.alphas_cumprod[self.timestep])
        self.keep, self.noise_scale = math.sqrt(alpha), math.sqrt(1.0 - alpha)
        self.v_prediction = scheduler.config.prediction_type == "v_prediction"
        self.scaling = float(self.vae.config.scaling_factor)
        height, width = shape
        generator = torch.Generator("cpu").manual_seed(options.seed)
        latent_shape = (1, int(self.unet.config.in_channels), height // 8, width // 8)
        self.noise = torch.randn(latent_shape, generator=generator).to(device, self.dtype)

    @classmethod
    def load(cls, options: DiffusionOptions, width: int, height: int) -> TurboPipe:
        """Read every component from disk or the local model cache; never downloads."""
        device = torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        local: dict[str, Any] = {"local_files_only": True}
        parts: dict[str, Any] = {
            "unet": cast(Any, UNet2DConditionModel).from_pretrained(
                options.model, subfolder="unet", torch_dtype=dtype, **local
            ),
            "vae": cast(Any, AutoencoderTiny).from_pretrained(
                options.tiny_vae, torch_dtype=dtype, **local
            ),
            "text_encoder": CLIPTextModel.from_pretrained(
                options.model, subfolder="text_encoder", **local
            ),
            "tokenizer": CLIPTokenizer.from_pretrained(
                options.model, subfolder="tokenizer", **local
            ),
            "scheduler": cast(Any, DDPMScheduler).from_pretrained(
                options.model, subfolder="scheduler", **local
            ),
        }
        parts["text_encoder"] = parts["text_encoder"].to(dtype)
        for name in ("unet", "vae", "text_encoder"):
            parts[name] = parts[name].to(device).eval().requires_grad_(False)
        return cls(options, parts, device, (height, width))

    @torch.inference_mode()
    def embed(self, prompt: str) -> torch.Tensor:
        """Prompt embeddings, shape (1, tokens, dim)."""
        length = min(
            int(self.tokenizer.model_max_length),
            int(self.text_encoder.config.max_position_embeddings),
        )
        ids = self.tokenizer(
            prompt, padding="max_length", max_length=length, truncation=True, return_tensors="pt"
        ).input_ids.to(self.device)
        hidden: torch.Tensor = self.text_encoder(ids)[0]
        return hidden

    def _to_tensor(self, images: Sequence[Frame]) -> torch.Tensor:
        batch = torch.from_numpy(np.stack(images)).to(self.device)
        return batch.permute(0, 3, 1, 2).to(self.dtype).div(127.5).sub(1.0)

    @torch.inference_mode()
    def encode_reference(self, rgb: Frame, width: int, height: int) -> torch.Tensor:
        """A reference image's latents at the model's size, shape (1, C, h, w)."""
        fitted = np.asarray(
            cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=cv2.INTER_AREA),
            dtype=np.uint8,
        )
        latents: torch.Tensor = self.vae.encode(self._to_tensor([fitted])).latents
        return latents * self.scaling

    @torch.inference_mode()
    def img2img(
        self,
        frames: Sequence[Frame],
        embeddings: Sequence[torch.Tensor],
        references: Sequence[torch.Tensor | None],
    ) -> list[Frame]:
        """RGB frames -> RGB frames, one UNet call for the whole batch."""
        latents = self.vae.encode(self._to_tensor(frames)).latents * self.scaling
        weight = self.options.image_strength
        mixed = [
            lat if ref is None else (1.0 - weight) * lat + weight * ref[0]
            for lat, ref in zip(latents, references, strict=True)
        ]
        clean = torch.stack(mixed)
        noisy = self.keep * clean + self.noise_scale * self.noise
        context = torch.cat(list(embeddings))
        predicted = self.unet(noisy, self.timestep, encoder_hidden_states=context).sample
        if self.v_prediction:
            denoised = self.keep * noisy - self.noise_scale * predicted
        else:
            denoised = (noisy - self.noise_scale * predicted) / self.keep
        images = self.vae.decode(denoised / self.scaling).sample
        pixels = images.add(1.0).mul(127.5).clamp(0, 255).round().to(torch.uint8)
        array = pixels.permute(0, 2, 3, 1).cpu().numpy()
        return [np.ascontiguousarray(image) for image in array]
