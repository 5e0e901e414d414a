"""Small WAV files made in memory, for tests that need valid audio but not speech."""
from __future__ import annotations

import io
import math
import struct
import wave


def pcm_wav(frames: bytes, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV at ``rate`` Hz whose samples are ``frames`` as given (e.g. planted bytes
    that a leak scan looks for)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def tone_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of a 440 Hz tone, ``seconds`` long at ``rate`` Hz."""
    return pcm_wav(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                         for i in range(int(seconds * rate))), rate)


def silence_wav(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of digital silence, ``seconds`` long at ``rate`` Hz."""
    return pcm_wav(bytes(2 * int(rate * seconds)), rate)
