"""The 2x anime-face upscaler: 64 px faces in, 128 px faces out.

A compact SR network in the style of Real-ESRGAN's SRVGGNetCompact: a plain stack
of 3x3 convs with PReLU at the input resolution (all the work happens at 64x64,
where it is cheap), a pixel shuffle to 128x128, and the nearest-neighbour
enlargement of the input added back, so the network only draws the detail that
enlargement lacks. Unconditioned: the colours are already in the 64 px face.

``PatchDiscriminator`` judges 128 px faces patch by patch; it keeps the
upscaler from settling on the blurry average that an L1 loss alone rewards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class UpscalerConfig:
    ch: int = 32      # feature width at 64x64
    convs: int = 8    # 3x3 convs in the body
    d_ch: int = 32    # discriminator width at 64x64

    def to_dict(self) -> dict:
        return {"arch": "upscaler", **asdict(self)}


Config = UpscalerConfig  # what a training preset builds, by the same name in every model file


class Upscaler(nn.Module):
    def __init__(self, cfg: UpscalerConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [nn.Conv2d(3, cfg.ch, 3, 1, 1), nn.PReLU(cfg.ch)]  # (B, ch, 64, 64)
        for _ in range(cfg.convs):
            layers += [nn.Conv2d(cfg.ch, cfg.ch, 3, 1, 1), nn.PReLU(cfg.ch)]
        layers += [nn.Conv2d(cfg.ch, 3 * 4, 3, 1, 1), nn.PixelShuffle(2)]  # (B, 3, 128, 128)
        self.body = nn.Sequential(*layers)
        nn.init.zeros_(self.body[-2].weight)  # starts as plain enlargement
        nn.init.zeros_(self.body[-2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 64, 64) faces in [-1, 1] -> (B, 3, 128, 128) faces in [-1, 1]."""
        return (self.body(x) + F.interpolate(x, scale_factor=2.0, mode="nearest")).clamp(-1, 1)


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: UpscalerConfig):
        super().__init__()
        c = cfg.d_ch
        sn = spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, c, 4, 2, 1)), nn.LeakyReLU(0.2),          # (B, c, 64, 64)
            sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2),      # (B, 2c, 32, 32)
            sn(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2),  # (B, 4c, 16, 16)
            sn(nn.Conv2d(4 * c, 4 * c, 3, 1, 1)), nn.LeakyReLU(0.2),  # (B, 4c, 16, 16)
            sn(nn.Conv2d(4 * c, 1, 3, 1, 1)),                         # (B, 1, 16, 16) patch logits
        )

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img)
