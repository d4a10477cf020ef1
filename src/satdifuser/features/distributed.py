"""Who am I among the extraction processes: rank, world size, and collective agreement.

Works with an initialised ``torch.distributed`` process group (torchrun, Lightning DDP, srun with
a rendezvous) and without one (ranks given explicitly, e.g. a job array where every task runs
``satdifuser extract --rank R --world-size W``); in the latter case there are no collectives and
the last rank to finish writes the index.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class RankInfo:
    """Position of this process.

    Args:
        rank: Global rank, 0 <= rank < world_size.
        world_size: Number of processes sharing the work.
        local_rank: Rank on this node (picks the GPU).
        collective: True when a ``torch.distributed`` group is initialised (barriers work).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    collective: bool = False

    def owns(self, shard: int) -> bool:
        """Shard ``k`` is extracted by rank ``k % world_size``."""
        return shard % self.world_size == self.rank


def current_rank(
    rank: int | None = None, world_size: int | None = None, local_rank: int | None = None
) -> RankInfo:
    """This process's :class:`RankInfo`: the process group if initialised, else the arguments.

    Raises:
        ValueError: When the explicit ``rank`` is outside ``[0, world_size)``.
    """
    if dist.is_available() and dist.is_initialized():
        r, w = dist.get_rank(), dist.get_world_size()
        n_gpu = torch.cuda.device_count()
        lr = local_rank if local_rank is not None else (r % n_gpu if n_gpu else 0)
        return RankInfo(r, w, lr, collective=w > 1)
    r = 0 if rank is None else int(rank)
    w = 1 if world_size is None else int(world_size)
    if w < 1 or not 0 <= r < w:
        from satdifuser.errors import ConfigError

        raise ConfigError(
            f"rank {r} is not in [0, world_size={w}); give 0 <= rank < world_size "
            "(torchrun sets RANK/WORLD_SIZE for you)"
        )
    return RankInfo(r, w, r if local_rank is None else int(local_rank), collective=False)


def barrier(info: RankInfo) -> None:
    """Wait for all ranks (no-op without a process group)."""
    if info.collective:
        dist.barrier()


def all_ok(info: RankInfo, ok: bool) -> bool:
    """True when ``ok`` holds on every rank (a collective; plain ``ok`` without a group)."""
    if not info.collective:
        return ok
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else "cpu"
    flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


__all__ = ["RankInfo", "all_ok", "barrier", "current_rank"]
