"""Channel layout: is a multi-channel recording really dual mono (every channel the same signal)?"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _dot(a: np.ndarray, b: np.ndarray, chunk: int = 1 << 20) -> float:
    """float64-accurate dot product without float64 copies of whole channels."""
    acc = 0.0
    for i in range(0, len(a), chunk):
        acc += float(np.dot(a[i : i + chunk].astype(np.float64), b[i : i + chunk].astype(np.float64)))
    return acc


def is_dual_mono(chans: Sequence[np.ndarray], threshold: float) -> bool:
    """All channels carry the same signal (possibly at a different gain)."""
    if len(chans) < 2:
        return False
    ref = chans[0]
    e0 = _dot(ref, ref)
    for x in chans[1:]:
        e1 = _dot(x, x)
        if e0 < 1e-6 and e1 < 1e-6:
            continue  # both silent
        if e0 < 1e-6 or e1 < 1e-6:
            return False
        corr = _dot(ref, x) / math.sqrt(e0 * e1)
        if corr < threshold:
            return False
    return True
