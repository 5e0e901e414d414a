"""Stored recordings are readable by the application's user only."""
from __future__ import annotations

import io
import math
import stat
import struct
import wave

from crm.calls import services as calls


def _wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 300 * i / rate)))
                               for i in range(int(seconds * rate))))
    return buf.getvalue()


def test_stored_recording_is_mode_0600(ctx, make_user):
    op = make_user("operator")
    call = calls.store_recording(io.BytesIO(_wav()), "probe.wav", appeal=None, operator_id=op.id)
    path = calls.recording_path(call)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
