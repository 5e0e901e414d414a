"""A new user's report: in the roof-leak demo recording (dev_call_02_roof_leak) the operator says
«оператор Мария, здравствуйте» and the citizen on file is Соколова Мария Андреевна, so the supervisor
read «оператор [имя]»: the operator's self-introduction was masked as the citizen's name. The word
right after «оператор» (and the operator's own name from the staff account) is the operator's; the
citizen's name said elsewhere («Мария Андреевна, …») is still masked, on the page, in the API and in
the search, which masks as the page does (the operator's staff name included). Real PostgreSQL and
Redis; the Whisper model is not run."""
from __future__ import annotations

import pytest

from tests.api.test_api import as_role  # noqa: F401  (a fixture)

FULL_NAME, PHONE, ADDRESS, APARTMENT = "Соколова Мария Андреевна", "+7 (903) 111-22-33", "ул. Лесная, д. 12", "4"
#: The operator's first line of dev_call_02_roof_leak (../shared/data/speech-ru/calls), as recorded.
GREETING = "Горячая линия жилищно-коммунального хозяйства, оператор Мария, здравствуйте."


def _known():
    from crm import text_ru

    return text_ru.known_identifiers(full_name=FULL_NAME, phone=PHONE, addresses=[(ADDRESS, APARTMENT)])


@pytest.mark.parametrize("speaker, text, shown", [
    ("operator", GREETING, GREETING),
    ("unknown", GREETING, GREETING),  # a mono call: «оператор Мария» is still the operator naming themselves
    ("operator", "Меня зовут Мария, слушаю вас.", "Меня зовут Мария, слушаю вас."),
    # the citizen's name said elsewhere, by either side, is masked
    ("operator", "Мария Андреевна, бригада выезжает.", "[имя], бригада выезжает."),
    ("operator", "Мария, подставьте ёмкость.", "[имя], подставьте ёмкость."),
    ("operator", "Оператор Мария Соколова", "Оператор [имя]"),  # a surname after the name is no introduction
    ("citizen", "Меня зовут Мария Андреевна.", "Меня зовут [имя]."),
    ("unknown", "Меня зовут Мария.", "Меня зовут [имя]."),  # in a mono call it may be the citizen
    ("citizen", "Да, оператор Мария, слушаю.", "Да, оператор [имя], слушаю."),
])
def test_the_operators_self_introduction_is_not_the_citizens_name(speaker, text, shown):
    from crm import text_ru

    assert text_ru.mask_text(text, text_ru.personal_spans(text, speaker=speaker, known=_known())) == shown


def _seg(start, text, speaker):
    words = [{"start": start + i * 0.4, "end": start + i * 0.4 + 0.35, "word": w, "probability": 0.9}
             for i, w in enumerate(text.split())]
    return {"start": start, "end": words[-1]["end"], "speaker": speaker, "channel": 0 if speaker == "operator" else 1,
            "text": text, "words": words}


ROOF_LEAK = [
    _seg(0.6, GREETING, "operator"),
    _seg(8.0, "Добрый день. У меня протекает крыша, вода капает с потолка на кухне.", "citizen"),
    _seg(14.3, "Мария Андреевна, это аварийная ситуация. Вас консультировала Ольга.", "operator"),
    _seg(36.2, "Спасибо за обращение, всего доброго.", "operator"),
]


def test_the_roof_leak_call_shows_the_operators_name_and_masks_the_citizens(ctx, client, login, as_role):
    from crm.calls import search
    from crm.db import db
    from tests.factories import CallFactory, CitizenFactory

    op_user, _ = as_role("operator")
    op_user.full_name = "Ольга Петрова"  # the answering operator's staff account («Вас консультировала Ольга»)
    db.session.commit()
    sup_user, sup = as_role("supervisor")
    citizen = CitizenFactory(full_name=FULL_NAME, phone=PHONE, address=ADDRESS, apartment=APARTMENT, qa_consent=True)
    call = CallFactory(operator=op_user, citizen=citizen, segments=[dict(s) for s in ROOF_LEAK])

    segs = client.get(f"/api/v1/calls/{call.id}", headers=sup).get_json()["transcript"]["segments"]
    assert segs[0]["text"] == GREETING
    assert "Мария" in [w["word"].strip(",.") for w in segs[0]["words"]]
    assert segs[2]["text"] == "[имя], это аварийная ситуация. Вас консультировала Ольга."
    login(sup_user)
    page = client.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "оператор Мария, здравствуйте" in page and "Андреевна" not in page and "Соколова" not in page

    def found(phrase):
        return [h.call_id for h in search.search_transcripts(phrase, user=sup_user).hits]

    # the search matches what the page shows: the operator's name (said after «оператор», or the staff
    # account's) is found, the citizen's name is not
    assert found("оператор Мария") == [call.id]
    assert found("консультировала Ольга") == [call.id]
    for phrase in ("Соколова", "Мария Андреевна", "Андреевна"):
        assert found(phrase) == [], phrase
