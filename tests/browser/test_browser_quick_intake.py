"""An operator in a hurry (issue 14, point 7) and repeats before saving (point 6), in headless
Chromium: a typical phone appeal of a known citizen from the telephony's call — citizen, house and
the call's recording prefilled, the topic found by typing, the keyboard only — takes two page loads
(the form, the registered appeal); the test prints its page loads, key actions and screen time.
While the operator types, the open appeal on the same topic is offered: Alt+R links the new appeal as
its repeat, Alt+A attaches the call to it instead of opening another."""
from __future__ import annotations

import io
import secrets
import time
from pathlib import Path

import pytest
from tests.core.test_pages import clean_side_effects  # noqa: F401  (fixture)
from tests.factories import AppealFactory, CitizenFactory
from tests.wavs import tone_wav

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser


@pytest.fixture()
def caller(ctx, make_user):
    """An operator's user name, a known citizen living in a house of the register, and the
    telephony's recording of their call (stored for the citizen, in no appeal yet)."""
    from crm.buildings.services import find, import_csv
    from crm.calls import services as calls
    from crm.db import db

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 15\"\n".encode())
    username = f"op_{secrets.token_hex(3)}"
    make_user("operator", username=username)
    citizen = CitizenFactory(full_name="Быстрова Ольга Петровна", address="Москва, улица Ленина, дом 5")
    call = calls.store_recording(io.BytesIO(tone_wav()), "pbx-77.wav", citizen_id=citizen.id)
    out = {"username": username, "citizen_id": citizen.id, "call_id": call.id,
           "building_id": find("москва ул ленина 5").id}
    db.session.commit()
    db.session.remove()
    return out


class Stopwatch:
    """Counts the page's main-frame loads and the operator's key actions, and the time between."""

    def __init__(self, page):
        self.page, self.loads, self.actions = page, 0, []
        page.on("load", lambda _p: setattr(self, "loads", self.loads + 1))
        self.started = time.perf_counter()

    def act(self, what: str, fn, *args):
        self.actions.append(what)
        fn(*args)

    def report(self, label: str) -> float:
        seconds = time.perf_counter() - self.started
        print(f"\n{label}: page loads {self.loads}, actions {len(self.actions)} ({'; '.join(self.actions)}), "
              f"screen time {seconds:.1f} s")
        return seconds


def test_a_phone_appeal_of_a_known_citizen_in_two_page_loads(ctx, new_page, sign_in, caller,
                                                             clean_side_effects):  # noqa: F811
    from crm.appeals import services as appeals
    from crm.calls import services as calls

    page = sign_in(new_page(), caller["username"])  # signed in at the start of the shift
    watch = Stopwatch(page)
    kb = page.keyboard
    # the call's screen pop: the known caller's new-appeal form, with this call
    page.goto(f"/citizens/{caller['citizen_id']}/appeals/new?call_id={caller['call_id']}")
    assert page.evaluate("document.activeElement.id") == "topic-filter"  # typing starts at once
    assert page.get_by_label("Дом (из реестра домов)").input_value() == "г. Москва, ул. Ленина, д. 5"
    assert page.locator("select[name=call_id]").input_value() == caller["call_id"]
    watch.act("type «горяч»", kb.type, "горяч", )
    page.locator("#topic-suggestions [role=option]").first.wait_for()
    watch.act("Enter (topic)", kb.press, "Enter")
    assert page.locator("select[name=topic]").input_value() == "hot_water"
    assert page.evaluate("document.activeElement.name") == "category"
    watch.act("ArrowDown (category: «Аварийная»)", kb.press, "ArrowDown")
    assert page.locator("select[name=category]").input_value() == "emergency"
    watch.act("Tab", kb.press, "Tab")
    assert page.evaluate("document.activeElement.name") == "description"
    watch.act("type the description", kb.type, "Нет горячей воды с утра во всём подъезде")
    with page.expect_navigation():
        watch.act("Ctrl+Enter", kb.press, "Control+Enter")
    page.wait_for_load_state()
    seconds = watch.report("phone appeal of a known citizen")
    assert "/appeals/" in page.url and "зарегистрировано" in page.content()
    assert watch.loads <= 2, watch.loads
    assert seconds <= 60
    assert len(watch.actions) <= 8
    assert not page.crm_problems, page.crm_problems
    appeal = appeals.get(page.url.rstrip("/").rsplit("/", 1)[-1])
    assert (appeal.topic, appeal.category, appeal.building_id) == ("hot_water", "emergency", caller["building_id"])
    assert [c.id for c in calls.for_appeal(appeal.id)] == [caller["call_id"]]


def _earlier(caller, topic="hot_water"):
    from crm.db import db

    earlier = AppealFactory(citizen=__import__("crm.citizens.services", fromlist=["get"]).get(caller["citizen_id"]),
                            topic=topic, category="emergency", building_id=caller["building_id"])
    number, appeal_id = earlier.number, earlier.id
    db.session.commit()
    db.session.remove()
    return number, appeal_id


def test_alt_r_links_the_new_appeal_as_a_repeat(ctx, new_page, sign_in, caller, clean_side_effects):  # noqa: F811
    from crm.appeals import services as appeals

    number, earlier_id = _earlier(caller)
    page = sign_in(new_page(), caller["username"])
    page.goto(f"/citizens/{caller['citizen_id']}/appeals/new")
    page.keyboard.type("гвс")
    page.locator("#topic-suggestions [role=option]").first.wait_for()
    page.keyboard.press("Enter")
    panel = page.locator("#repeat-candidates")
    panel.wait_for()
    assert f"№ {number}" in panel.inner_text() and "тот же заявитель" in panel.inner_text()
    page.keyboard.press("ArrowDown")  # the category: «Аварийная»
    page.keyboard.press("Tab")
    page.keyboard.type("Опять нет горячей воды")
    page.keyboard.press("Alt+r")
    assert page.locator("#repeat-linked").inner_text() == f"Будет связано как повторное к № {number}"
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert not page.crm_problems, page.crm_problems
    appeal = appeals.get(page.url.rstrip("/").rsplit("/", 1)[-1])
    assert appeal.id != earlier_id and appeal.repeat_of_id == earlier_id


def test_alt_a_attaches_the_call_instead_of_a_new_appeal(ctx, new_page, sign_in, caller,
                                                       clean_side_effects):  # noqa: F811
    from crm.appeals.models import Appeal
    from crm.calls import services as calls
    from crm.db import db

    number, earlier_id = _earlier(caller, topic="lift")
    page = sign_in(new_page(), caller["username"])
    page.goto(f"/citizens/{caller['citizen_id']}/appeals/new?call_id={caller['call_id']}")
    page.keyboard.type("лифт")
    page.locator("#topic-suggestions [role=option]").first.wait_for()
    page.keyboard.press("Enter")
    page.locator("#repeat-candidates").wait_for()
    with page.expect_navigation():
        page.keyboard.press("Alt+a")
    assert page.url.endswith(f"/appeals/{earlier_id}")
    assert f"Звонок добавлен к обращению № {number}; новое обращение не открыто." in page.content()
    assert not page.crm_problems, page.crm_problems
    db.session.remove()
    assert [c.id for c in calls.for_appeal(earlier_id)] == [caller["call_id"]]
    assert db.session.execute(db.select(db.func.count()).select_from(Appeal)).scalar_one() == 1
