"""The DPO reads an entry's ``detail`` in Russian: the English phrases the code writes
(crm.security.audit.DETAIL_PHRASES) are worded when shown; the stored, hash-chained text is unchanged
and unknown text is shown as stored."""
from __future__ import annotations

import csv
import io

from tests.dpo.test_audit_dpo import as_dpo, case, dpo, get  # noqa: F401  (fixtures)


def test_detail_phrases_in_russian_and_unknown_text_as_stored(ctx):
    from crm.security.audit import detail_label

    assert detail_label("identifiers shown unmasked: address, full_name, phone; no purpose given (API default)") \
        == "показаны без маски: адрес, ФИО, телефон; цель не указана (по умолчанию API)"
    assert detail_label("identifiers shown unmasked: none found") == "показаны без маски: ничего не найдено"
    assert detail_label("3 survey comment(s) cleared after the consent was withdrawn") \
        == "удалено комментариев в опросах после отзыва согласия: 3"
    assert detail_label("format=csv entries=12") == "формат: csv, записей: 12"
    assert detail_label("survey 42; solved=yes; score=5") == "survey 42; solved=yes; score=5"  # unknown: as stored
    assert detail_label("merged comments; something new") == "комментарии из объединённого обращения; something new"
    assert detail_label(None) == "" and detail_label("") == ""


def test_access_log_and_report_csv_word_the_detail_and_keep_the_entry(ctx, as_dpo, case):  # noqa: F811
    from crm.db import db
    from crm.security import audit

    citizen = case[0]
    stored = "identifiers shown unmasked: address, full_name, phone; no purpose given (API default)"
    audit.record("transcript.reveal", citizen_id=citizen.id, fields=["transcript", "address", "full_name", "phone"],
                 purpose="call_recording_qa", detail=stored, actor=audit.system_actor("t"))
    db.session.commit()
    seq = audit.head()[0]
    russian = "показаны без маски: адрес, ФИО, телефон; цель не указана (по умолчанию API)"
    html = get(as_dpo, "/dpo/access-log").get_data(as_text=True)
    assert f'<span title="{stored}">{russian}</span>' in html
    resp = get(as_dpo, f"/dpo/citizens/{citizen.id}/access-report", query_string={"format": "csv"})
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    row = {int(r[0]): r for r in rows[1:]}[seq]
    assert row[rows[0].index("Подробности")] == russian
    assert row[rows[0].index("Подробности (как записано)")] == stored
    entry = db.session.execute(db.select(audit_model()).where(audit_model().seq == seq)).scalar_one()
    assert entry.detail == stored and audit.verify()[1] is None  # the chain is untouched


def audit_model():
    from crm.security.models import AccessLogEntry

    return AccessLogEntry
