"""The access log's canonical encoding: the fast path is byte for byte ``json.dumps``; archives verify alone."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from crm.security import audit

ALPHABET = ["a", "Я", "ё", '"', "\\", "\n", "\t", "\x00", "\x1e", "\x1f", "\u2028", "😀", " ", "/", "%s", "%", "{", "}"]


def reference(entry: dict) -> bytes:
    data = {k: v for k, v in entry.items() if k != "hash"}
    if data.get("at") is not None and not isinstance(data["at"], str):
        data["at"] = data["at"].isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def random_entry(rng: random.Random) -> dict:
    def text(n=12):
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, n)))

    def maybe(value):
        return value if rng.random() < 0.6 else None

    at = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=rng.randint(0, 10**13))
    return {"seq": rng.randint(1, 10**12), "at": at, "actor_id": maybe(rng.randint(0, 10**6)), "actor": text(),
            "actor_role": text(5), "action": text(8), "citizen_id": maybe(text(36)), "fields": text(),
            "purpose": maybe(text()), "appeal_id": maybe(text(36)), "call_id": maybe(text(36)), "ip": maybe(text()),
            "user_agent": maybe(text(50)), "outcome": text(5), "detail": maybe(text(80)), "prev_hash": "0" * 64}


def test_fast_canonical_equals_json_dumps():
    rng = random.Random(4)
    for _ in range(3000):
        e = random_entry(rng)
        assert audit.canonical(e) == reference(e)
        assert audit.canonical({**e, "hash": "x"}) == reference(e)


def test_row_hash_of_sorted_columns_equals_entry_hash():
    rng = random.Random(5)
    for _ in range(500):
        e = random_entry(rng)
        row = tuple(e[k] for k in audit.SORTED_FIELDS)
        assert audit._row_hash(row) == audit.entry_hash(e)


def test_other_shapes_fall_back_to_json_dumps():
    e = {"seq": 1, "at": "2026-01-01T00:00:00.000000+00:00", "extra": [1, 2]}
    assert audit.canonical(e) == reference(e)


def _archive(n: int) -> list[str]:
    prev = audit.GENESIS
    lines = []
    for i in range(1, n + 1):
        e = random_entry(random.Random(i))
        e["seq"], e["prev_hash"] = i, prev
        e["at"] = e["at"].isoformat(timespec="microseconds")
        e["hash"] = prev = audit.entry_hash(e)
        lines.append(json.dumps(e, sort_keys=True, ensure_ascii=False))
    return lines


def test_archive_verifies_and_names_the_first_bad_entry():
    lines = _archive(12)
    count, bad, message, info = audit.verify_lines(lines)
    assert (count, bad, info["first"], info["last"]) == (12, None, 1, 12)
    # a slice from the middle verifies on its own
    assert audit.verify_lines(lines[4:9])[1] is None
    edited = json.loads(lines[6])
    edited["actor"] = "someone-else"
    assert audit.verify_lines(lines[:6] + [json.dumps(edited)] + lines[7:])[1] == 7
    assert audit.verify_lines(lines[:5] + lines[6:])[1] == 6  # deleted
    assert audit.verify_lines(lines[:3] + [lines[4], lines[3]] + lines[5:])[1] == 4  # swapped
    assert audit.verify_lines(lines[:3] + ["not json"] + lines[3:])[1] is not None


@pytest.mark.parametrize("spec, at, after", [
    ("08:00-20:00", "2026-03-02T05:30:00+00:00", False),  # 08:30 MSK
    ("08:00-20:00", "2026-03-02T04:59:00+00:00", True),   # 07:59 MSK
    ("08:00-20:00", "2026-03-02T17:00:00+00:00", True),   # 20:00 MSK
    ("20:00-08:00", "2026-03-02T20:00:00+00:00", False),  # night shift, 23:00 MSK
    ("20:00-08:00", "2026-03-02T10:00:00+00:00", True),
    ("00:00-00:00", "2026-03-02T01:00:00+00:00", False),  # around the clock
])
def test_working_hours(app, spec, at, after):
    from crm.dpo import alerts

    with app.app_context():
        old = app.config["CRM_AUDIT_WORKING_HOURS"]
        app.config["CRM_AUDIT_WORKING_HOURS"] = spec
        try:
            assert alerts.is_after_hours(datetime.fromisoformat(at)) is after
        finally:
            app.config["CRM_AUDIT_WORKING_HOURS"] = old


def test_pg_parts_rebuild_the_canonical_encoding():
    """PostgreSQL's crm_audit_append hashes pre + '"' + prev_hash + '"' + mid + seq + suf: it must
    be the very bytes verify() hashes."""
    rng = random.Random(7)
    for _ in range(2000):
        e = random_entry(rng)
        e["prev_hash"] = "".join(rng.choice("0123456789abcdef") for _ in range(64))
        pre, mid, suf = audit.pg_parts({k: v for k, v in e.items() if k not in ("seq", "prev_hash")})
        assert (pre + '"' + e["prev_hash"] + '"' + mid + str(e["seq"]) + suf).encode("utf-8") == reference(e)
