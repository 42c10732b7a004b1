"""The original public anime ACGAN, kept as a preset to compare against on the same data.

Generator: concat(100-dim noise, 22-dim hair+eye one-hot) -> transposed convs
1024->512->256->128 (4x4 up to 32x32, BatchNorm+ReLU) -> RGB 64x64 Tanh.
Discriminator: convs 128 (no norm) ->256->512->1024 (BatchNorm, LeakyReLU 0.2)
with a real/fake head and a 22-way sigmoid classifier head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class SeedACGANConfig:
    n_hair: int = 12
    n_eye: int = 10
    z_dim: int = 100

    def to_dict(self) -> dict:
        return {"arch": "seed-acgan", **asdict(self)}


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class Generator(nn.Module):
    def __init__(self, cfg: SeedACGANConfig):
        super().__init__()
        self.cfg = cfg
        n_cond = cfg.n_hair + cfg.n_eye
        self.net = nn.Sequential(
            nn.ConvTranspose2d(cfg.z_dim + n_cond, 1024, 4, 1, 0, bias=False),
            nn.BatchNorm2d(1024), nn.ReLU(True),        # (B, 1024, 4, 4)
            *_up(1024, 512),                            # (B, 512, 8, 8)
            *_up(512, 256),                             # (B, 256, 16, 16)
            *_up(256, 128),                             # (B, 128, 32, 32)
            nn.ConvTranspose2d(128, 3, 4, 2, 1), nn.Tanh(),  # (B, 3, 64, 64)
        )

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``cond`` is the (B, 22) hair and eye one-hots."""
        return self.net(torch.cat([z, cond], 1)[:, :, None, None])


def _down(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]


class Discriminator(nn.Module):
    def __init__(self, cfg: SeedACGANConfig):
        super().__init__()
        self.cfg = cfg
        self.features = nn.Sequential(
            nn.Conv2d(3, 128, 4, 2, 1), nn.LeakyReLU(0.2, True),  # (B, 128, 32, 32)
            *_down(128, 256),                                     # (B, 256, 16, 16)
            *_down(256, 512),                                     # (B, 512, 8, 8)
            *_down(512, 1024),                                    # (B, 1024, 4, 4)
        )
        self.adv = nn.Conv2d(1024, 1, 4)
        self.cls = nn.Conv2d(1024, cfg.n_hair + cfg.n_eye, 4)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (real/fake logit, 22 tag logits); the sigmoids live in the BCE-with-logits losses."""
        h = self.features(img)
        return self.adv(h).flatten(), self.cls(h).flatten(1)


def init_weights(m: nn.Module) -> None:
    """DCGAN initialisation, as the public ACGAN used."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
