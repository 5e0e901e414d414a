"""`crm audit verify` (the real CLI) against tampering: edits, deletions, swaps, a cut-off tail, a
re-hashed history; the signed checkpoints outside the database; the DPO's keys; archives."""
from __future__ import annotations

import json
import time

import pytest

from crm.db import db
from crm.security import audit, checkpoints
from crm.security.models import AccessLogEntry
from tests.conftest import tamper


@pytest.fixture()
def cpdir(ctx, tmp_path, monkeypatch):
    """A checkpoint directory and signing key of this test only."""
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_SIGNING_KEY", str(tmp_path / "app" / "audit-signing.key"))
    return tmp_path / "checkpoints"


@pytest.fixture()
def dpo_keys(runner, tmp_path):
    result = runner("audit", "keygen", "--out", str(tmp_path / "dpo"))
    assert result.exit_code == 0, result.output
    return tmp_path / "dpo" / "dpo-ed25519.key", tmp_path / "dpo" / "dpo-ed25519.pub"


def append(n: int, tag: str = "t") -> None:
    for i in range(n):
        audit.record("test.append", detail=f"{tag}-{i}", actor=audit.system_actor("test"))
        db.session.commit()


def head_seq() -> int:
    return audit.head()[0]


def assert_fails(result, *needles):
    assert result.exit_code == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


def rechain(from_seq: int) -> None:
    """What an attacker with database rights does after editing: recompute every hash from
    ``from_seq`` on and the head row, so the chain verifies again."""
    db.session.commit()
    rows = db.session.execute(db.select(AccessLogEntry).order_by(AccessLogEntry.seq)).scalars().all()
    prev = audit.GENESIS
    updates = []
    for r in rows:
        d = audit.entry_dict(r)
        if r.seq >= from_seq:
            d["prev_hash"] = prev
            updates.append({"s": r.seq, "p": prev, "h": audit.entry_hash(d)})
            prev = updates[-1]["h"]
        else:
            prev = r.hash
    db.session.rollback()
    for u in updates:
        tamper("UPDATE access_log SET prev_hash = :p, hash = :h WHERE seq = :s", **u)
    tamper("UPDATE audit_head SET seq = :n, hash = :h WHERE id = 1", n=rows[-1].seq, h=prev)


# --- the chain alone --------------------------------------------------------------------------------

def test_intact_chain_passes(runner):
    append(5)
    result = runner("audit", "verify")
    assert result.exit_code == 0 and "ok: 5 entries" in result.output, result.output
    # the chain alone cannot see a cut-off tail: the output says so and how to check the checkpoints
    assert "note: checkpoints not checked" in result.output and "--checkpoints" in result.output


def test_edited_entry_is_named(runner):
    append(6)
    tamper("UPDATE access_log SET detail = 'nothing to see' WHERE seq = 4")
    assert_fails(runner("audit", "verify"), "entry 4", "contents do not match")


def test_deleted_entry_is_named(runner):
    append(6)
    tamper("DELETE FROM access_log WHERE seq = 3")
    assert_fails(runner("audit", "verify"), "entry 3 is missing")


def test_swapped_entries_are_named(runner):
    append(6)
    tamper("UPDATE access_log SET seq = -1 WHERE seq = 2")
    tamper("UPDATE access_log SET seq = 2 WHERE seq = 3")
    tamper("UPDATE access_log SET seq = 3 WHERE seq = -1")
    assert_fails(runner("audit", "verify"), "entry 2")


def test_newest_ten_dropped_is_caught_by_the_head_row(runner):
    append(25)
    tamper("DELETE FROM access_log WHERE seq > 15")
    assert_fails(runner("audit", "verify"), "newest entries removed", "16")


def test_chain_alone_cannot_see_a_rewritten_head(runner):
    """The limitation checkpoints exist for: cut the tail and rewrite the head row, and the chain verifies."""
    append(25)
    last = db.session.get(AccessLogEntry, 15)
    tamper("DELETE FROM access_log WHERE seq > 15")
    tamper("UPDATE audit_head SET seq = 15, hash = :h WHERE id = 1", h=last.hash)
    assert runner("audit", "verify").exit_code == 0


# --- checkpoints ------------------------------------------------------------------------------------

def test_checkpoint_catches_dropped_newest_ten_with_the_head_rewritten(runner, cpdir):
    append(25)
    result = runner("audit", "checkpoint")
    assert result.exit_code == 0 and "line 1: entry 25" in result.output, result.output
    assert head_seq() == 26  # the checkpoint itself is logged
    keep = db.session.get(AccessLogEntry, 16)
    tamper("DELETE FROM access_log WHERE seq > 16")
    tamper("UPDATE audit_head SET seq = 16, hash = :h WHERE id = 1", h=keep.hash)
    assert runner("audit", "verify").exit_code == 0  # the chain alone is fooled
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "first bad entry 17", "names entry 25",
                 "newest entries removed")


def test_checkpoint_catches_rewritten_and_rechained_history(runner, cpdir):
    append(10, "a")
    assert runner("audit", "checkpoint").exit_code == 0   # covers 1–10
    append(10, "b")
    assert runner("audit", "checkpoint").exit_code == 0   # covers 1–21
    append(3, "c")
    tamper("UPDATE access_log SET actor = 'innocent' WHERE seq = 14")
    rechain(14)
    assert runner("audit", "verify").exit_code == 0  # re-hashed: the chain alone is fooled
    result = runner("audit", "verify", "--checkpoints", str(cpdir))
    # the first checkpoint still matches; the second pins the damage to entries 11–21
    assert_fails(result, "first bad entry 11", "history rewritten between entries 11 and 21")


def test_checkpoint_catches_whole_history_rehashed(runner, cpdir):
    append(8)
    assert runner("audit", "checkpoint").exit_code == 0
    tamper("UPDATE access_log SET citizen_id = NULL, detail = 'nothing' WHERE seq = 1")
    rechain(1)
    assert runner("audit", "verify").exit_code == 0
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "first bad entry 1")


def test_edited_checkpoint_line_is_caught(runner, cpdir):
    append(5)
    runner("audit", "checkpoint")
    path = cpdir / checkpoints.FILE_NAME
    d = json.loads(path.read_text())
    d["seq"] = 3
    path.write_text(json.dumps(d) + "\n")
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "bad signature")


def test_truncated_checkpoint_file_is_caught_by_the_chain(runner, cpdir):
    append(5)
    runner("audit", "checkpoint")
    append(5)
    runner("audit", "checkpoint")
    path = cpdir / checkpoints.FILE_NAME
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "file ends at n=1", "cut short")


def test_entries_left_uncovered_too_long_fail(runner, cpdir, monkeypatch, ctx):
    append(3)
    runner("audit", "checkpoint")
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_GRACE_S", 0.05)
    append(2)
    time.sleep(0.1)
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "no checkpoint covers them",
                 "checkpoints stopped")


def test_fresh_entries_after_a_quiet_spell_are_not_late(runner, cpdir, monkeypatch, ctx):
    """No checkpoint is written while nothing is new, so after a quiet spell the last one is old;
    entries written a moment ago are not late (a user saw this fail every morning)."""
    append(3)
    runner("audit", "checkpoint")
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_GRACE_S", 2.0)
    time.sleep(2.2)  # the last checkpoint is now older than the grace period
    append(2)
    result = runner("audit", "verify", "--checkpoints", str(cpdir))
    assert result.exit_code == 0, (result.output, getattr(result, "stderr", ""))
    time.sleep(2.1)  # now the two entries themselves have waited too long
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "no checkpoint covers them")


def test_checkpoint_skips_when_nothing_new_and_no_checkpoints_is_a_failure(runner, cpdir):
    append(3)
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "no checkpoints")
    assert "line 1" in runner("audit", "checkpoint").output
    assert "nothing new" in runner("audit", "checkpoint").output  # only its own log entry since
    assert runner("audit", "verify", "--checkpoints", str(cpdir)).exit_code == 0


# --- the DPO's keys ---------------------------------------------------------------------------------

def test_dpo_keygen_attest_and_verify_with_the_public_key(runner, cpdir, dpo_keys):
    priv, pub = dpo_keys
    append(4)
    runner("audit", "checkpoint")
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir), "--public-key", str(pub)), "attest")
    result = runner("audit", "attest", "--private-key", str(priv), "--checkpoints", str(cpdir), "--by", "Иванова")
    assert result.exit_code == 0, result.output
    assert db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == "audit.attest")).scalar()
    append(4)
    runner("audit", "checkpoint")  # continues the attested key chain
    result = runner("audit", "verify", "--checkpoints", str(cpdir), "--public-key", str(pub))
    assert result.exit_code == 0 and "attested by the DPO key" in result.output, result.output


def test_lost_app_key_starts_a_new_chain_that_needs_the_dpo(runner, cpdir, dpo_keys, ctx):
    from pathlib import Path

    from crm.dpo.models import AccessAlert

    priv, pub = dpo_keys
    append(3)
    runner("audit", "checkpoint")
    assert runner("audit", "attest", "--private-key", str(priv), "--checkpoints", str(cpdir)).exit_code == 0
    Path(ctx.config["CRM_AUDIT_SIGNING_KEY"]).unlink()  # e.g. an admin replaced the server
    append(3)
    result = runner("audit", "checkpoint")
    assert "new key chain" in result.output, result.output
    alert = db.session.execute(db.select(AccessAlert).where(AccessAlert.rule == "checkpoint")).scalar_one()
    assert "attest" in alert.detail
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir), "--public-key", str(pub)), "new app key chain")
    assert runner("audit", "attest", "--private-key", str(priv), "--checkpoints", str(cpdir)).exit_code == 0
    assert runner("audit", "verify", "--checkpoints", str(cpdir), "--public-key", str(pub)).exit_code == 0


def test_a_stale_dpo_attestation_fails_verification(runner, cpdir, dpo_keys, ctx, monkeypatch):
    """Issue 13: lines after the DPO's newest attestation rest on the app's own key, so whoever holds
    it (an administrator who rewrote history) can re-sign them. The DPO's attestation must be
    recent: older than CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS, verify --checkpoints fails; attesting
    again (allowed, whatever the age) makes it pass."""
    from datetime import timedelta

    priv, pub = dpo_keys
    append(3)
    runner("audit", "checkpoint")
    assert runner("audit", "attest", "--private-key", str(priv), "--checkpoints", str(cpdir)).exit_code == 0
    append(3)
    runner("audit", "checkpoint")
    for args in ((), ("--public-key", str(pub))):
        assert runner("audit", "verify", "--checkpoints", str(cpdir), *args).exit_code == 0
    # forty days later (the limit is 35): the same file, the clock moved on
    later = checkpoints.utcnow() + timedelta(days=40)
    monkeypatch.setattr(checkpoints, "utcnow", lambda: later)
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_GRACE_S", 3600 * 24 * 365)  # only the age is at issue
    for args in ((), ("--public-key", str(pub))):
        assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir), *args),
                     "newest checkpoint attested by the DPO", "CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS=35", "crm audit attest")
    older = runner("audit", "verify", "--checkpoints", str(cpdir), "--public-key", str(pub), "--older-copy")
    assert older.exit_code == 0 and "CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS" in older.output, older.output
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS", 60)
    assert runner("audit", "verify", "--checkpoints", str(cpdir), "--public-key", str(pub)).exit_code == 0
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS", 35)
    assert runner("audit", "attest", "--private-key", str(priv), "--checkpoints", str(cpdir)).exit_code == 0
    runner("audit", "checkpoint", "--force")  # a checkpoint of "now" (forty days on) ...
    assert runner("audit", "attest", "--private-key", str(priv), "--checkpoints", str(cpdir)).exit_code == 0
    result = runner("audit", "verify", "--checkpoints", str(cpdir), "--public-key", str(pub))
    assert result.exit_code == 0, result.output  # ... attested: recent again


def test_a_file_never_attested_fails_once_older_than_the_limit(runner, cpdir, ctx, monkeypatch):
    from datetime import timedelta

    append(2)
    runner("audit", "checkpoint")
    assert runner("audit", "verify", "--checkpoints", str(cpdir)).exit_code == 0
    later = checkpoints.utcnow() + timedelta(days=36)
    monkeypatch.setattr(checkpoints, "utcnow", lambda: later)
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_GRACE_S", 3600 * 24 * 365)
    assert_fails(runner("audit", "verify", "--checkpoints", str(cpdir)), "no checkpoint has been attested by the DPO")
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS", None)
    assert runner("audit", "verify", "--checkpoints", str(cpdir)).exit_code == 0


def test_attest_refuses_a_damaged_chain(runner, cpdir, dpo_keys):
    priv, _ = dpo_keys
    append(4)
    runner("audit", "checkpoint")
    tamper("UPDATE access_log SET detail = 'x' WHERE seq = 2")
    assert_fails(runner("audit", "attest", "--private-key", str(priv), "--checkpoints", str(cpdir)), "not attesting")


def test_encrypted_dpo_key(runner, cpdir, tmp_path):
    out = tmp_path / "enc"
    assert runner("audit", "keygen", "--out", str(out), "--passphrase-stdin", input="долгий пароль\n").exit_code == 0
    append(2)
    runner("audit", "checkpoint")
    key = str(out / "dpo-ed25519.key")
    assert runner("audit", "attest", "--private-key", key, "--checkpoints", str(cpdir)).exit_code != 0
    assert runner("audit", "attest", "--private-key", key, "--checkpoints", str(cpdir), "--passphrase-stdin",
               input="долгий пароль\n").exit_code == 0


# --- export for archiving ---------------------------------------------------------------------------

def test_export_verifies_alone_and_against_checkpoints(runner, cpdir, tmp_path):
    append(12)
    runner("audit", "checkpoint")
    archive = tmp_path / "archive.jsonl"
    result = runner("audit", "export", "--from", "2000-01-01", "--to", "2100-12-31", str(archive))
    assert result.exit_code == 0, result.output
    lines = archive.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 13 and json.loads(lines[0])["seq"] == 1
    assert all(audit.entry_hash(json.loads(line)) == json.loads(line)["hash"] for line in lines)
    result = runner("audit", "verify", "--archive", str(archive), "--checkpoints", str(cpdir))
    assert result.exit_code == 0 and "1 checkpoints fall in the archive" in result.output, result.output
    exported = db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == "audit.export")).scalar_one()
    assert "seq=1-13" in exported.detail
    d = json.loads(lines[5])
    d["actor"] = "x"
    lines[5] = json.dumps(d, ensure_ascii=False)
    archive.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert_fails(runner("audit", "verify", "--archive", str(archive)), "entry 6")


def test_export_of_an_empty_period_is_an_error(runner, tmp_path):
    append(2)
    result = runner("audit", "export", "--from", "2001-01-01", "--to", "2001-01-02", str(tmp_path / "x.jsonl"))
    assert result.exit_code != 0 and "no entries" in result.output


def test_nothing_in_the_app_edits_or_deletes_log_entries():
    """Append-only in the code: no UPDATE or DELETE of access_log anywhere in crm/ (the head row is
    updated by the chain only)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "crm"
    bad = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"update\(\s*AccessLogEntry", r"delete\(\s*AccessLogEntry", r"UPDATE\s+access_log\b",
                        r"DELETE\s+FROM\s+access_log\b", r"TRUNCATE\s+access_log", r"session\.delete\(\s*(entry|row)\b"):
            if re.search(pattern, text, re.IGNORECASE):
                bad.append(f"{path.relative_to(root)}: {pattern}")
    assert not bad, bad


def test_the_dpos_older_copy_of_the_checkpoints(runner, cpdir, tmp_path, monkeypatch, ctx):
    import shutil

    append(6)
    runner("audit", "checkpoint")
    copy = tmp_path / "dpo-copy"
    shutil.copytree(cpdir, copy)
    append(4)
    runner("audit", "checkpoint")
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_GRACE_S", 0.05)
    time.sleep(0.1)
    append(1)
    assert_fails(runner("audit", "verify", "--checkpoints", str(copy)), "cut short")
    result = runner("audit", "verify", "--checkpoints", str(copy), "--older-copy")
    assert result.exit_code == 0 and "older copy" in result.output, result.output
    # the copy still pins history it covers, whatever happens to the live file
    tamper("UPDATE access_log SET detail = 'x' WHERE seq = 2")
    rechain(2)
    assert_fails(runner("audit", "verify", "--checkpoints", str(copy), "--older-copy"), "history rewritten")


def test_awkward_values_hash_the_same_in_the_database_and_in_python(runner):
    """verify builds the canonical text in SQL on PostgreSQL: it must agree with Python byte for byte."""
    awkward = ['кавычки " и \\ обратная', "управляющие \x01\x08\x0c\n\r\t\x1f конец", "эмодзи 😀 и \u2028 \u00a0",
               "проценты %s %(x)s {}", "'; DROP TABLE access_log; --", ""]
    for i, text in enumerate(awkward):
        audit.record("test.awkward", citizen_id=None if i % 2 else f"c-{i}", fields=["phone", "full_name"],
                     purpose=text[:40] or None, detail=text, actor=audit.Actor(i or None, text[:80] or "x", "op"))
        db.session.commit()
    assert audit.verify()[1] is None
    assert runner("audit", "verify").exit_code == 0
    tamper("UPDATE access_log SET detail = :d WHERE seq = 3", d=awkward[2] + " ")
    assert_fails(runner("audit", "verify"), "entry 3")
