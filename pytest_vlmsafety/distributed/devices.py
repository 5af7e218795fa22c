"""One GPU per xdist worker: which devices exist, and which worker gets which.

The controller hands devices out (`pytest_configure_node`); each worker narrows
`CUDA_VISIBLE_DEVICES` to its own before torch initialises CUDA, so inside a worker the model
simply goes to `cuda`.
"""

from __future__ import annotations

import glob
import os
import sys
from collections import Counter
from collections.abc import Mapping


def cuda_device_count() -> int:
    """GPUs torch can see (NVML count: does not create a CUDA context in the controller)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def visible_devices(requested: str | None, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Device ids as CUDA_VISIBLE_DEVICES would name them: `--vlm-devices` first, then a
    CUDA_VISIBLE_DEVICES the user set, then every GPU torch sees."""
    if requested:
        return [d.strip() for d in requested.split(",") if d.strip()]
    if "CUDA_VISIBLE_DEVICES" in environ:
        return [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() and d.strip() != "-1"]
    return [str(i) for i in range(cuda_device_count())]


class DeviceAllocator:
    """Give each worker the least used device; a replacement worker takes the one a dead worker
    left free."""

    def __init__(self, devices: list[str]) -> None:
        self.devices = devices
        self.held: dict[str, str] = {}

    def assign(self, worker_id: str) -> str | None:
        if not self.devices:
            return None
        load = Counter(self.held.values())
        device = min(self.devices, key=lambda d: (load[d], self.devices.index(d)))
        self.held[worker_id] = device
        return device

    def release(self, worker_id: str) -> None:
        self.held.pop(worker_id, None)


def apply_worker_device(device: str | None, worker_count: int = 1) -> None:
    """In a worker, before torch touches CUDA. Workers without a GPU share the CPU cores instead
    of each starting one thread per core (unless the user set OMP_NUM_THREADS)."""
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    elif worker_count > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // worker_count)))


def probable_device_type(requested: str | None) -> str:
    """`cuda` or `cpu`, for the cache key, without importing torch: a rerun served entirely from
    the cache never needs torch. Where torch is already loaded, it decides."""
    if requested:
        return requested.split(":")[0]
    if "torch" in sys.modules:
        return "cuda" if sys.modules["torch"].cuda.is_available() else "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return "cpu"
    return "cuda" if glob.glob("/dev/nvidia[0-9]*") else "cpu"
