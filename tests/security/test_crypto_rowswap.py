"""Ciphertext moved to another row, column, owner or file does not decrypt: appeals, history
comments, transcript segments, call file names and recordings (citizens: test_security_core.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm.appeals import services as appeals
from crm.appeals.models import Appeal, AppealEvent
from crm.calls import services as calls
from crm.calls.models import Call, Segment
from crm.db import db
from crm.security import crypto
from tests.factories import AppealFactory, CallFactory, CitizenFactory
from tests.wavs import pcm_wav


def _fresh():
    db.session.commit()
    db.session.expire_all()
    crypto.clear_caches()


def _wav(seed: bytes) -> bytes:
    return pcm_wav((seed * 20000)[:16000])


def _turns(texts: list[str]) -> list[dict]:
    """Half-second citizen turns with one timed word each, as the transcriber stores them."""
    return [{"start": i * 0.5, "end": i * 0.5 + 0.5, "speaker": "citizen", "channel": None, "text": t,
             "words": [{"start": 0.0, "end": 0.1, "word": t.split()[0], "probability": 0.9}]}
            for i, t in enumerate(texts)]


@pytest.fixture()
def world(ctx, make_user, monkeypatch):
    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)
    op = make_user("operator")
    a = CitizenFactory(full_name="Петров Иван", phone="+7 912 345-67-89", address="ул. Садовая, д. 5")
    b = CitizenFactory(full_name="Сидорова Анна", phone="+7 903 111-22-33", address="ул. Лесная, д. 1")
    a1 = AppealFactory(citizen=a, operator_id=op.id)
    a2 = AppealFactory(citizen=a, topic="lift", description="Не работает лифт", operator_id=op.id)
    b1 = AppealFactory(citizen=b, topic="yard", description="Яма во дворе", operator_id=op.id)
    appeals.transition(a1, "escalated", user_id=op.id, comment="Передано в УК")
    appeals.transition(a2, "escalated", user_id=op.id, comment="Передано в РСО")
    ca = CallFactory(appeal=a1, operator=op, audio=_wav(b"A1"), original_name="a.wav", checks=False,
                     segments=_turns(["Здравствуйте", "Нет отопления"]))
    ca2 = CallFactory(appeal=a2, operator=op, audio=_wav(b"A2"), original_name="a2.wav", transcribed=False)
    cb = CallFactory(appeal=b1, operator=op, audio=_wav(b"B1"), original_name="b.wav", checks=False,
                     segments=_turns(["Добрый день", "Яма у подъезда"]))
    return SimpleNamespace(a=a.id, b=b.id, a1=a1.id, a2=a2.id, b1=b1.id, ca=ca.id, ca2=ca2.id, cb=cb.id)


def _copy(model, column, src_id, dst_id, dst_column=None):
    blob = db.session.execute(sa.select(getattr(model, column)).where(model.id == src_id)).scalar_one()
    db.session.execute(sa.update(model).where(model.id == dst_id).values({dst_column or column: blob}))
    _fresh()


@pytest.mark.parametrize("target", ["same_citizen", "other_citizen"])
def test_appeal_description_moved_to_another_appeal(world, target):
    dst = world.a2 if target == "same_citizen" else world.b1
    _copy(Appeal, "description_enc", world.a1, dst)
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Appeal, dst).description
    db.session.rollback()
    assert db.session.get(Appeal, world.a1).description == "Холодные батареи"


def test_history_comment_moved_to_another_event(world):
    ev = {e.appeal_id: e.id for e in db.session.execute(sa.select(AppealEvent).where(AppealEvent.comment_enc.isnot(None))).scalars()}
    _copy(AppealEvent, "comment_enc", ev[world.a1], ev[world.a2])
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(AppealEvent, ev[world.a2]).comment
    db.session.rollback()


def test_appeal_description_moved_into_a_comment_column(world):
    ev = db.session.execute(sa.select(AppealEvent.id).where(AppealEvent.appeal_id == world.a1,
                                                             AppealEvent.comment_enc.isnot(None))).scalar_one()
    blob = db.session.get(Appeal, world.a1).description_enc
    db.session.execute(sa.update(AppealEvent).where(AppealEvent.id == ev).values(comment_enc=blob))
    _fresh()
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(AppealEvent, ev).comment
    db.session.rollback()


def test_segments_swapped_within_a_call_across_calls_and_columns(world):
    sa_ = db.session.execute(sa.select(Segment.id).where(Segment.call_id == world.ca).order_by(Segment.idx)).scalars().all()
    sb = db.session.execute(sa.select(Segment.id).where(Segment.call_id == world.cb).order_by(Segment.idx)).scalars().all()
    _copy(Segment, "text_enc", sa_[0], sa_[1])  # reordered segments of one call
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Segment, sa_[1]).text
    db.session.rollback()
    _copy(Segment, "text_enc", sb[0], sa_[0])  # another citizen's call
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Segment, sa_[0]).text
    db.session.rollback()
    _copy(Segment, "words_enc", sb[1], sb[1], dst_column="text_enc")  # another column
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Segment, sb[1]).text
    db.session.rollback()


def test_call_file_name_moved_to_another_call(world):
    _copy(Call, "original_name_enc", world.ca, world.ca2)
    with pytest.raises(crypto.DecryptError):
        _ = db.session.get(Call, world.ca2).original_name
    db.session.rollback()


def test_recording_file_swapped_between_calls_of_one_citizen(world):
    a, a2 = db.session.get(Call, world.ca), db.session.get(Call, world.ca2)
    calls.recording_path(a2).write_bytes(calls.recording_path(a).read_bytes())
    _fresh()
    with pytest.raises(crypto.DecryptError):
        b"".join(calls.stream_recording(db.session.get(Call, world.ca2)))
    db.session.rollback()


def test_ciphertext_relabelled_with_another_citizens_key_id(world):
    a_blob = db.session.get(Appeal, world.a1).description_enc
    b_blob = db.session.get(Appeal, world.b1).description_enc
    forged = a_blob[:1] + b_blob[1:17] + a_blob[17:]
    db.session.execute(sa.update(Appeal).where(Appeal.id == world.a1).values(description_enc=forged))
    _fresh()
    with pytest.raises(crypto.DecryptError, match="another owner"):
        _ = db.session.get(Appeal, world.a1).description
    db.session.rollback()
