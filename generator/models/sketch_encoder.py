"""Sketch -> latent: the face generator draws the face a drawing asks for (issue #17, 2b).

``SketchEncoder`` reads a /sketch input (1 channel, 64x64, ink -1 on paper +1) with four strided convs down
to 4x4 and a linear head on the flattened map (positions matter: where the eyes are drawn), and predicts a
Gaussian over the face generator's latent: a mean and a log-variance per dimension. The latent drawn is
the mean's direction mixed with the request's own latent (its seed, scaled by the predicted spread) at a
set share, on the shell of norm sqrt(z_dim) where a Gaussian latent lies, so the generator only ever sees
in-distribution latents: the drawing sets the face, the seed varies it (and keeps faces from different
doodles, which say little, from all looking alike). Colours never come from the drawing: they are the
request's condition, as for /waifu. 31 MFLOP per drawing, 1.2M parameters.

``EncodedSketchToFace`` is what the sketch kind serves: encoder then face generator, with the sketch
network's call signature ``(sketch, z, cond) -> face``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SketchEncoderConfig:
    z_dim: int = 128   # the face generator's latent size
    ch: int = 24       # width at 32x32; doubles per step down to 4x4
    noise: float = 0.6  # share of the seed's latent in the latent drawn (0: the drawing alone decides)

    def to_dict(self) -> dict:
        return {"arch": "sketch-encoder", **asdict(self)}


class SketchEncoder(nn.Module):
    def __init__(self, cfg: SketchEncoderConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.ch
        layers: list[nn.Module] = []
        for cin, cout in ((1, c), (c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c)):  # 32, 16, 8, 4 px
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(8 * c * 16, 2 * cfg.z_dim)

    def forward(self, sketch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 64, 64) sketches -> (mean, log-variance), each (B, z_dim)."""
        mean, log_var = self.head(self.features(sketch).flatten(1)).chunk(2, 1)
        return mean, log_var.clamp(-8, 2)

    def latent(self, sketch: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """The latent to draw, on the prior's shell: the mean's direction, with ``noise`` (B, z_dim, the seed's
        latent) scaled by the predicted spread mixed in at the config's ``noise`` share s (cos/sin weights
        sqrt(1 - s^2) and s, so s alone sets how far the seed moves the face from the drawing's)."""
        mean, log_var = self(sketch)
        z = on_prior_shell(mean)
        if noise is None or self.cfg.noise == 0:
            return z
        s = self.cfg.noise
        return on_prior_shell((1 - s * s) ** 0.5 * z + s * noise * (0.5 * log_var).exp())


def on_prior_shell(z: torch.Tensor) -> torch.Tensor:
    """Latents rescaled to norm sqrt(z_dim), where nearly all of a standard Gaussian's mass lies."""
    return F.normalize(z, dim=1) * z.shape[1] ** 0.5


class EncodedSketchToFace(nn.Module):
    """Encoder + face generator behind the sketch network's signature."""

    def __init__(self, encoder: SketchEncoder, face: nn.Module):
        super().__init__()
        self.cfg = encoder.cfg
        self.encoder, self.face = encoder, face

    def forward(self, sketch: torch.Tensor, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """sketch (B, 1, 64, 64), z (B, z_dim) the seed's latent, cond (B, n_hair + n_eye) -> (B, 3, 64, 64)."""
        return self.face(self.encoder.latent(sketch, z), cond)
