"""The calls' transcription lifecycle (crm.calls.services.TRANSITIONS) and who may see a call."""
from types import SimpleNamespace

import pytest

from crm.errors import Conflict, Forbidden, NotFound


def test_status_moves_follow_the_table():
    from crm.calls import services

    call = SimpleNamespace(status="done")
    with pytest.raises(Conflict):
        services.set_status(call, "failed")  # a finished call is queued again first
    services.set_status(call, "queued")
    services.set_status(call, "processing")
    services.set_status(call, "no_speech")
    assert call.status == "no_speech"
    assert set(services.TRANSITIONS) == set(services.STATUS_RU)
    assert all(set(targets) <= set(services.STATUS_RU) for targets in services.TRANSITIONS.values())


def test_an_operator_sees_only_own_calls(ctx, make_user, monkeypatch):
    import io

    from crm.calls import services
    from tests.wavs import tone_wav

    monkeypatch.setattr(services, "enqueue_transcription", lambda call: None)
    op, other, sup = make_user("operator"), make_user("operator"), make_user("supervisor")
    call = services.store_recording(io.BytesIO(tone_wav(0.5)), "c.wav", operator_id=op.id)
    assert services.get_for(op, call.id).id == call.id
    assert services.get_for(sup, call.id).id == call.id
    with pytest.raises(Forbidden):
        services.get_for(other, call.id)
    with pytest.raises(NotFound):
        services.get_for(sup, "no-such-call")
    assert services.read_purpose(op) == "appeal_processing" and services.read_purpose(sup) == "call_recording_qa"
