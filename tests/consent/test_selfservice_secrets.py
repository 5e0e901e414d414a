"""One-time codes and self-service link tokens are kept only as HMACs.

A link (sent by the DPO through the real page) and a code (asked for on the citizen's page) are
issued; the gateway delivers both with their secret, both work, and then every row of every table
of the main database and the key store is searched for the code, the token, its signature and its
nonce: none holds them in clear. The DPO's outbox page shows the texts masked, with no usable link,
and viewing it is in the access log."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from urllib.parse import urlparse

import sqlalchemy as sa
from itsdangerous import URLSafeTimedSerializer

from crm.db import db
from tests.clients import SharedContextClient as Client
from tests.factories import CitizenFactory
from tests.mfa import sign_in

PHONE = "+7 912 707-31-46"


def _issue(ctx, make_user, sms_inbox, run_worker) -> dict:
    from crm.consent import selfservice
    from crm.consent import services as consent

    citizen = CitizenFactory(full_name="Секретова Вера", phone=PHONE)
    consent.record(citizen, "sms_notifications", channel="call")
    dpo = make_user("dpo")
    staff = Client(ctx)
    sign_in(staff, dpo)
    assert staff.post(f"/citizens/{citizen.id}/selfservice-link").status_code == 302
    visitor = Client(ctx)
    assert visitor.post("/my", data={"phone": "8 912 707 31 46"}).status_code == 302
    run_worker()  # the code is sent by a background job
    texts = [m.body for m in sms_inbox]
    link = next(re.search(r"https?://\S+/my/link/\S+", t).group(0) for t in texts if "/my/link/" in t)
    code = next(re.search(r"\b(\d{6})\b", t).group(1) for t in texts if "Код" in t)
    path = urlparse(link).path
    token = path.rsplit("/", 1)[1]
    data = URLSafeTimedSerializer(ctx.secret_key, salt=selfservice.SALT).loads(token)
    return {"citizen": citizen, "staff": staff, "visitor": visitor, "path": path, "token": token, "code": code,
            "nonce": data.get("n"), "signature": token.rsplit(".", 1)[1]}


def _rows():
    """(bind, table, column, value) of every non-empty text or bytes value in both databases."""
    db.session.commit()
    for bind, engine in (("main", db.engines[None]), ("keystore", db.engines["keystore"])):
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                t = sa.Table(table, sa.MetaData(), autoload_with=conn)
                for row in conn.execute(sa.select(t)).mappings():
                    for col, value in row.items():
                        if isinstance(value, (str, bytes, bytearray, memoryview)) and value:
                            yield bind, table, col, bytes(value) if not isinstance(value, str) else value


def test_codes_and_link_tokens_are_kept_only_as_hmacs(ctx, make_user, sms_inbox, run_worker):
    issued = _issue(ctx, make_user, sms_inbox, run_worker)
    code, token = issued["code"], issued["token"]
    # the citizen got working secrets: the link opens, the code signs in
    assert Client(ctx).get(issued["path"]).status_code == 200
    resp = issued["visitor"].post("/my/code", data={"code": code})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/my/consents")

    code_re = re.compile(rf"(?<!\d){code}(?!\d)")
    code_bytes = re.compile(rf"(?<!\d){code}(?!\d)".encode())
    needles = [n for n in (token, issued["signature"], issued["nonce"]) if n]
    scanned = 0
    for bind, table, col, value in _rows():
        scanned += 1
        where = f"{bind}.{table}.{col}"
        if isinstance(value, str):
            assert not code_re.search(value), f"the one-time code is in clear in {where}: {value!r}"
            for n in needles:
                assert n not in value, f"the link token (or part) is in clear in {where}: {value!r}"
        else:
            assert not code_bytes.search(value), f"the one-time code is in {where}"
            for n in needles:
                assert n.encode() not in value, f"the link token (or part) is in {where}"
    assert scanned > 20
    # what is kept instead: HMACs on the grants, masked texts in the outbox
    from crm.consent.models import SelfServiceGrant, SmsMessage

    grants = db.session.execute(sa.select(SelfServiceGrant)).scalars().all()
    assert {g.kind for g in grants} == {"link", "code"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", g.token_hash if g.kind == "link" else g.code_hash) for g in grants)
    bodies = {m.kind: m.body for m in db.session.execute(sa.select(SmsMessage)).scalars()}
    assert "/my/link/***" in bodies["link"] and "Код для управления согласиями: ***." in bodies["code"]


def test_a_link_whose_nonce_does_not_match_is_forged(ctx, make_user, sms_inbox, run_worker):
    from crm.consent import selfservice

    issued = _issue(ctx, make_user, sms_inbox, run_worker)
    data = URLSafeTimedSerializer(ctx.secret_key, salt=selfservice.SALT).loads(issued["token"])
    # someone with the secret key and the database (the grant id) still cannot make the link
    rebuilt = URLSafeTimedSerializer(ctx.secret_key, salt=selfservice.SALT).dumps({"g": data["g"]})
    resp = Client(ctx).get(f"/my/link/{rebuilt}")
    assert resp.status_code == 400 and "Ссылка недействительна" in resp.get_data(as_text=True)
    guessed = URLSafeTimedSerializer(ctx.secret_key, salt=selfservice.SALT).dumps({"g": data["g"], "n": "x" * 22})
    assert Client(ctx).post(f"/my/link/{guessed}").status_code == 400
    assert Client(ctx).get(issued["path"]).status_code == 200


def test_dpo_outbox_shows_masked_texts_and_the_view_is_logged(ctx, make_user, sms_inbox, run_worker):
    from crm.security.models import AccessLogEntry

    issued = _issue(ctx, make_user, sms_inbox, run_worker)
    html = issued["staff"].get("/dpo/sms-outbox").get_data(as_text=True)
    assert "/my/link/***" in html and "07-31-46" not in html.replace("***-**-46", "")
    assert issued["token"] not in html and issued["signature"] not in html and issued["code"] not in html
    assert not re.search(r"/my/link/[\w.-]{8,}", html), "a usable link on the outbox page"
    db.session.commit()
    views = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "sms.outbox_view")).scalars().all()
    assert len(views) == 1 and views[0].actor_role == "dpo" and views[0].outcome == "ok"
    assert "2 messages" in views[0].detail


def test_migration_masks_secrets_already_in_the_outbox():
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0013_selfservice_secrets_hashed.py"
    spec = importlib.util.spec_from_file_location("m0011", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    link = ("Горячая линия ЖКХ: управление согласиями на обработку данных — https://crm.example/my/link/"
            "eyJnIjoiYWJjIn0.Z1x2Yw.abcDEF_ghi-JKL (ссылка одноразовая, действует до 09.12.2026 10:00 МСК).")
    assert mod._mask("link", link) == link.replace("eyJnIjoiYWJjIn0.Z1x2Yw.abcDEF_ghi-JKL", "***")
    code = "Код для управления согласиями: 042917. Действует 10 мин. Никому его не сообщайте."
    assert mod._mask("code", code) == code.replace("042917", "***")
