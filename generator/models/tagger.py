"""The evaluation classifier: reads hair and eye colour off a 64x64 face.

It is the project's yardstick (generated faces are judged by whether it reads
the requested colours) and the auto-tagger for untagged uploads. Its pooled
features also serve as the embedding for the Fréchet distance and diversity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class TaggerConfig:
    n_hair: int = 12
    n_eye: int = 10
    ch: int = 32
    feature_dim: int = 256

    def to_dict(self) -> dict:
        return {"arch": "tagger", **asdict(self)}


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
        nn.MaxPool2d(2),
    )


class Tagger(nn.Module):
    def __init__(self, cfg: TaggerConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.ch
        self.features = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True),  # (B, c, 32, 32)
            _block(c, c),                          # (B, c, 16, 16)
            _block(c, 2 * c),                      # (B, 2c, 8, 8)
            _block(2 * c, cfg.feature_dim // 2),   # (B, F/2, 4, 4)
        )
        self.head_hair = nn.Linear(cfg.feature_dim, cfg.n_hair)
        self.head_eye = nn.Linear(cfg.feature_dim, cfg.n_eye)

    def embed(self, img: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, feature_dim): mean and max over the 4x4 map, so eyes are not averaged away."""
        h = self.features(img)
        return torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.embed(img)
        return self.head_hair(f), self.head_eye(f)
