"""Device selection and GPU pinning for concurrent training jobs.

Snakemake's ``--resources gpu=2`` caps how many ``gpu=1`` jobs run at once but does not say *which*
GPU each may use. Each training process therefore claims one GPU with an exclusive, non-blocking
``flock`` on a per-GPU lock file and holds it for its lifetime: two concurrent jobs can never share
a device, and a crashed job releases its claim automatically (the kernel drops flocks on exit).
Lock files are named after the *physical* GPU id (the entry of ``CUDA_VISIBLE_DEVICES`` when a
cluster scheduler has restricted visibility), so jobs on one node agree on what "GPU 1" means.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import torch

LOG = logging.getLogger(__name__)
DEFAULT_LOCK_DIR = Path(os.environ.get("CONNECTOME_BPU_GPU_LOCK_DIR", "/tmp/connectome-bpu-gpu-locks"))


@dataclass
class DeviceClaim:
    device: torch.device
    physical_id: str | None = None
    handle: IO | None = None      # the open, locked file; closing it releases the GPU

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def physical_gpu_ids(count: int) -> list[str]:
    """Physical ids of the ``count`` visible GPUs (``CUDA_VISIBLE_DEVICES`` order when it is set)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    return ids[:count] if len(ids) >= count else [str(i) for i in range(count)]


def claim_gpu(count: int, *, lock_dir: Path = DEFAULT_LOCK_DIR, wait_seconds: float = 600.0,
              poll_seconds: float = 0.5) -> tuple[int, str, IO]:
    """Lock one of ``count`` GPUs; returns (visible index, physical id, open lock file).

    Start the search at a pid-dependent offset so simultaneous starters rarely contend for GPU 0.
    Waits (polling) when every GPU is claimed, which only happens when more jobs than GPUs run.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    ids = physical_gpu_ids(count)
    deadline = time.monotonic() + wait_seconds
    offset = os.getpid() % count
    while True:
        for step in range(count):
            index = (offset + step) % count
            handle = open(lock_dir / f"gpu{ids[index]}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return index, ids[index], handle
        if time.monotonic() > deadline:
            raise RuntimeError(f"no free GPU among {ids} after {wait_seconds:.0f} s (locks in {lock_dir}); run with "
                               f"--resources gpu=<number of GPUs> so Snakemake never starts more GPU jobs than GPUs")
        time.sleep(poll_seconds)


def select_device(requested: str, *, lock_dir: Path = DEFAULT_LOCK_DIR) -> DeviceClaim:
    """``auto`` -> a free GPU if CUDA is available, else the CPU; ``cuda`` without a GPU fails loudly."""
    if requested not in ("auto", "cuda", "cpu"):
        raise ValueError(f"training.device must be auto, cuda or cpu, got {requested!r}")
    if requested == "cpu":
        return DeviceClaim(torch.device("cpu"))
    if not torch.cuda.is_available():
        if requested == "cuda":
            raise RuntimeError("training.device is 'cuda', but torch.cuda.is_available() is False on this machine "
                               "(no GPU visible, or a CPU-only torch build); use device: auto or cpu")
        return DeviceClaim(torch.device("cpu"))
    index, physical, handle = claim_gpu(torch.cuda.device_count(), lock_dir=lock_dir)
    torch.cuda.set_device(index)
    LOG.info("claimed GPU %s (cuda:%d) for pid %d", physical, index, os.getpid())
    return DeviceClaim(torch.device(f"cuda:{index}"), physical, handle)
