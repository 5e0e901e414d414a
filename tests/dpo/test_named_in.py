"""crm.citizens.services.named_in: a DPO's note must not name the citizen whatever the spelling (issue 13
re-audit): a surname in capitals or lower-case, in another grammatical case, or romanised by a standard
scheme (the passport's ICAO, ГОСТ 7.79, BGN …). Nothing is decrypted: the words are compared through the
citizen's ``surname`` blind index."""
from __future__ import annotations

import pytest

from crm.citizens import services as citizens
from crm.consent import rights
from crm.db import db
from crm.security.models import AccessLogEntry
from tests.factories import CitizenFactory


@pytest.fixture()
def citizen(ctx):
    return CitizenFactory(full_name="Шредерова Аглая Пантелеевна", phone="+7 916 204-73-58")


@pytest.mark.parametrize("text", [
    "заявление Шредеровой",
    "заявление ШРЕДЕРОВОЙ",
    "заявление шредеровой",
    "ответ отправлен шредеровой почтой",
    "письмо от Shrederova",
    "письмо от SHREDEROVOY",
    "a letter signed shrederova",
])
def test_the_surname_in_any_spelling_names_the_citizen(citizen, text):
    assert citizens.named_in(citizen.id, text)


@pytest.mark.parametrize("text", [
    "заявление о выдаче сведений, ответ почтой",
    "письмо от Ivanova",
    "a letter on appeal 2026-000042",
])
def test_other_words_do_not(citizen, text):
    assert not citizens.named_in(citizen.id, text)


def test_nothing_is_decrypted_to_check(citizen):
    before = db.session.query(AccessLogEntry).count()
    assert citizens.named_in(citizen.id, "письмо от Shrederova")
    assert db.session.query(AccessLogEntry).count() == before


def test_a_dpo_note_in_latin_or_capitals_is_refused(citizen, make_user):
    for note in ("запрос SHREDEROVA", "со слов ШРЕДЕРОВОЙ", "заявление Aglaya Shrederova"):
        with pytest.raises(rights.RequestError) as exc:
            rights.register(citizen.id, "access", channel="paper", note=note, user_id=make_user("dpo").id)
        assert exc.value.code == "personal_data"
        db.session.rollback()
