"""Stored recordings are readable by the application's user only."""
from __future__ import annotations

import io
import stat

from crm.calls import services as calls
from tests.wavs import tone_wav




def test_stored_recording_is_mode_0600(ctx, make_user):
    op = make_user("operator")
    call = calls.store_recording(io.BytesIO(tone_wav()), "probe.wav", appeal=None, operator_id=op.id)
    path = calls.recording_path(call)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
