"""Migration 0027 moves transcripts and evaluation texts written before it (under the citizen's data
key) to the call's own key, so that destroying a recording makes them unreadable in later backups too.

The rows are built as the previous version wrote them (``owner_id`` the citizen, ciphertext bound to
the citizen), then the migration runs through Alembic (this revision alone, from 0026: later
revisions are only stamped, never downgraded; on PostgreSQL or SQLite as the suite runs), twice."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm.db import db, utcnow
from tests.factories import CallFactory, CitizenFactory, yes_to_all

PREVIOUS = "0026_selfservice_grant_indexes"
REVISION = "0027_speech_under_call_key"
MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0027_speech_under_call_key.py"


@pytest.fixture()
def no_transcription(monkeypatch):
    from crm.calls import services as calls

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call, **kw: None)


def _migration():
    spec = importlib.util.spec_from_file_location("m0027", MIGRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _as_before_0027(call_id: str, citizen_id: str) -> None:
    """Re-encrypt the call's segments and evaluation texts under the citizen's key, ``owner_id`` the
    citizen: the rows as the previous version wrote them."""
    from crm.calls.models import Segment
    from crm.qa.models import Evaluation

    for seg in db.session.execute(sa.select(Segment).where(Segment.call_id == call_id)).scalars():
        text, words = seg.text, seg.words
        seg.owner_id = citizen_id
        seg.text, seg.words = text, words
    for ev in db.session.execute(sa.select(Evaluation).where(Evaluation.call_id == call_id)).scalars():
        texts = {k: getattr(ev, k) for k in ("comment", "notes", "dispute_reason", "resolution")}
        ev.owner_id = citizen_id
        for k, v in texts.items():
            setattr(ev, k, v)
    db.session.commit()


def _without_own_key(call) -> None:
    """Make ``call`` look stored before migration 0018: recording under the citizen's key, no data key
    of its own (as tests/calls/test_recording_rekey.py does)."""
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


def _rows(call_id: str) -> dict:
    """``{row id: (owner_id, {column: ciphertext})}`` of the call's segments and evaluations (raw)."""
    db.session.commit()
    conn = db.session.connection()
    out = {}
    for table, cols in (("segments", ("text_enc", "words_enc")),
                        ("evaluations", ("comment_enc", "notes_enc", "dispute_reason_enc", "resolution_enc"))):
        for r in conn.execute(sa.text(f"SELECT id, owner_id, {', '.join(cols)} FROM {table} WHERE call_id = :c"),
                              {"c": call_id}).mappings():
            out[r["id"]] = (r["owner_id"], {c: bytes(r[c]) for c in cols if r[c] is not None})
    db.session.commit()
    return out


def _texts(call_id: str) -> tuple[list, list]:
    """The call's transcript and evaluation texts as the application reads them (fresh keys)."""
    from crm.calls.models import Segment
    from crm.qa.models import Evaluation
    from crm.security import crypto

    crypto.clear_caches()
    db.session.expire_all()
    segs = [(s.text, s.words) for s in db.session.execute(
        sa.select(Segment).where(Segment.call_id == call_id).order_by(Segment.idx)).scalars()]
    evs = [(e.comment, e.notes, e.dispute_reason) for e in db.session.execute(
        sa.select(Evaluation).where(Evaluation.call_id == call_id)).scalars()]
    db.session.commit()
    return segs, evs


def _run_alembic() -> None:
    """Run this revision through Alembic alone: the version table is set back to the one before it
    (``stamp``: later revisions' tables stay as they are), upgraded to it, and set to the head again."""
    from flask_migrate import stamp, upgrade

    db.session.commit()
    db.session.remove()  # (SQLite: no transaction of ours may hold the write lock)
    stamp(revision=PREVIOUS)
    upgrade(revision=REVISION)
    stamp(revision="heads")


def _opened(rows: dict, owner: str, table_of) -> int:
    """How many ciphertexts of ``rows`` decrypt under ``owner``'s key as the key store is now."""
    from crm.security import crypto

    crypto.clear_caches()
    n = 0
    for row_id, (_, blobs) in rows.items():
        for col, blob in blobs.items():
            try:
                crypto.decrypt_field(blob, table=table_of(row_id), column=col.removesuffix("_enc"), row_id=row_id,
                                     owner_id=owner)
                n += 1
            except crypto.DecryptError:
                pass
    db.session.rollback()
    return n


def test_migration_moves_old_rows_to_the_calls_own_key(ctx, make_user, recordings, no_transcription):
    from crm.calls import services as calls
    from crm.calls.models import Segment
    from crm.citizens import services as citizens
    from crm.consent import services as consent
    from crm.qa import services as qa
    from crm.security import keystore

    op, sup = make_user("operator"), make_user("supervisor")
    citizen = CitizenFactory(qa_consent=True)
    card = qa.ensure_default_scorecard()
    own_key = CallFactory(operator=op, citizen=citizen)  # stored since 0018: the call has a key
    pre_0018 = CallFactory(operator=op, citizen=citizen)  # stored before: no key of its own yet
    tampered = CallFactory(operator=op, citizen=citizen)
    other = CitizenFactory(qa_consent=True)
    destroyed = CallFactory(operator=op, citizen=other)
    for call in (own_key, pre_0018, tampered, destroyed):
        qa.evaluate(call, evaluator=sup, answers=yes_to_all(card), comment=f"комментарий к {call.id}",
                    notes=[{"at_s": 2.0, "text": "заявитель назвал адрес"}])
    ev = qa.for_call(own_key.id)[0]
    qa.dispute(qa.get(ev.id), op, "оператор не согласен: адрес уточнён")
    expected = {c.id: _texts(c.id) for c in (own_key, pre_0018, tampered)}
    for call in (own_key, pre_0018, tampered, destroyed):
        _as_before_0027(call.id, call.citizen_id)
    _without_own_key(pre_0018)
    assert keystore.find_by_owner(pre_0018.id) is None
    # one segment whose ciphertext was tampered with; and a destroyed recording whose rows came back
    seg_ids = [s.id for s in db.session.execute(sa.select(Segment).where(Segment.call_id == tampered.id)
                                                .order_by(Segment.idx)).scalars()]
    bad = seg_ids[0]
    blob = bytearray(_rows(tampered.id)[bad][1]["text_enc"])
    blob[-1] ^= 1
    db.session.execute(sa.text("UPDATE segments SET text_enc = :b WHERE id = :i"), {"b": bytes(blob), "i": bad})
    db.session.execute(sa.text("UPDATE calls SET recording_destroyed_at = :t WHERE id = :i"),
                       {"t": utcnow(), "i": destroyed.id})
    db.session.commit()
    # plain ids from here on: the migration runs with the session removed
    own_key, pre_0018, tampered, destroyed = (SimpleNamespace(id=c.id, citizen_id=c.citizen_id)
                                              for c in (own_key, pre_0018, tampered, destroyed))
    citizen_id, op_id = citizen.id, op.id
    before = {c.id: _rows(c.id) for c in (own_key, pre_0018, tampered)}
    assert {owner for rows in before.values() for owner, _ in rows.values()} == {citizen_id}, "old format"

    _run_alembic()

    for call in (own_key, pre_0018):
        rows = _rows(call.id)
        assert {owner for owner, _ in rows.values()} == {call.id}
        assert all(rows[i][1].keys() == before[call.id][i][1].keys() for i in rows), "no text lost or added"
        assert all(rows[i][1][c] != before[call.id][i][1][c] for i in rows for c in rows[i][1]), "re-encrypted"
        assert _texts(call.id) == expected[call.id]
    assert keystore.find_by_owner(pre_0018.id) is not None, "the call's own key was made"
    # the tampered segment is left whole under its old owner, the call's other rows moved on
    rows = _rows(tampered.id)
    assert rows[bad] == before[tampered.id][bad]
    assert {rows[i][0] for i in rows if i != bad} == {tampered.id}
    # the destroyed recording's rows are gone
    assert db.session.execute(sa.select(sa.func.count()).select_from(Segment)
                              .where(Segment.call_id == destroyed.id)).scalar_one() == 0
    assert _rows(destroyed.id) and all(blobs == {} for _, blobs in _rows(destroyed.id).values())

    # idempotent: a second run changes nothing
    after = {c.id: _rows(c.id) for c in (own_key, pre_0018, tampered)}
    db.session.remove()
    with db.engine.begin() as conn:
        counts = _migration().rekey_rows(conn)
    assert counts == {"segments": {"rekeyed": 0, "emptied": 0, "left": 1},
                      "evaluations": {"rekeyed": 0, "emptied": 0, "left": 0}}
    assert {c.id: _rows(c.id) for c in (own_key, pre_0018, tampered)} == after
    _run_alembic()
    assert {c.id: _rows(c.id) for c in (own_key, pre_0018, tampered)} == after

    # and now destroying the recordings takes the migrated texts with them, in every later backup
    backup = {c.id: _rows(c.id) for c in (own_key, pre_0018)}
    table_of = lambda row_id: "segments" if db.session.get(Segment, row_id) is not None else "evaluations"  # noqa: E731
    tables = {i: table_of(i) for rows in backup.values() for i in rows}
    db.session.commit()
    total = {call_id: sum(len(blobs) for _, blobs in rows.values()) for call_id, rows in backup.items()}
    assert all(total.values()) and all(_opened(rows, call_id, tables.get) == total[call_id]
                                       for call_id, rows in backup.items())
    consent.record(citizens.get(citizen_id), "call_recording_qa", channel="call", given=False, operator_id=op_id)
    assert calls.destroy_qa_recordings(citizen_id) is not None
    for call_id, rows in backup.items():
        assert keystore.find_by_owner(call_id) is None
        assert _opened(rows, call_id, tables.get) == 0 and _opened(rows, citizen_id, tables.get) == 0
    assert keystore.find_by_owner(citizen_id) is not None
