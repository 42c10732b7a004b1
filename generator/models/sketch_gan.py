"""Sketch <-> anime face CycleGAN, sized for a 2-core CPU.

Sketches are 1 channel, dark ink (-1) on white paper (+1), 64x64; faces are
RGB in [-1, 1]. Two generators and two PatchGAN discriminators:

- ``SketchToFace`` (G, the one that is served): a small U-Net whose decoder and
  bottleneck are modulated (AdaIN) by a style vector made from the hair/eye
  condition and a noise vector z, plus the condition itself. The public
  sketch-to-anime CycleGAN had no noise and no colour input, so it painted
  every sketch in the same colours; here the tags choose the colours and z the
  rendering. ~0.27 GFLOP per face, where the public ResNet-9 generator costs 6.2.
- ``FaceToSketch`` (F): the same U-Net, narrower and unconditioned, 1 channel out.
- ``PatchDiscriminator`` (D_sketch) and ``FaceDiscriminator`` (D_face): spectrally
  normalised PatchGANs (8x8 patch logits); D_face adds ACGAN-style hair and eye
  classifiers that read the whole 8x8 feature map, trained on real faces' tags,
  so that G can be pushed to paint colours that read as the requested ones
  where a face has them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class SketchGANConfig:
    n_hair: int = 12
    n_eye: int = 10
    z_dim: int = 32
    style_dim: int = 128  # the (tags, z) style vector that modulates G
    g_ch: int = 32        # G's width at 32x32; doubles per step down to 8x8
    f_ch: int = 16        # F's width at 32x32
    d_ch: int = 32        # both discriminators' width at 32x32

    def to_dict(self, arch: str = "sketch2face") -> dict:
        """The weights-file config; ``arch`` names which network the file holds (sketch2face or face2sketch)."""
        return {"arch": arch, **asdict(self)}


class AdaIN(nn.Module):
    """Instance norm whose scale and shift come from a style vector; with ``style_dim`` 0, a learned affine.

    Instance (not batch) statistics: a lone sketch at serving time is normalised
    exactly as in training, and no running statistics need re-estimating.
    """

    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=style_dim == 0)
        self.affine = nn.Linear(style_dim, 2 * channels) if style_dim else None
        if self.affine is not None:
            nn.init.zeros_(self.affine.bias)  # scale 1, shift 0 on average; the weights keep their random init

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        x = self.norm(x)
        if self.affine is None:
            return x
        gamma, beta = self.affine(style)[:, :, None, None].chunk(2, 1)
        return x * (1 + gamma) + beta


class ResBlock(nn.Module):
    """Two modulated 3x3 convs with a skip: the bottleneck's capacity at 8x8, where it is cheap."""

    def __init__(self, ch: int, style_dim: int):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(ch, ch, 3, 1, 1), AdaIN(ch, style_dim)
        self.conv2, self.norm2 = nn.Conv2d(ch, ch, 3, 1, 1), AdaIN(ch, style_dim)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        h = F.leaky_relu(self.norm1(self.conv1(x), style), 0.2)
        return x + self.norm2(self.conv2(h), style)


class UpBlock(nn.Module):
    """Nearest 2x upsampling, concatenation of the encoder's skip, a modulated 3x3 conv (no checkerboard)."""

    def __init__(self, cin: int, cskip: int, cout: int, style_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(cin + cskip, cout, 3, 1, 1)
        self.norm = AdaIN(cout, style_dim)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        x = torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], 1)
        return F.leaky_relu(self.norm(self.conv(x), style), 0.2)


class UNet(nn.Module):
    """64x64 encoder/decoder with skips; ``style`` (or None when ``style_dim`` is 0) modulates the bottom half."""

    def __init__(self, cin: int, cout: int, ch: int, style_dim: int):
        super().__init__()
        self.down = nn.ModuleList([
            nn.Conv2d(cin, ch, 4, 2, 1),           # (B, c, 32, 32)
            nn.Conv2d(ch, 2 * ch, 4, 2, 1),        # (B, 2c, 16, 16)
            nn.Conv2d(2 * ch, 4 * ch, 4, 2, 1),    # (B, 4c, 8, 8)
        ])
        self.down_norms = nn.ModuleList([nn.InstanceNorm2d(c, affine=True) for c in (2 * ch, 4 * ch)])
        self.res = nn.ModuleList([ResBlock(4 * ch, style_dim) for _ in range(2)])  # (B, 4c, 8, 8)
        self.up = nn.ModuleList([
            UpBlock(4 * ch, 2 * ch, 2 * ch, style_dim),   # (B, 2c, 16, 16)
            UpBlock(2 * ch, ch, ch, style_dim),           # (B, c, 32, 32)
            UpBlock(ch, cin, ch // 2, style_dim),         # (B, c/2, 64, 64): the input itself is the last skip
        ])
        self.out = nn.Conv2d(ch // 2, cout, 3, 1, 1)      # (B, cout, 64, 64)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        skips = [x]
        h = F.leaky_relu(self.down[0](x), 0.2)
        for conv, norm in zip(self.down[1:], self.down_norms):
            skips.append(h)
            h = F.leaky_relu(norm(conv(h)), 0.2)
        for block in self.res:
            h = block(h, style)
        for block in self.up:
            h = block(h, skips.pop(), style)
        return torch.tanh(self.out(h))


class SketchToFace(nn.Module):
    """G: sketch + hair/eye condition + noise -> face."""

    def __init__(self, cfg: SketchGANConfig):
        super().__init__()
        self.cfg = cfg
        self.style = nn.Sequential(
            nn.Linear(cfg.z_dim + cfg.n_hair + cfg.n_eye, cfg.style_dim), nn.LeakyReLU(0.2),
            nn.Linear(cfg.style_dim, cfg.style_dim), nn.LeakyReLU(0.2),
        )
        self.net = UNet(1, 3, cfg.g_ch, cfg.style_dim + cfg.n_hair + cfg.n_eye)

    def forward(self, sketch: torch.Tensor, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """sketch (B, 1, 64, 64) ink -1 on paper +1; z (B, z_dim); cond (B, n_hair + n_eye) one-hots
        (see ``generator.models.tag_condition``) -> face (B, 3, 64, 64) in [-1, 1]."""
        # the tags also reach every AdaIN directly, as in the face generator's conditional BN: colours are learnt
        # several times faster than through the style MLP alone
        style = torch.cat([self.style(torch.cat([z, cond], 1)), cond], 1)  # (B, style_dim + n_hair + n_eye)
        return self.net(sketch, style)


class FaceToSketch(nn.Module):
    """F: face -> sketch (1 channel, ink -1 on paper +1); used for training the cycle, not served."""

    def __init__(self, cfg: SketchGANConfig):
        super().__init__()
        self.cfg = cfg
        self.net = UNet(3, 1, cfg.f_ch, 0)

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        return self.net(face, None)


class PatchDiscriminator(nn.Module):
    """D_sketch (and D_face's trunk): realness per overlapping ~22 px patch, an (B, 1, 8, 8) map."""

    def __init__(self, cin: int, ch: int):
        super().__init__()
        self.features = nn.Sequential(
            spectral_norm(nn.Conv2d(cin, ch, 4, 2, 1)), nn.LeakyReLU(0.2),         # (B, c, 32, 32)
            spectral_norm(nn.Conv2d(ch, 2 * ch, 4, 2, 1)), nn.LeakyReLU(0.2),      # (B, 2c, 16, 16)
            spectral_norm(nn.Conv2d(2 * ch, 4 * ch, 4, 2, 1)), nn.LeakyReLU(0.2),  # (B, 4c, 8, 8)
        )
        self.patch = spectral_norm(nn.Conv2d(4 * ch, 1, 3, 1, 1))                 # (B, 1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch(self.features(x))


class FaceDiscriminator(PatchDiscriminator):
    """D_face: patch realness plus hair and eye classifiers on the flattened 8x8 feature map.

    Position-aware on purpose: the faces are aligned crops, so eye colour is read at eye height. With pooled
    (position-free) features G learnt to paint a blob of the eye colour in a corner of the faces it drew from
    doodles, which a pooled classifier reads as the eye colour."""

    def __init__(self, cfg: SketchGANConfig, whole_face: bool = False):
        super().__init__(3, cfg.d_ch)
        feat = 4 * cfg.d_ch * 8 * 8
        self.cls_hair = nn.Linear(feat, cfg.n_hair)
        self.cls_eye = nn.Linear(feat, cfg.n_eye)
        # a ~22 px patch cannot see that a head circle runs across the face, or that the eyes are blobs where
        # a face has eyes: one realness score of the whole face, added to every patch's
        self.whole = spectral_norm(nn.Linear(feat, 1)) if whole_face else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(patch logits (B, 1, 8, 8), hair logits (B, n_hair), eye logits (B, n_eye))."""
        return self.heads(self.features(x))

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward`` from the (B, 4c, 8, 8) features, for a loss that reads the features too."""
        patch = self.patch(h) if self.whole is None else self.patch(h) + self.whole(h.flatten(1))[:, :, None, None]
        return patch, self.cls_hair(h.flatten(1)), self.cls_eye(h.flatten(1))
