"""Models the bundle tests log by pickle, importable by the Ray workers that load them."""

from __future__ import annotations

import torch


class Branchy(torch.nn.Module):
    """Control flow that depends on the data: tracing records only the branch the input
    example took, so the traced bundle answers differently on other inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return -x
