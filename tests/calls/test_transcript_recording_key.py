"""A call's transcript and the evaluation texts quoting it are encrypted under the call's own data key,
the recording's, not under the citizen's (issue 13, the remaining hole of point 6).

Before, segments and evaluation comments were sealed with the citizen's key, which lives on after a
QA-consent withdrawal destroys the recording (the citizen's other data need it). A backup of the main
database taken before the destruction therefore still opened the transcript and the comments. Now
destroying the recording deletes the one key that opens them: a copy of those rows, read here as raw
ciphertext before the destruction, does not decrypt under any key left, while the citizen's key and
data stay readable. Afterwards every page, the API, the search and the access export say the texts
were removed instead of failing."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import CallFactory, CitizenFactory, yes_to_all

NAME = "Ключникова Вера Павловна"
COMMENT = "Заявительница сказала: нет горячей воды в квартире 12"
NOTE = "Назвала адрес Садовая, пять"
PHRASE = "горячая вода"  # in GOOD_SEGMENTS: «нет горячей воды»
SAID = "у нас нет горячей воды"
DISPUTE = "Адрес я уточнила, см. 0:12"


@pytest.fixture()
def no_transcription(monkeypatch):
    from crm.calls import services as calls

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call, **kw: None)


@pytest.fixture()
def world(ctx, make_user, recordings, no_transcription):
    from crm.consent import services as consent
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    citizen = CitizenFactory(full_name=NAME, qa_consent=True)
    call = CallFactory(operator=op, citizen=citizen)
    kept = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    card = qa.ensure_default_scorecard()
    ev = qa.evaluate(call, evaluator=sup, answers=yes_to_all(card), comment=COMMENT,
                     notes=[{"at_s": 4.5, "text": NOTE}])
    kept_ev = qa.evaluate(kept, evaluator=sup, answers=yes_to_all(card), comment=COMMENT)
    return SimpleNamespace(
        op=op, sup=sup, citizen=citizen, call=call, kept=kept, ev=ev, kept_ev=kept_ev,
        refuse=lambda: consent.record(citizen, "call_recording_qa", channel="call", given=False, operator_id=op.id),
        consent_again=lambda: consent.record(citizen, "call_recording_qa", channel="call", operator_id=op.id))


def _backup(call_id: str) -> dict:
    """The call's transcript and evaluation rows as a backup of the main database holds them: raw
    ciphertext with the row ids and the owner column, read with plain SQL (no descriptor)."""
    db.session.commit()
    conn = db.session.connection()
    segs = conn.execute(sa.text("SELECT id, owner_id, text_enc, words_enc FROM segments WHERE call_id = :c"),
                        {"c": call_id}).all()
    evs = conn.execute(sa.text("SELECT id, owner_id, comment_enc, notes_enc FROM evaluations WHERE call_id = :c"),
                       {"c": call_id}).all()
    db.session.commit()
    blobs = lambda **cols: {k: bytes(v) for k, v in cols.items() if v is not None}  # noqa: E731
    return {"segments": [(r.id, r.owner_id, blobs(text=r.text_enc, words=r.words_enc)) for r in segs],
            "evaluations": [(r.id, r.owner_id, blobs(comment=r.comment_enc, notes=r.notes_enc)) for r in evs]}


def _opens(backup: dict, owners: list[str]) -> list[str]:
    """Which ciphertexts of ``backup`` still decrypt, under the owner the row names or any of
    ``owners`` (an attacker holding the key store as it is now tries every key left)."""
    from crm.security import crypto

    crypto.clear_caches()  # as a fresh process would: keys come from the key store as it is now
    opened = []
    for table in ("segments", "evaluations"):
        for row_id, owner, blobs in backup[table]:
            for column, blob in blobs.items():
                for candidate in {owner, *owners}:
                    try:
                        crypto.decrypt_field(blob, table=table, column=column, row_id=row_id, owner_id=candidate)
                    except crypto.DecryptError:
                        continue
                    opened.append(f"{table}.{column} of {row_id} under {candidate}")
    db.session.rollback()  # end the reads (the failures were logged in their own transactions)
    return opened


def test_a_backup_of_the_transcript_and_evaluation_texts_dies_with_the_recording(ctx, world):
    from crm.calls import search, services as calls
    from crm.citizens import services as citizens
    from crm.security import keystore

    # before: the search finds the call, the texts are readable, the copy opens (under the call's key)
    found = search.search_transcripts(PHRASE, user=world.sup)
    assert {h.call_id for h in found.hits} == {world.call.id, world.kept.id}
    backup = _backup(world.call.id)
    assert len(backup["segments"]) == 6 and len(backup["evaluations"]) == 1
    assert {owner for _, owner, _ in backup["segments"] + backup["evaluations"]} == {world.call.id}, \
        "transcript and evaluation texts are sealed under the call's own key, not the citizen's"
    assert _opens(backup, [world.citizen.id, world.call.id])

    world.refuse()
    assert calls.destroy_qa_recordings(world.citizen.id) is not None
    db.session.expire_all()

    # the citizen's key lives on (their card, their other data) ...
    assert keystore.find_by_owner(world.citizen.id) is not None
    assert citizens.get(world.citizen.id).full_name == NAME
    # ... and yet no ciphertext of the backup opens, under the citizen's key or any other left
    assert _opens(backup, [world.citizen.id, world.call.id]) == []
    assert keystore.find_by_owner(world.call.id) is None
    # another citizen's call is untouched
    assert keystore.find_by_owner(world.kept.id) is not None
    assert _opens(_backup(world.kept.id), [])

    # the search finds nothing of the destroyed call, the other one still
    after = search.search_transcripts(PHRASE, user=world.sup)
    assert {h.call_id for h in after.hits} == {world.kept.id} and after.calls_unreadable == 0


def _restore_leftovers(call_id: str, backup: dict) -> None:
    """Put the backup's ciphertext back into the live rows, as a restore of the main database (or a
    destruction interrupted before QA cleared its texts) leaves them: rows whose key is gone."""
    db.session.commit()
    conn = db.session.connection()
    for row_id, owner, blobs in backup["evaluations"]:
        if blobs:
            sets = ", ".join(f"{col}_enc = :{col}" for col in blobs)
            conn.execute(sa.text(f"UPDATE evaluations SET {sets} WHERE id = :i"), {**blobs, "i": row_id})
    for i, (row_id, owner, blobs) in enumerate(backup["segments"]):
        conn.execute(sa.text("INSERT INTO segments (id, call_id, owner_id, idx, start, \"end\", speaker, channel, "
                             "text_enc, words_enc) VALUES (:i, :c, :o, :x, 0, 1, 'citizen', 1, :t, :w)"),
                     {"i": row_id, "c": call_id, "o": owner, "x": i, "t": blobs["text"], "w": blobs["words"]})
    db.session.commit()
    db.session.expire_all()


def test_after_destruction_every_reader_says_removed(ctx, world, api_token):
    from crm.appeals import services as appeals
    from crm.calls import search, services as calls
    from crm.consent.services import DSR_PURPOSE
    from crm.qa import services as qa

    sup = SharedContextClient(ctx, world.sup)
    before = sup.get(f"/qa/evaluations/{world.ev.id}").get_data(as_text=True)
    assert COMMENT in before and NOTE in before  # evaluations display while the recording exists
    assert SAID in sup.get(f"/calls/{world.call.id}").get_data(as_text=True)

    # a second evaluation of the call, disputed by the operator before the destruction
    disputed = qa.evaluate(world.call, evaluator=world.sup, answers=yes_to_all(qa.ensure_default_scorecard()))
    qa.dispute(disputed, world.op, DISPUTE)
    backup = _backup(world.call.id)
    world.refuse()
    calls.destroy_qa_recordings(world.citizen.id)
    # the worst case: the rows come back with their ciphertext (restore, interrupted clean-up) and the
    # citizen consents again, so the QA gate lets the call through: nothing may try its deleted key
    _restore_leftovers(world.call.id, backup)
    world.consent_again()

    for user, urls in ((world.sup, [f"/calls/{world.call.id}", f"/qa/review/{world.call.id}",
                                    f"/qa/evaluations/{world.ev.id}", "/qa/disputes", "/qa/evaluations", "/qa/calls",
                                    "/qa/queue", "/qa/dashboard", f"/appeals/{world.call.appeal_id}"]),
                       (world.op, [f"/calls/{world.call.id}", f"/qa/evaluations/{world.ev.id}", "/qa/my",
                                   f"/appeals/{world.call.appeal_id}", f"/citizens/{world.citizen.id}"])):
        client = SharedContextClient(ctx, user)
        for url in urls:
            resp = client.get(url)
            html = resp.get_data(as_text=True)
            assert resp.status_code == 200, (url, resp.status_code)
            assert COMMENT not in html and NOTE not in html and SAID not in html and DISPUTE not in html, url
    call_page = sup.get(f"/calls/{world.call.id}").get_data(as_text=True)
    assert 'id="transcript-removed"' in call_page and "Расшифровка удалена" in call_page
    assert 'id="evaluation-texts-removed"' in call_page and f"{world.ev.score:g}" in call_page
    ev_page = sup.get(f"/qa/evaluations/{world.ev.id}").get_data(as_text=True)
    assert 'id="texts-removed"' in ev_page and "удалены вместе с записью звонка" in ev_page
    # the search page: the other citizen's call is found, the destroyed one is not read at all
    found = sup.post("/calls/search", data={"q": PHRASE})
    assert found.status_code == 200 and world.kept.id in found.get_data(as_text=True)
    assert world.call.id not in found.get_data(as_text=True)
    review = sup.get(f"/qa/review/{world.call.id}")
    assert review.status_code == 200 and 'id="transcript-removed"' in review.get_data(as_text=True)

    # the API: no segments, and why
    data = ctx.test_client().get(f"/api/v1/calls/{world.call.id}", headers=api_token(world.sup)).get_json()
    assert data["transcript"] == {"segments": [], "removed": "recording_destroyed"}
    assert data["recording_destroyed_at"]
    # the services
    view = qa.view(qa.get(world.ev.id))
    assert view["removed"] is True and view["withheld"] is False
    assert (view["comment"], view["notes"], view["dispute_reason"], view["resolution"]) == (None, [], None, None)
    assert [(x.comment, x.notes, x.removed) for x in qa.for_call(world.call.id)] == [(None, [], True)] * 2
    assert [(x.comment, x.removed) for x in qa.for_call(world.call.id, for_subject=True)] == [(None, True)] * 2
    assert search.search_transcripts(PHRASE, user=world.sup).calls_unreadable == 0
    # the citizen's access export: the call is there, its transcript and comments are not
    exported = appeals.export_for_citizen(world.citizen.id, purpose=DSR_PURPOSE, erased=False)
    call_data = next(c for a in exported for c in a["calls"] if c["id"] == world.call.id)
    assert call_data["transcript"] == {"segments": [], "removed": "recording_destroyed"}
    assert [e["comment"] for e in call_data["evaluations"]] == [None, None]
    # nothing new can be written under the deleted key: refused with 410, not a 500
    with pytest.raises(qa.EvaluationError) as refused:
        qa.evaluate(calls.get(world.call.id), evaluator=world.sup, answers=yes_to_all(qa.ensure_default_scorecard()),
                    comment="ещё одна оценка")
    assert refused.value.code == "recording_destroyed" and refused.value.status == 410
    db.session.rollback()
    resp = ctx.test_client().post(f"/api/v1/calls/{world.call.id}/evaluations", headers=api_token(world.sup),
                                  json={"answers": yes_to_all(qa.ensure_default_scorecard())})
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "recording_destroyed"
    with pytest.raises(qa.EvaluationError) as refused:
        qa.dispute(qa.get(world.ev.id), world.op, "я не согласен")
    assert refused.value.code == "recording_destroyed"
    db.session.rollback()
    # the open dispute is resolved without a text (none can be kept under the deleted key)
    with pytest.raises(qa.EvaluationError) as refused:
        qa.resolve(qa.get(disputed.id), world.sup, outcome="upheld", comment="Оценка верна")
    assert refused.value.code == "recording_destroyed"
    db.session.rollback()
    resolved = qa.resolve(qa.get(disputed.id), world.sup, outcome="upheld")
    assert resolved.operator_status == "upheld" and resolved.resolution_enc is None
    # the other citizen's evaluation is as it was
    assert qa.for_call(world.kept.id)[0].comment == COMMENT
