"""Channel layout and content: is a multi-channel recording really dual mono (every channel the same
signal)? Is a channel telephone-band (nothing above ~4 kHz)?"""

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


#: :func:`high_band_db` below this: telephone band. Measured on ../shared/data/speech-ru (all
#: files): 8 kHz sources (asterisk8k, G.711, GSM, 8 kHz MP3, the calls) -36 to -69 dB, 16 kHz ones
#: (festvox, Opus 16 kHz at 12 kbps) -20 to -33 dB.
NARROWBAND_DB = -34.0


def high_band_db(x: np.ndarray, rate: int = 16000, cutoff_hz: float = 4200.0, frame: int = 512) -> float:
    """Energy above ``cutoff_hz`` relative to the whole band above 100 Hz (dB), over the louder
    half of the frames (the speech, not the pauses). Audio that was 8 kHz at some point (the
    telephone network, an 8 kHz codec) has almost nothing up there, whatever rate it is stored at."""
    n = len(x) // frame
    if n < 2:
        return 0.0
    spec = np.abs(np.fft.rfft(x[: n * frame].reshape(n, frame) * np.hanning(frame), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1.0 / rate)
    energy = spec.sum(axis=1)
    loud = spec[energy >= np.median(energy)]
    total = float(loud[:, freqs >= 100].sum())
    if total <= 1e-12:
        return 0.0  # silence: no evidence of a telephone band
    return 10.0 * math.log10(float(loud[:, freqs >= cutoff_hz].sum()) / total + 1e-12)
