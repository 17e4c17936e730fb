"""Several processes on one machine (DDP under torchrun): ranks, reductions, agreement.

Rank 0 alone writes the run directory; every decision that ends or pauses the loop
(stop, checkpoint by time) is agreed on by all ranks at log-interval boundaries, so
they always take the same number of steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over all ranks in place (a no-op alone)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Per flag, whether any rank raised it."""
        if not self.distributed:
            return flags
        tensor = torch.tensor([float(f) for f in flags], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def ranks_from_env() -> Ranks:
    """Ranks as torchrun sets them (RANK, WORLD_SIZE, LOCAL_RANK); one process otherwise."""
    return Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def init(ranks: Ranks, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo on the CPU."""
    if ranks.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                rank=ranks.rank, world_size=ranks.world_size)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def error_file(run_path: os.PathLike[str] | str, rank: int) -> str:
    """Where a failing worker leaves its error line for the launcher to report."""
    return os.path.join(run_path, f".rank{rank}.error")
