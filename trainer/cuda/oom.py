"""Out-of-memory recognition and back-off: lower the batch size and carry on from the same step."""

from __future__ import annotations

import gc
import os

import torch

# The messages Lightning's and accelerate's batch-size finders treat as "out of memory".
_OOM_MESSAGES = (
    "CUDA out of memory.",
    "CUDA error: out of memory",
    "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED.",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "DefaultCPUAllocator: can't allocate memory",
    "XPU out of memory.",
)

BACKOFF_FACTOR = 0.75
INJECT_ENV = "VOXTOP_INJECT_OOM_ABOVE"


def is_oom_error(exc: BaseException) -> bool:
    """Whether `exc` means the device ran out of memory (and a smaller batch may fit)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and len(exc.args) == 1 and any(
        message in str(exc.args[0]) for message in _OOM_MESSAGES)


def free_memory() -> None:
    """Release what the failed step held, so the retry starts from a clean allocator."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def smaller_batch(batch_size: int) -> int | None:
    """The next batch size to try (32 → 24 → 18 → ...), or None below 1."""
    if batch_size <= 1:
        return None
    return max(1, min(batch_size - 1, int(batch_size * BACKOFF_FACTOR)))


def injected_limit() -> int | None:
    """Fault injection for tests on CPU: batches above this size fail as if out of memory."""
    value = os.environ.get(INJECT_ENV, "")
    return int(value) if value.strip().isdigit() else None


def check_injected(batch_size: int, limit: int | None) -> None:
    if limit is not None and batch_size > limit:
        raise torch.OutOfMemoryError(
            f"CUDA out of memory. Tried to allocate a batch of {batch_size} clips "
            f"(injected by {INJECT_ENV}={limit})")


CRASH_ENV = "VOXTOP_INJECT_CRASH"


def check_injected_crash(rank: int, step: int) -> None:
    """Fault injection for tests: `VOXTOP_INJECT_CRASH=RANK:STEP` fails that rank at that step."""
    value = os.environ.get(CRASH_ENV, "")
    if value and value == f"{rank}:{step}":
        raise RuntimeError(f"injected failure in rank {rank} at step {step} ({CRASH_ENV})")
