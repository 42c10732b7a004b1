"""Compiled inference for large batches, checked against eager, with eager as the exact fallback.

On this CPU ``torch.compile`` (inductor) draws a batch of 256 faces about twice as fast as eager
PyTorch, but every batch shape compiles on its own (tens of seconds on 2 cores). So large batches are
padded up to a few bucket sizes; the buckets compile in a background thread while eager serves; and a
compiled bucket is used only after its output matched eager's within ``atol`` on a probe batch.
Small batches stay eager: there compile gains little and padding would waste most of the work.
"""

from __future__ import annotations

import logging
import threading

import torch

from generator.images import to_uint8
from generator.sampler import FaceSampler
from generator.tags import N_EYE, N_HAIR

log = logging.getLogger(__name__)


class FastDrawer:
    def __init__(self, sampler: FaceSampler, buckets: tuple[int, ...] = (64, 256), atol: float = 1e-4):
        self.sampler = sampler
        self.buckets = tuple(sorted(buckets))
        self.atol = atol
        self.ready: dict[int, torch.nn.Module] = {}  # bucket -> compiled generator that passed the check
        self._compiled = None

    def start_compiling(self) -> threading.Thread:
        thread = threading.Thread(target=self._compile_all, name="compile-generator", daemon=True)
        thread.start()
        return thread

    def _compile_all(self) -> None:
        try:
            self._compiled = torch.compile(self.sampler.G, dynamic=False)
        except Exception as e:  # no compiler here: eager it is
            log.warning("torch.compile unavailable, drawing eagerly: %s", e)
            return
        g = torch.Generator().manual_seed(0)
        for bucket in self.buckets:
            z = torch.randn(bucket, self.sampler.z_dim, generator=g).to(self.sampler.device)
            cond = torch.zeros(bucket, N_HAIR + N_EYE, device=self.sampler.device)
            cond[torch.arange(bucket), torch.arange(bucket) % N_HAIR] = 1
            cond[torch.arange(bucket), N_HAIR + torch.arange(bucket) % N_EYE] = 1
            try:
                with torch.inference_mode():
                    diff = float((self._compiled(z, cond) - self.sampler.G(z, cond)).abs().max())
            except Exception as e:
                log.warning("compiling batch %d failed, it stays eager: %s", bucket, e)
                continue
            if diff <= self.atol:
                self.ready[bucket] = self._compiled
            else:
                log.warning("compiled batch %d differs from eager by %.2g > %.2g: it stays eager", bucket, diff,
                            self.atol)

    def bucket_for(self, rows: int) -> int | None:
        """The smallest compiled bucket that holds ``rows`` without padding more than 2x."""
        for b in self.buckets:
            if b in self.ready and rows <= b < 2 * rows:
                return b
        return None

    @torch.inference_mode()
    def draw(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        bucket = self.bucket_for(len(z))
        if bucket is None:
            return self.sampler.draw(z, cond)
        pad = bucket - len(z)
        dev = self.sampler.device
        zp = torch.cat([z.to(dev), torch.zeros(pad, z.shape[1], device=dev)])
        cp = torch.cat([cond.to(dev), torch.zeros(pad, cond.shape[1], device=dev)])
        return to_uint8(self.ready[bucket](zp, cp)[:len(z)])
