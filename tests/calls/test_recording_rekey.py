"""Recordings stored before migration 0018 are encrypted under their citizen's data key, which the
citizen's other data still need, so destroying one of them after a QA-consent withdrawal deleted the
file but could not crypto-shred it: a copy of the file (a backup) stayed readable (re-audit 13.2d).
``rekey_recording`` (the ``rekey_recordings_job``, ``crm rekey-recordings``) gives each such
recording a key of its own; then destroying one shreds it alone and the others stay playable."""
from __future__ import annotations

import io

import pytest

from crm.db import db
from tests.factories import CallFactory, CitizenFactory


@pytest.fixture()
def no_transcription(monkeypatch):
    from crm.calls import services as calls

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call, **kw: None)


def _as_before_0018(call):
    """Make ``call`` look stored before migration 0018: its file encrypted under the citizen's key,
    no ``recording_owner_id``, no data key of its own."""
    from crm.calls import services as calls
    from crm.security import crypto, keystore

    plain = b"".join(calls.stream_recording(call, purpose="appeal_processing"))
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(plain), out, file_key=call.storage_key, owner_id=call.citizen_id)
    calls.recording_path(call).write_bytes(out.getvalue())
    keystore.delete_orphans([keystore.find_by_owner(call.id)])  # (no tombstone: it never existed then)
    crypto.forget_cached_key(owner_id=call.id)
    call.recording_owner_id = None
    db.session.commit()
    return plain


def _opens(blob: bytes, *, storage_key: str, owner_id: str) -> bool:
    from crm.security import crypto

    try:
        b"".join(crypto.decrypt_stream(io.BytesIO(blob), file_key=storage_key, owner_id=owner_id))
        return True
    except crypto.DecryptError:
        return False


def test_old_recordings_get_keys_of_their_own_and_are_shredded_alone(ctx, make_user, recordings, no_transcription,
                                                                       runner):
    from crm.calls import services as calls
    from crm.consent import services as consent
    from crm.security import keystore

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Старозаписева Нина", qa_consent=True)
    doomed, evidence = CallFactory(operator=op, citizen=citizen), CallFactory(operator=op, citizen=citizen)
    audio = {c.id: _as_before_0018(c) for c in (doomed, evidence)}
    backup = {c.id: (c.storage_key, calls.recording_path(c).read_bytes()) for c in (doomed, evidence)}
    assert set(calls.shared_key_recordings()) == {doomed.id, evidence.id}

    result = runner("rekey-recordings")
    assert result.exit_code == 0 and "re-keyed 2 recordings" in result.output, result.output
    db.session.expire_all()
    for c in (doomed, evidence):
        call = calls.get(c.id)
        assert call.recording_owner_id == call.id and call.storage_key != backup[c.id][0]
        assert keystore.find_by_owner(call.id) is not None
        assert not (calls.recording_path(call).parent / f"{backup[c.id][0]}.rec").exists(), "old file deleted"
        assert b"".join(calls.stream_recording(call, purpose="appeal_processing")) == audio[c.id]
    assert calls.shared_key_recordings() == [] and calls.rekey_recording(doomed.id) == "own_key"
    copy = (calls.get(doomed.id).storage_key, calls.recording_path(calls.get(doomed.id)).read_bytes())  # a backup
    assert _opens(copy[1], storage_key=copy[0], owner_id=doomed.id)

    # the SMS consent was given on ``evidence``: it is kept; ``doomed`` is destroyed after the refusal
    consent.record(citizen, "sms_notifications", channel="call", operator_id=op.id, evidence_call_id=evidence.id,
                   evidence_offset_s=3.0)
    consent.record(citizen, "call_recording_qa", channel="call", given=False, operator_id=op.id)
    assert calls.destroy_qa_recordings(citizen.id) is not None
    db.session.expire_all()
    gone, kept = calls.get(doomed.id), calls.get(evidence.id)
    assert gone.recording_destroyed_at is not None and keystore.find_by_owner(doomed.id) is None
    # a copy of the destroyed recording's file (as a backup holds it) opens under no key left
    assert not _opens(copy[1], storage_key=copy[0], owner_id=doomed.id)
    assert kept.recording_destroyed_at is None
    assert b"".join(calls.stream_recording(kept, purpose="appeal_processing")) == audio[evidence.id]
    assert keystore.find_by_owner(citizen.id) is not None and citizen.full_name == "Старозаписева Нина"
