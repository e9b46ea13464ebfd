"""Peak memory of this process, measured so that a parent's memory does not leak into it."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    Linux keeps ru_maxrss across fork and exec, so a child started by a big parent would report the
    parent's peak; VmHWM belongs to the process's own address space and starts afresh at exec.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
