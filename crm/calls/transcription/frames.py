"""Frame-level signal helpers: energy per 32 ms frame and boolean masks over frames.

A mask is a ``bool`` array with one value per frame of :data:`~.options.FRAME` samples; a run is
a ``[start, end)`` pair of frame indices where the mask is True.
"""

from __future__ import annotations

import numpy as np

from crm.calls.transcription.options import FRAME


def frame_db(x: np.ndarray, nframes: int) -> np.ndarray:
    """Energy in dBFS of each 512-sample frame (the last one zero-padded)."""
    out = np.empty(nframes, np.float32)
    full = min(nframes, len(x) // FRAME)
    step = 4096  # frames per chunk: bounded temporaries for long buffers
    for i in range(0, full, step):
        j = min(full, i + step)
        fr = x[i * FRAME : j * FRAME].reshape(j - i, FRAME)
        out[i:j] = np.einsum("ij,ij->i", fr, fr, dtype=np.float64) / FRAME
    if full < nframes:
        tail = np.zeros(FRAME * (nframes - full), np.float32)
        rest = x[full * FRAME :]
        tail[: len(rest)] = rest
        fr = tail.reshape(-1, FRAME)
        out[full:] = np.einsum("ij,ij->i", fr, fr, dtype=np.float64) / FRAME
    return (10.0 * np.log10(out.astype(np.float64) + 1e-10)).astype(np.float32)


def hysteresis(p: np.ndarray, on: float, off: float) -> np.ndarray:
    """Speech mask from per-frame probabilities ``p``: on at ``>= on``, stays on while ``>= off``."""
    out = np.zeros(len(p), dtype=bool)
    active = False
    for i, v in enumerate(p):
        if active:
            active = v >= off
        else:
            active = v >= on
        out[i] = active
    return out


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is True."""
    if not len(mask):
        return []
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """``mask`` with gaps of at most ``max_gap`` frames between runs filled."""
    out = mask.copy()
    runs = true_runs(mask)
    for (s0, e0), (s1, _e1) in zip(runs, runs[1:]):
        if s1 - e0 <= max_gap:
            out[e0:s1] = True
    return out


def drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    """``mask`` without its runs shorter than ``min_len`` frames."""
    out = mask.copy()
    for s, e in true_runs(mask):
        if e - s < min_len:
            out[s:e] = False
    return out
