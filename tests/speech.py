"""Speech data and helpers shared by the transcription tests (tests/*/test_transcription_*.py).

Paths of tests/data/audio and the larger shared sets (``<repo>/../shared``, skipped when absent),
16-bit WAV input/output, synthetic line noise and hold music, and the checks every transcript must
pass (no phantom phrases, no decoder loops).
"""

from __future__ import annotations

import math
import re
import wave
from pathlib import Path

import numpy as np

from crm.calls.transcription import TranscriptResult, is_phantom
from crm.calls.transcription.filters import find_loop

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "audio"
BAD = DATA / "bad-audio"
CALLS = DATA / "speech-ru" / "calls"
SHARED = ROOT.parent / "shared"


def norm(text: str) -> str:
    text = text.lower().replace("ё", "е")
    return " ".join(re.sub(r"[^\w\s]|_", " ", text).split())


def write_wav(path: Path, x: np.ndarray, rate: int = 8000) -> Path:
    x = x if x.ndim == 2 else x[:, None]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(x * 32767, -32768, 32767).astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        return x.reshape(-1, w.getnchannels()), w.getframerate()


def pink_noise(seconds: float, rate: int, level: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(int(seconds * rate))
    spec = np.fft.rfft(white)
    f = np.arange(len(spec), dtype=float)
    f[0] = 1.0
    pink = np.fft.irfft(spec / np.sqrt(f), len(white))
    return (pink / np.abs(pink).max() * level).astype(np.float32)


def hold_music(seconds: float, rate: int) -> np.ndarray:
    """A synthetic hold-music loop: chords of decaying harmonic notes."""
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    notes = [261.63, 329.63, 392.0, 440.0, 349.23, 293.66]
    beat = 0.5
    for k in range(int(seconds / beat)):
        f0 = notes[k % len(notes)]
        s = int(k * beat * rate)
        tt = t[s:] - k * beat
        env = np.exp(-3 * tt)
        for h, a in ((1, 0.5), (2, 0.25), (3, 0.12)):
            out[s:] += a * env * np.sin(2 * math.pi * f0 * h * tt)
    return (0.25 * out / np.abs(out).max()).astype(np.float32)


def speaker_time_accuracy(turns: list[dict], segments: list[dict]) -> tuple[float, float]:
    """Share of speech time with the right speaker label.

    For every reference turn, the time it overlaps our segments is split into time labelled
    with the turn's role (right) and other labels (wrong). Returns (right / overlapped,
    overlapped / reference speech time): the second figure guards against an "accurate"
    transcript that simply covers nothing.
    """
    roles = {0: "operator", 1: "citizen"}
    right = cov = tot = 0.0
    for t in turns:
        tot += t["end"] - t["start"]
        for s in segments:
            ov = min(t["end"], s["end"]) - max(t["start"], s["start"])
            if ov > 0:
                cov += ov
                right += ov if s["speaker"] == roles[t["channel"]] else 0.0
    return right / cov if cov else 0.0, cov / tot if tot else 0.0


def assert_no_phantom(res: TranscriptResult):
    for s in res.segments:
        assert not is_phantom(s["text"]), s
        assert "субтитр" not in s["text"].lower()
        assert "продолжение следует" not in norm(s["text"])


def assert_no_loops(res: TranscriptResult):
    for s in res.segments:
        words = norm(s["text"]).split()
        assert find_loop(words) is None, s["text"]


def fake_segment(text, start=0.0, prob=0.9, speaker="unknown") -> dict:
    """A transcript segment of ``text`` as the decoder hands it to the filters: words of 0.3 s each."""
    words = []
    t = start
    for w in text.split(" "):
        words.append({"start": t, "end": t + 0.3, "word": " " + w, "probability": prob})
        t += 0.3
    return {"start": start, "end": t, "speaker": speaker, "channel": None, "text": text,
            "words": words}
