"""The KPI page (``/reports``): supervisors and administrators see the API's figures, CSAT among them."""
from __future__ import annotations

import sqlalchemy as sa

from crm.db import db, utcnow


def test_the_kpi_page_shows_the_csat_figures(ctx, make_user, login, client):
    from crm.appeals import services as appeals
    from crm.csat.models import CsatSurvey
    from tests.factories import CitizenFactory

    op = make_user("operator")
    citizen = CitizenFactory(full_name="Сводкина Алла", phone="8 916 900-01-01")
    appeal = appeals.create(citizen, category="routine", topic="lift", description="Лифт стоит", channel="phone",
                            operator_id=op.id)
    now = utcnow()
    for n, (score, solved) in enumerate(((5, True), (2, False))):
        db.session.add(CsatSurvey(appeal_id=appeal.id, citizen_id=citizen.id, cycle=n, closed_status="closed",
                                  token_hash=f"{n:064d}", created_at=now, expires_at=now, answered_at=now,
                                  solved=solved, score=score, first_time=True))
    db.session.commit()
    assert db.session.execute(sa.select(sa.func.count()).select_from(CsatSurvey)).scalar_one() == 2

    login(make_user("supervisor"))
    html = client.get("/reports").get_data(as_text=True)
    assert '<td data-kpi="csat_avg">3,5</td>' in html or '<td data-kpi="csat_avg">3.5</td>' in html
    assert '<td data-kpi="csat_responses">2</td>' in html and '<td data-kpi="csat_solved_rate">50' in html
    assert "Удовлетворённость (опрос после закрытия)" in html
    bad = client.get("/reports?from=2026-13-01")
    assert bad.status_code == 400 and "class=\"err\"" in bad.get_data(as_text=True)
    client.post("/logout", data={})
    login(op)
    assert client.get("/reports").status_code == 403
