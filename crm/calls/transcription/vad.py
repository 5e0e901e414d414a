"""Speech activity: Silero VAD (the ONNX model that ships inside ``faster_whisper``).

One model per process: onnxruntime sessions are not shared across ``fork``.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from crm.calls.transcription.options import FRAME


_vad_lock = threading.Lock()
_vad_model = None
_vad_pid = None


def _vad():
    global _vad_model, _vad_pid
    with _vad_lock:
        if _vad_model is None or _vad_pid != os.getpid():
            # deferred: importing faster_whisper starts onnxruntime threads, and the web app and the RQ
            # parent, which fork, import this package (for probe()) without ever transcribing
            from faster_whisper.utils import get_assets_path
            from faster_whisper.vad import SileroVADModel

            _vad_model = SileroVADModel(os.path.join(get_assets_path(), "silero_vad_v6.onnx"))
            _vad_pid = os.getpid()
        return _vad_model


def speech_probs(x: np.ndarray) -> np.ndarray:
    """Silero speech probability per 512-sample frame (ceil(len/512) values)."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.float32)
    # Silero is trained on normalised levels; quiet telephone audio scores low. Apply a bounded
    # gain so the loudest frames reach about -12 dBFS (never amplify noise-only input much:
    # gain limited to +18 dB). The level is estimated on a subsample to spare memory.
    sub = np.abs(x[:: max(1, n // 2_000_000)])
    peak = float(np.percentile(sub, 99.5)) if len(sub) else 0.0
    del sub
    gain = float(np.clip(0.25 / peak, 1.0, 8.0)) if peak > 1e-4 else 1.0
    xp = np.zeros(n + (-n) % FRAME, np.float32)
    np.multiply(x, gain, out=xp[:n])
    model = _vad()
    # Silero keeps its LSTM state across a call; feeding it in pieces of ~4 min bounds the
    # memory of its ONNX session (the model carries no state between our calls, so pieces
    # overlap by 2 s of context that is discarded).
    piece = FRAME * 7500
    ctx = FRAME * 64
    out = []
    for i in range(0, len(xp), piece):
        a = max(0, i - ctx)
        pr = np.asarray(model(xp[a : i + piece]), dtype=np.float32).reshape(-1)
        out.append(pr[(i - a) // FRAME :])
    return np.concatenate(out) if out else np.zeros(0, np.float32)
