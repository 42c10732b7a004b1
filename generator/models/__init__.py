"""One model family per file; each file imports only torch."""

import torch
import torch.nn.functional as F


def tag_condition(hair: torch.Tensor, eye: torch.Tensor, n_hair: int = 12, n_eye: int = 10) -> torch.Tensor:
    """The (B, n_hair + n_eye) float one-hot condition that every face generator takes."""
    return torch.cat([F.one_hot(hair, n_hair), F.one_hot(eye, n_eye)], 1).float()
