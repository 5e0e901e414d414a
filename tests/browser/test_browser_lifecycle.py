"""The appeal page's status form in headless Chromium with real CSRF (issue 14 point 4): a page that no
longer shows the current status (another operator moved the appeal meanwhile) is refused with a Russian
explanation and changes nothing; a double click on «Сохранить» moves the appeal once."""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.factories import AppealFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


def steps(appeal_id: str) -> list[str]:
    from crm.appeals.models import AppealEvent
    from crm.db import db

    db.session.expire_all()
    rows = db.session.execute(sa.select(AppealEvent.to_status).where(
        AppealEvent.appeal_id == appeal_id, AppealEvent.kind == "transition").order_by(AppealEvent.at)).scalars().all()
    db.session.remove()
    return list(rows)


def test_a_page_showing_an_old_status_is_refused_and_a_double_click_moves_once(ctx, make_user, new_page, sign_in):
    from crm.db import db

    first_name, second_name = f"op_{secrets.token_hex(3)}", f"op_{secrets.token_hex(3)}"
    op = make_user("operator", username=first_name)
    make_user("operator", username=second_name)
    appeal = AppealFactory(operator=op)
    appeal_id = appeal.id
    db.session.remove()  # hold no transaction while the live server works

    a = sign_in(new_page(), first_name)
    b = sign_in(new_page(), second_name)
    a.goto(f"/appeals/{appeal_id}")
    b.goto(f"/appeals/{appeal_id}")
    # B hands the appeal over; A's page still shows «Принято»
    b.get_by_label("Новый статус").select_option("escalated")
    b.get_by_role("button", name="Сохранить").click()
    b.wait_for_load_state()
    a.get_by_label("Новый статус").select_option("rejected")
    a.get_by_label("Комментарий", exact=True).fill("не наш дом")
    a.get_by_role("button", name="Сохранить").click()
    a.wait_for_load_state()
    assert a.get_by_text("Статус обращения уже изменился: на странице было «Принято», сейчас «Передано "
                         "исполнителю». Переход в «Отклонено» не выполнен.").is_visible()
    assert steps(appeal_id) == ["received", "escalated"]

    # a double click on «Сохранить»: one step, whichever request arrives second is refused
    a.goto(f"/appeals/{appeal_id}")
    a.get_by_label("Новый статус").select_option("in_progress")
    posts = []
    a.on("request", lambda r: r.method == "POST" and r.url.endswith("/transition") and posts.append(r.url))
    a.get_by_role("button", name="Сохранить").dblclick()
    a.locator(".flash").first.wait_for()  # «Статус: В работе.», or the refusal of the second click
    text = " ".join(a.locator(".flash").all_inner_texts())
    assert "Статус: В работе." in text or "на странице было «Передано исполнителю», сейчас «В работе»" in text, text
    assert steps(appeal_id) == ["received", "escalated", "in_progress"]
    print(f"double click: {len(posts)} POST(s) sent, 1 step made")
    assert posts
    # Chromium reports the refusals' 409s on the console; nothing else may go wrong
    others = [p for p in a.crm_problems + b.crm_problems if "status of 409" not in p]
    assert not others, others
    assert any("status of 409" in p for p in a.crm_problems)  # the refusal above was a 409
