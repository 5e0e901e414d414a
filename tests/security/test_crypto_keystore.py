"""The key store: a database separate from the main one, commit order across the two, clear
errors for wrong or missing keys, and ``security.decrypt_failed`` written even when the request fails."""
from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from crm.citizens.models import Citizen
from crm.db import db
from crm.security import crypto, keystore
from crm.security.keyring import KeyError_, init_keys
from crm.security.models import AccessLogEntry, DataKey
from tests.factories import CitizenFactory

PHONE = "8 912 345-67-89"


def _events(action="security.decrypt_failed"):
    db.session.commit()
    return db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == action)).scalars().all()


def test_data_keys_live_in_the_key_store_not_in_the_main_database(ctx):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    main, ks = db.engines[None], db.engines["keystore"]
    assert main.url != ks.url
    assert "data_keys" not in sa.inspect(main).get_table_names()
    assert {"data_keys", "keks", "key_rotations", "erased_owners"} <= set(sa.inspect(ks).get_table_names())
    row = keystore.find_by_owner(c.id)
    assert row is not None and row.kek_id == crypto.keyring().active_id
    assert db.session.execute(db.select(DataKey).where(DataKey.owner_id == c.id)).scalar_one().id == row.id


def test_key_store_commits_first_a_failed_main_commit_leaves_a_harmless_orphan(ctx):
    from datetime import timedelta

    from crm.security import shredding

    c = CitizenFactory(full_name="Орфанов Олег", phone="+7 903 555-01-02", commit=False)
    cid = c.id
    db.session.rollback()  # the main database never gets the citizen
    assert db.session.get(Citizen, cid) is None
    assert keystore.find_by_owner(cid) is not None  # its DEK was committed first
    orphans = keystore.orphans(shredding.known_owners, timedelta(0))
    assert cid in {o.owner_id for o in orphans}
    kept = CitizenFactory(phone=PHONE, sadovaya=True)
    assert kept.id not in {o.owner_id for o in keystore.orphans(shredding.known_owners, timedelta(0))}
    assert keystore.delete_orphans([o for o in orphans if o.owner_id == cid]) == 1
    assert keystore.find_by_owner(cid) is None and keystore.find_by_owner(kept.id) is not None


def test_key_store_failure_leaves_no_citizen(ctx, monkeypatch):
    def broken(*_a, **_k):
        raise sa.exc.OperationalError("INSERT", {}, Exception("key store down"))

    before = db.session.execute(db.select(sa.func.count()).select_from(Citizen)).scalar()
    monkeypatch.setattr(keystore, "insert", broken)
    monkeypatch.setattr(keystore, "insert_many", broken)
    ctx.extensions.pop("crm_dek_pool", None)
    with pytest.raises(sa.exc.OperationalError):
        CitizenFactory(phone=PHONE, sadovaya=True)
    db.session.rollback()
    assert db.session.execute(db.select(sa.func.count()).select_from(Citizen)).scalar() == before


def _second_app(app_config, instance, **extra):
    from crm import create_app

    cfg = {**app_config, "INSTANCE_PATH": str(instance), **extra}
    cfg.setdefault("CRM_KEYSTORE_URL", db.engines["keystore"].url.render_as_string(hide_password=False))
    return create_app(cfg)


def test_a_wrong_key_file_is_named_when_the_key_store_starts(ctx, app_config, tmp_path):
    CitizenFactory(phone=PHONE, sadovaya=True)
    active = crypto.keyring().active_id
    init_keys(tmp_path / "keys")  # fresh, different keys with the same ids
    if active != "k1":
        shutil.copy(tmp_path / "keys" / "kek-k1.key", tmp_path / "keys" / f"kek-{active}.key")
        (tmp_path / "keys" / "active").write_text(active)
    db.session.commit()
    app2 = _second_app(app_config, tmp_path, SQLALCHEMY_DATABASE_URI=ctx.config["SQLALCHEMY_DATABASE_URI"])
    with app2.app_context():
        with pytest.raises(KeyError_, match=f"'{active}' does not match"):
            keystore.ensure()
        for e in db.engines.values():
            e.dispose()


def test_a_missing_key_is_named_when_the_key_store_starts(ctx, app_config, tmp_path):
    CitizenFactory(phone=PHONE, sadovaya=True)
    ring = crypto.keyring()
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    for kid in ring.keks:  # everything but the active key
        if kid != ring.active_id:
            shutil.copy(ctx.config["CRM_KEYS_DIR"] + f"/kek-{kid}.key", keys)
    import base64
    import os

    (keys / "kek-z9.key").write_text(base64.b64encode(os.urandom(32)).decode())
    (keys / "active").write_text("z9")
    shutil.copy(ctx.config["CRM_KEYS_DIR"] + "/index.key", keys)
    db.session.commit()
    app2 = _second_app(app_config, tmp_path, SQLALCHEMY_DATABASE_URI=ctx.config["SQLALCHEMY_DATABASE_URI"])
    with app2.app_context():
        with pytest.raises(KeyError_, match=f"'{ring.active_id}' is used by the key store but missing"):
            keystore.ensure()
        for e in db.engines.values():
            e.dispose()


def test_reading_with_a_missing_kek_names_it_and_is_logged(ctx, tmp_path):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    cid = c.id
    active = crypto.keyring().active_id
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    shutil.copy(ctx.config["CRM_KEYS_DIR"] + "/index.key", keys)
    import base64
    import os

    (keys / "kek-z9.key").write_text(base64.b64encode(os.urandom(32)).decode())
    (keys / "active").write_text("z9")
    old = ctx.config["CRM_KEYS_DIR"]
    ctx.config["CRM_KEYS_DIR"] = str(keys)
    crypto.reset_keyring()
    crypto.clear_caches()
    try:
        db.session.expire_all()
        with pytest.raises(KeyError_, match=f"'{active}' is not in the keyring"):
            _ = db.session.get(Citizen, cid).full_name
        db.session.rollback()
    finally:
        ctx.config["CRM_KEYS_DIR"] = old
        crypto.reset_keyring()
    events = _events()
    assert any(e.citizen_id == cid and active in e.detail for e in events)


def test_failed_decrypt_is_logged_even_though_the_request_fails(ctx, make_user, api_token):
    op = make_user("operator")
    headers = api_token(op)
    a = CitizenFactory(phone=PHONE, sadovaya=True)
    b = CitizenFactory(full_name="Сидорова Анна Павловна", phone="+7 903 111-22-33", sadovaya=True)
    bid, username = b.id, op.username
    db.session.execute(sa.update(Citizen).where(Citizen.id == bid).values(full_name_enc=a.full_name_enc))
    db.session.commit()
    crypto.clear_caches()
    client = ctx.test_client()
    resp = client.get(f"/api/v1/citizens/{bid}", headers=headers)
    assert resp.status_code == 500
    assert "Петров" not in resp.get_data(as_text=True)
    db.session.remove()
    events = _events()
    assert [e.citizen_id for e in events] == [bid]
    ev = events[0]
    assert ev.outcome == "failed" and ev.actor == username and "citizens.full_name" in ev.detail
    assert "Петров" not in ev.detail and "Сидорова" not in ev.detail
    # the failed request's own entries were rolled back
    assert not db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == "citizen.view",
                                                                  AccessLogEntry.citizen_id == bid)).first()
    from crm.security import audit

    assert audit.verify()[1] is None


def test_failed_decrypt_outside_a_request_is_logged_after_rollback(ctx):
    a = CitizenFactory(phone=PHONE, sadovaya=True)
    db.session.execute(sa.update(Citizen).where(Citizen.id == a.id).values(address_enc=a.full_name_enc))
    db.session.commit()
    db.session.expire_all()
    with pytest.raises(crypto.DecryptError, match="citizens.address") as info:
        _ = db.session.get(Citizen, a.id).address
    assert "Петров" not in str(info.value) and crypto.blob_dek_id(a.full_name_enc) in str(info.value)
    db.session.rollback()
    assert [e.citizen_id for e in _events()] == [a.id]


def test_an_erased_key_is_a_clear_error_never_an_empty_value(ctx):
    c = CitizenFactory(phone=PHONE, sadovaya=True)
    db.session.execute(db.delete(DataKey).where(DataKey.owner_id == c.id))
    db.session.commit()
    crypto.clear_caches()
    db.session.expire_all()
    with pytest.raises(crypto.KeyErased, match="erased"):
        _ = db.session.get(Citizen, c.id).phone


def test_failed_decrypt_records_the_trusted_client_address_not_a_forged_header(ctx, make_user, api_token):
    """``security.decrypt_failed`` takes the client's address as every entry does (remote_addr, set
    from X-Forwarded-For only by ProxyFix when CRM_TRUSTED_PROXIES says a proxy is in front): a
    client cannot write an address of its choice into the log with the header."""
    op = make_user("operator")
    headers = api_token(op)
    a = CitizenFactory(phone=PHONE, sadovaya=True)
    b = CitizenFactory(full_name="Сидорова Анна Павловна", phone="+7 903 111-22-33", sadovaya=True)
    bid = b.id
    db.session.execute(sa.update(Citizen).where(Citizen.id == bid).values(full_name_enc=a.full_name_enc))
    db.session.commit()
    crypto.clear_caches()
    client = ctx.test_client()
    resp = client.get(f"/api/v1/citizens/{bid}", headers={**headers, "X-Forwarded-For": "203.0.113.66, 10.0.0.1"},
                      environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert resp.status_code == 500
    db.session.remove()
    events = _events()
    assert [e.citizen_id for e in events] == [bid]
    assert events[0].ip == "198.51.100.7"
    assert not db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.ip.like("203.0.113.%"))).first()
