"""Each executor's load and lateness for the supervisors (issue 14, point 3): open appeals in its
hands, how many of them are past their resolution deadline, and of the appeals due in the last 30
days the share not resolved by their deadline; `GET /api/v1/executors/stats`,
`GET /api/v1/executors/{id}/stats` and the «Исполнители» page."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.api.test_api import assert_error
from tests.clients import SharedContextClient


def _setup(make_user):
    """Executor A: two appeals in hand (one past its deadline), one resolved late and one on time in
    the last 30 days, one resolved late 40 days ago (outside the window). Executor B: nothing."""
    from crm.appeals import services as appeals
    from crm.db import db
    from crm.executors import services as executors
    from tests.factories import CitizenFactory

    a = executors.create("Аварийка", "emergency_dispatch")
    b = executors.create("Управляйка", "management_company")
    op = make_user("operator")
    now = datetime.now(timezone.utc)
    made = []
    for _ in range(5):
        appeal = appeals.create(CitizenFactory(), category="routine", topic="lift", description="Лифт стоит",
                                channel="phone", operator_id=op.id)
        appeals.assign(appeal, a.id, user_id=op.id)
        made.append(appeals.get(appeal.id))
    in_hand_late, in_hand, done_late, done_on_time, old_late = made
    in_hand_late.resolve_by = now - timedelta(days=2)
    for appeal, due, done in ((done_late, now - timedelta(days=5), now - timedelta(days=3)),
                              (done_on_time, now - timedelta(days=4), now - timedelta(days=6)),
                              (old_late, now - timedelta(days=40), now - timedelta(days=35))):
        appeals.transition(appeal, "resolved", user_id=op.id)
        appeal = appeals.get(appeal.id)
        appeal.resolve_by, appeal.resolved_at = due, done
    db.session.commit()
    return a, b


def test_load_and_lateness(client, make_user, api_token):
    a, b = _setup(make_user)
    sup = api_token(make_user("supervisor"))
    items = client.get("/api/v1/executors/stats", headers=sup).get_json()["items"]
    assert [(i["name"], i["open_appeals"], i["overdue"], i["due_30d"], i["late_30d"], i["late_share"]) for i in items] == [
        ("Аварийка", 2, 1, 3, 2, 0.6667), ("Управляйка", 0, 0, 0, 0, None)]
    one = client.get(f"/api/v1/executors/{a.id}/stats", headers=sup).get_json()
    assert one["executor_id"] == a.id and one["late_share"] == 0.6667
    assert_error(client.get("/api/v1/executors/999999/stats", headers=sup), 404, "not_found")
    assert_error(client.get("/api/v1/executors/stats", headers=api_token(make_user("operator"))), 403, "forbidden")


def test_the_executors_page(ctx, make_user):
    a, b = _setup(make_user)
    page = SharedContextClient(ctx, make_user("supervisor"))
    html = page.get("/executors").get_data(as_text=True)
    assert 'id="menu-executors"' in html
    row = html.split(f'data-executor="{a.id}"')[1].split("</tr>")[0]
    assert "<td>2</td>" in row and '<span class="badge overdue">1</span>' in row and "66,7 %" in row
    assert "Executors: load and lateness" in page.get("/executors?lang=en").get_data(as_text=True)
    assert SharedContextClient(ctx, make_user("operator")).get("/executors").status_code == 403
