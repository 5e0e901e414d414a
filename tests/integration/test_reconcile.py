"""A call whose job died (worker killed, job failed or lost) never stays ``processing``."""
from __future__ import annotations

import io
import wave

from crm.calls import services as calls
from crm.calls.models import Call
from crm.db import db


def _wav_bytes(seconds: float = 1.0) -> bytes:
    import math
    import struct

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8000 * 2 * math.pi * 440)))
                               for i in range(int(8000 * seconds))))
    return buf.getvalue()


def test_processing_call_with_lost_job_is_requeued_then_failed(ctx):
    call = calls.store_recording(io.BytesIO(_wav_bytes()), "a.wav")
    from crm import jobs

    jobs.queue("transcription").empty()  # the job is lost, as if Redis had been flushed
    call.status = "processing"
    call.attempts = 1
    db.session.commit()
    assert calls.reconcile() == {"requeued": 1, "failed": 0}
    db.session.expire_all()
    call = db.session.get(Call, call.id)
    assert call.status == "queued" and jobs.queue("transcription").count == 1
    jobs.queue("transcription").empty()
    call.status = "processing"
    call.attempts = calls.MAX_ATTEMPTS
    db.session.commit()
    assert calls.reconcile() == {"requeued": 0, "failed": 1}
    db.session.expire_all()
    call = db.session.get(Call, call.id)
    assert call.status == "failed" and call.error_code == "abandoned"


def test_live_job_is_left_alone(ctx):
    call = calls.store_recording(io.BytesIO(_wav_bytes()), "a.wav")
    assert calls.reconcile() == {"requeued": 0, "failed": 0}
    db.session.expire_all()
    assert db.session.get(Call, call.id).status == "queued"
