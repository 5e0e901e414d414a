"""The access log: append-only, hash-chained, written in the same transaction as the action.

Services call :func:`record`; entries are queued on the session and chained just before the commit
(SQLAlchemy ``before_commit``). If the entry cannot be written, the commit (and so the action) fails.

**Chaining.** Each entry's hash is SHA-256 over its canonical encoding (:func:`canonical`: JSON with
sorted keys, no spaces, UTF-8, ``at`` as ISO 8601 with microseconds) of all its fields but ``hash``,
including ``prev_hash``; the first entry's ``prev_hash`` is 64 zeros. The single ``audit_head`` row
(``seq``, ``hash``) serialises appenders from any number of processes: ``UPDATE audit_head ...
RETURNING`` takes its row lock on PostgreSQL (SQLite: every transaction already holds the write lock
from ``BEGIN IMMEDIATE``, see :mod:`crm.db`), the entries are numbered and hashed from the head, then
inserted together with the new head hash. The next appender waits on the row lock until this
transaction ends, so the chain is strictly linear: no gaps, no forks, order = ``seq``.

**Keeping the lock short.** The lock is taken as late as possible: the action's own rows are flushed
first, outside the lock. On SQLite the chaining is then two plain driver statements under the
write lock the transaction already holds. On PostgreSQL everything but ``seq`` and ``prev_hash`` is
encoded in Python outside the lock (:func:`pg_entry`: the canonical JSON split around those two
values, sent as one text parameter), and one pipelined message (psycopg pipeline mode) carries
BEGIN if nothing was sent yet, the chaining call — ``crm_audit_append`` locks the head, numbers
and hashes the entries *on the server* with the very same canonical encoding, fills each row from
the document it hashed, inserts them and moves the head — and the COMMIT: one round trip, and the
lock is never held while the server waits for the application; verification is unchanged. With
8 writers on 2 cores the application's own CPU per append was the limit, hence one parameter
instead of a dozen typed values per entry.

**Early lock release.** A PostgreSQL lock is released only when the commit record is on disk, so
appenders would still queue behind one WAL fsync each. With ``CRM_AUDIT_EARLY_LOCK_RELEASE``
(default on; PostgreSQL only) the chaining transaction alone commits with ``synchronous_commit``
off (``set_config(..., true)`` inside ``crm_audit_append``) — its locks are released as soon as the
commit record is in the WAL buffer — and a durability barrier (:func:`queue_barrier` in the same
message, or :func:`durability_barrier` after SQLAlchemy's COMMIT) then waits, outside any lock,
until the WAL is flushed past that commit, *before* ``session.commit()`` returns. This is early
lock release (DeWitt et al., "Implementation techniques for main memory database systems", SIGMOD
1984; Johnson et al., "Aether: a scalable approach to logging", VLDB 2010): a transaction that
chained onto ours commits later in the same WAL, so a crash can only lose a suffix of the chain
together with the actions it records, never a link in the middle, and no caller is told "done"
(no page rendered, no job enqueued, no checkpoint published) before its action and entry are
durable. The barriers of many writers share one fsync (group commit). The price: for the
milliseconds until the flush, another session may *see* rows of a transaction that a crash would
still lose; a read of personal data is itself logged and passes a barrier after ours, so it cannot
be answered before what it read is durable. If the barrier fails (the connection drops right after
COMMIT) ``commit()`` raises although the transaction may survive, as with any lost COMMIT
acknowledgement. Set the key to ``False`` to hold the lock through the fsync: appenders then
commit strictly one after another, one fsync each (slower with several writers even on a disk
with 0.1 ms fsyncs: compare the columns of ``bench/audit.py``). The server's
``synchronous_commit`` is a deployment setting and is not changed; if a deployment turns it off,
the barrier waits for nothing and a crash may lose the last fraction of a second of actions
together with their entries (never one without the other).
Measured figures, beside plain inserts on the same machine: ``bench/audit.py``.

**Verification.** :func:`verify` walks the chain up to the head; ``crm audit verify`` exits
non-zero naming the first bad entry. The chain alone cannot show that its newest entries were cut
off *and* the head row rewritten, or that all of history was re-hashed: see
:mod:`crm.security.checkpoints` for the signed checkpoints kept outside the database.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from json.encoder import encode_basestring as _json_str  # the C encoder json.dumps(ensure_ascii=False) uses
from typing import Iterable, Iterator

from contextlib import contextmanager

from flask import current_app, g, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from crm.db import db, utcnow
from crm.security.models import AccessLogEntry, AuditHead
from crm.security.permissions import ROLE_NAMES_RU

# The chaining message goes to the driver directly (pipeline mode); it is logged where SQLAlchemy
# logs its own statements, so an SQL log (echo) still shows every write.
_sql_log = logging.getLogger("sqlalchemy.engine.Engine")

GENESIS = "0" * 64
_PENDING = "crm_audit_pending"
_BARRIER = "crm_audit_barrier"
_COMMITTED = "crm_audit_committed"  # PostgreSQL: the chaining message committed the transaction
_CHUNK = 500  # entries per chaining call on PostgreSQL (a long list page is split)

# --- the catalogue of actions ------------------------------------------------------------------------

#: Reads of decrypted personal data (or of a recording). Alerts count these.
READ_ACTIONS = ("citizen.view", "citizen.reveal", "citizen.search", "appeal.view", "transcript.view",
                "transcript.search",
                "call.listen", "call.decrypt", "evaluation.view", "audit.report", "consent.history", "dsr.export")
#: Changes to citizens, appeals, calls, consents and evaluations.
CHANGE_ACTIONS = ("citizen.create", "citizen.update", "appeal.create", "appeal.transition", "call.create",
                  "call.retranscribe", "transcript.create", "transcript.fail", "consent.grant", "consent.refuse",
                  "consent.withdraw", "evaluation.create", "citizen.erase", "citizen.rectify",
                  "recording.destroy")
AUTH_ACTIONS = ("auth.login", "auth.login_failed", "auth.logout", "user.create", "token.issue")
SECURITY_ACTIONS = ("keys.rewrap", "keys.rotate", "keys.retire", "keys.index_start", "keys.index_backfill",
                    "keys.index_switch", "keys.index_drop", "security.decrypt_failed", "audit.checkpoint", "audit.attest",
                    "audit.export", "audit.alert_scan", "audit.alert_ack")

#: Russian labels for the DPO's pages and reports.
ACTION_LABELS = {
    "citizen.view": "просмотр карточки заявителя", "citizen.reveal": "раскрытие телефона и адреса",
    "citizen.search": "поиск заявителя по телефону", "appeal.view": "просмотр обращения",
    "transcript.view": "просмотр расшифровки звонка", "transcript.search": "поиск фразы в расшифровке звонка",
    "call.listen": "прослушивание записи звонка",
    "call.decrypt": "расшифрование записи для распознавания речи", "evaluation.view": "просмотр оценки звонка", "audit.report": "отчёт о доступе (ответственный за ПДн)",
    "citizen.create": "регистрация заявителя", "citizen.update": "изменение данных заявителя",
    "citizen.rectify": "уточнение данных заявителя (152-ФЗ ст. 21 ч. 2)",
    "citizen.erase": "уничтожение данных заявителя",
    "recording.destroy": "уничтожение записи и расшифровки звонка (отзыв согласия)",
    "appeal.create": "регистрация обращения", "appeal.transition": "изменение статуса обращения",
    "call.create": "загрузка записи звонка", "call.retranscribe": "повторная расшифровка звонка",
    "transcript.create": "расшифровка звонка (автоматически)",
    "transcript.fail": "ошибка расшифровки звонка", "consent.grant": "получение согласия",
    "consent.refuse": "отказ в согласии", "consent.withdraw": "отзыв согласия",
    "evaluation.create": "оценка звонка", "auth.login": "вход в систему", "auth.login_failed": "неудачный вход",
    "auth.logout": "выход из системы", "user.create": "создание учётной записи", "token.issue": "выдача API-токена",
    "keys.rewrap": "перешифрование ключей данных",
    "keys.rotate": "смена ключа шифрования ключей (KEK)", "keys.retire": "вывод ключа шифрования из оборота",
    "keys.index_start": "начало смены ключа поискового индекса",
    "keys.index_backfill": "заполнение поискового индекса новым ключом",
    "keys.index_switch": "переход поискового индекса на новый ключ",
    "keys.index_drop": "удаление поискового индекса со старым ключом", "security.decrypt_failed": "ошибка расшифрования",
    "audit.checkpoint": "контрольная точка журнала", "audit.attest": "заверение журнала ответственным за ПДн",
    "audit.export": "выгрузка журнала в архив", "audit.alert_scan": "проверка журнала на подозрительный доступ",
    "audit.alert_ack": "оповещение рассмотрено",
    # written by crm.consent and crm.qa
    "consent.history": "просмотр истории согласий", "dsr.register": "регистрация запроса субъекта ПДн",
    "dsr.extend": "продление срока ответа на запрос", "dsr.answer": "ответ на запрос субъекта ПДн",
    "dsr.export": "выгрузка всех данных заявителя",
    "dsr.verify": "установление личности заявителя по запросу",
    "dsr.export_approve": "утверждение выгрузки вторым ответственным за ПДн",
    "dsr.deliver": "выдача выгрузки заявителю", "erasure.request": "требование уничтожить данные",
    "erasure.approve": "утверждение уничтожения данных", "erasure.reject": "отказ в уничтожении данных",
    "erasure.act": "акт об уничтожении данных", "selfservice.link": "ссылка на личную страницу заявителя",
    "selfservice.login": "вход заявителя на личную страницу", "selfservice.code": "код для входа заявителя",
    "selfservice.refused": "отказ во входе на личную страницу", "sms.send": "отправка SMS",
    "purpose.update": "изменение реестра целей обработки", "retention.run": "уничтожение по истечении сроков",
    "evaluation.acknowledge": "оператор ознакомлен с оценкой", "evaluation.dispute": "оспаривание оценки",
    "evaluation.resolve": "решение по спору об оценке",
}
FIELD_LABELS = {"full_name": "ФИО", "phone": "телефон", "email": "эл. почта", "address": "адрес",
                "apartment": "квартира", "description": "суть обращения", "comment": "комментарий",
                "recording": "запись звонка", "transcript": "расшифровка", "consents": "согласия"}


#: Outcomes of access-log entries, for documents (the log and exports keep the codes).
OUTCOME_LABELS = {"ok": "выполнено", "denied": "отказано", "failed": "ошибка", "not_found": "не найдено",
                  "erased": "данные уничтожены", "repeat": "повторно (уже было сделано)",
                  "restarted": "перезапуск"}
#: Background jobs and commands that act as ``job:<name>`` (:func:`system_actor`).
SYSTEM_ACTOR_LABELS = {"transcribe_call": "расшифровка звонка", "retention": "соблюдение сроков хранения",
                       "send_status_sms": "отправка SMS о статусе обращения", "audit_export": "выгрузка журнала",
                       "cli": "команда администратора", "destruction_act": "акт об уничтожении данных",
                       "keys_index": "обновление поисковых индексов", "keys_retire": "вывод ключа из оборота",
                       "keys_rotate": "смена ключей шифрования", "audit_checkpoint": "контрольная точка журнала",
                       "audit_alert_scan": "проверка необычного доступа", "attest": "заверение контрольной точки"}
#: Roles that are not staff roles (crm.security.permissions.ROLE_NAMES_RU has those).
EXTRA_ROLE_LABELS = {"system": "система", "none": "без входа в систему", "citizen": "заявитель"}


def outcome_label(code: str | None) -> str:
    return OUTCOME_LABELS.get(code or "", code or "")


def role_label(role: str | None) -> str:

    return ROLE_NAMES_RU.get(role or "", EXTRA_ROLE_LABELS.get(role or "", role or ""))


def actor_label(actor: str | None, person=None) -> str:
    """Who acted, for people: a staff member's name, «система: расшифровка звонка» for a job,
    «заявитель (страница самообслуживания)», «неизвестный пользователь (не вошёл в систему)»."""
    if person is not None:
        return person.display_name
    actor = actor or ""
    if actor.startswith("job:"):
        job = actor[4:]
        return "система: " + SYSTEM_ACTOR_LABELS.get(job, SYSTEM_ACTOR_LABELS.get(job.split(":")[0], job))
    if actor == "anonymous":
        return "неизвестный пользователь (не вошёл в систему)"
    if actor.startswith("citizen:"):
        return "заявитель (страница самообслуживания)"
    return actor


@dataclass
class Actor:
    id: int | None
    name: str
    role: str


def system_actor(job: str) -> Actor:
    """The actor for a background job or CLI command."""
    return Actor(None, f"job:{job}", "system")


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Within this block of a request, entries that name no actor name ``actor`` (a citizen on the
    self-service pages downloading their data: the reads the export makes are theirs, not
    "anonymous")."""
    previous = g.get("_crm_audit_actor")
    g._crm_audit_actor = actor
    try:
        yield
    finally:
        g._crm_audit_actor = previous


def current_actor() -> Actor:
    """The signed-in user of this request, or an anonymous actor (a request without sign-in).
    Outside a request: the RQ job being run (``job:<function>``), else an administrator's command
    (``job:cli``: ``crm demo-data`` and the like) — never "anonymous", which on the DPO's pages
    reads as someone who did not sign in."""
    if not has_request_context():
        try:
            from rq import get_current_job

            job = get_current_job()
        except Exception:  # no RQ connection in this context
            job = None
        return system_actor(job.func_name.rsplit(".", 1)[-1] if job is not None else "cli")
    if g.get("_crm_audit_actor") is not None:
        return g._crm_audit_actor
    try:
        if current_user and current_user.is_authenticated:
            return Actor(current_user.id, current_user.username, current_user.role)
    except Exception:
        pass
    return Actor(None, "anonymous", "none")


def record(action: str, *, citizen_id: str | None = None, fields: Iterable[str] = (), purpose: str | None = None,
           appeal_id: str | None = None, call_id: str | None = None, outcome: str = "ok",
           detail: str | None = None, actor: Actor | None = None, session: Session | None = None) -> None:
    """Queue an access-log entry on the session; it is chained and written at commit.

    ``fields`` are field categories (``full_name``, ``phone`` …), never values; ``purpose`` a
    processing-purpose code (``appeal_processing`` …); ``appeal_id``/``call_id`` what the access
    serves. IP and user agent are taken from the request, if any."""
    session = session if session is not None else db.session()
    actor = actor or current_actor()
    ip = ua = None
    if has_request_context():
        # remote_addr only: behind a proxy, ProxyFix (CRM_TRUSTED_PROXIES) sets it from X-Forwarded-For;
        # the header itself is client-supplied and would let anyone write any IP into the log
        ip = (request.remote_addr or "")[:64] or None
        ua = (request.user_agent.string or "")[:200] or None
    entry = dict(at=utcnow(), actor_id=actor.id, actor=actor.name, actor_role=actor.role, action=action,
                 citizen_id=citizen_id, fields=",".join(sorted(set(fields))), purpose=purpose,
                 appeal_id=appeal_id, call_id=call_id, ip=ip, user_agent=ua, outcome=outcome, detail=detail)
    if not session.in_transaction():
        session.begin()  # so that a rollback before any SQL still discards the entry (see _after_rollback)
    session.info.setdefault(_PENDING, []).append(entry)


# --- canonical encoding ------------------------------------------------------------------------------

ENTRY_FIELDS = ("seq", "at", "actor_id", "actor", "actor_role", "action", "citizen_id", "fields", "purpose",
                "appeal_id", "call_id", "ip", "user_agent", "outcome", "detail", "prev_hash")
#: The hashed fields in the canonical (sorted) key order; :func:`verify` selects columns in this order.
SORTED_FIELDS = tuple(sorted(ENTRY_FIELDS))
_TEMPLATE = "{" + ",".join(f'"{k}":%s' for k in SORTED_FIELDS) + "}"
_FIELD_SET = frozenset(ENTRY_FIELDS)


def _enc(value) -> str:
    """One value exactly as ``json.dumps(..., ensure_ascii=False)`` writes it (datetimes as ISO 8601)."""
    cls = value.__class__
    if cls is str:
        return _json_str(value)
    if value is None:
        return "null"
    if cls is int:
        return int.__repr__(value)
    if isinstance(value, datetime):
        return _json_str(value.isoformat(timespec="microseconds"))
    return json.dumps(value, ensure_ascii=False)


def canonical(entry: dict) -> bytes:
    """Canonical encoding hashed for the chain: ``json.dumps(fields but hash, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` in UTF-8, ``at`` as ISO 8601 with microseconds.

    The common case (exactly the entry fields) is formatted from a precomputed template, byte for
    byte the same as ``json.dumps`` (tests/unit/test_audit_canonical.py)."""
    if entry.keys() - {"hash"} == _FIELD_SET:
        return (_TEMPLATE % tuple([_enc(entry[k]) for k in SORTED_FIELDS])).encode("utf-8")
    data = {k: v for k, v in entry.items() if k != "hash"}
    if data.get("at") is not None and not isinstance(data["at"], str):
        data["at"] = data["at"].isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict) -> str:
    """SHA-256 hex of :func:`canonical`."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def entry_dict(row: AccessLogEntry) -> dict:
    """The hashed fields of an ORM row, as a dict (``hash`` not included)."""
    return {k: getattr(row, k) for k in ENTRY_FIELDS}


# --- chaining at commit ------------------------------------------------------------------------------

def _early_release() -> bool:
    return bool(current_app.config["CRM_AUDIT_EARLY_LOCK_RELEASE"]) if has_app_context() else False


_COLUMNS = ENTRY_FIELDS + ("hash",)
_INSERT_COLS = ", ".join(_COLUMNS)


def _sqlite_time(at: datetime) -> str:
    """``at`` as SQLAlchemy stores a DateTime in SQLite (naive UTC, always microseconds), so ORM
    reads and the raw statements here agree."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


_PREV_AT = SORTED_FIELDS.index("prev_hash")
_SEQ_AT = SORTED_FIELDS.index("seq")
assert _PREV_AT < _SEQ_AT  # the split below relies on the sorted order: … prev_hash … seq …
_SEP = "\x1e"  # between the parts sent to crm_audit_append: canonical JSON never holds it raw
_PG_FIELDS = tuple(k for k in SORTED_FIELDS if k not in ("prev_hash", "seq"))


def _pg_template() -> str:
    items = [f'"{k}":%s' if k not in ("prev_hash", "seq") else None for k in SORTED_FIELDS]
    before, between, after = items[:_PREV_AT], items[_PREV_AT + 1:_SEQ_AT], items[_SEQ_AT + 1:]
    pre = "{" + "".join(f"{x}," for x in before) + '"prev_hash":'
    mid = "," + "".join(f"{x}," for x in between) + '"seq":'
    suf = "".join(f",{x}" for x in after) + "}"
    return pre + _SEP + mid + _SEP + suf


_PG_TEMPLATE = _pg_template()
_PG_APPEND = "SELECT crm_audit_append(%s, %s)"


def pg_entry(entry: dict) -> str:
    """The canonical encoding of ``entry`` without ``seq`` and ``prev_hash`` (only the chain knows
    them): ``pre``, ``mid`` and ``suf`` joined by U+001E, such that ``canonical(entry) ==
    (pre + '"' + prev_hash + '"' + mid + str(seq) + suf).encode()``. PostgreSQL's
    ``crm_audit_append`` fills in the two values under the chain lock
    (migrations/versions/0009_audit_append_function.py); a hex hash and an integer need no JSON
    escaping, and JSON escapes every control character, so U+001E only ever separates parts.
    tests/unit/test_audit_canonical.py checks the identity."""
    return _PG_TEMPLATE % tuple([_enc(entry[k]) for k in _PG_FIELDS])


def pg_parts(entry: dict) -> tuple[str, str, str]:
    """:func:`pg_entry` as the tuple ``(pre, mid, suf)``."""
    pre, mid, suf = pg_entry(entry).split(_SEP)
    return pre, mid, suf


_SQLITE_LOCK = "UPDATE audit_head SET seq = seq + ? WHERE id = 1 RETURNING seq, hash"
_SQLITE_INSERT = f"INSERT INTO access_log ({_INSERT_COLS}) VALUES ({', '.join(['?'] * len(_COLUMNS))})"
_SQLITE_HEAD = "UPDATE audit_head SET hash = ? WHERE id = 1"


def _chain_pending(session: Session) -> None:
    """Number, hash and insert the queued entries. Plain driver SQL, prepared once: this runs under
    the chain lock, where every microsecond is paid by every other writer."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # The action's own INSERTs/UPDATEs go first, before the chain lock is taken.
    session.flush()
    more = session.info.pop(_PENDING, None)  # entries recorded by flush-time hooks, if any
    if more:
        pending.extend(more)
    conn = session.connection(bind_arguments={"mapper": AccessLogEntry})
    if conn.dialect.name == "postgresql":
        _chain_pg(session, conn, pending)
        return
    n = len(pending)
    # SQLite: this transaction already holds the database's write lock (BEGIN IMMEDIATE).
    row = conn.exec_driver_sql(_SQLITE_LOCK, (n,)).first()
    if row is None:
        raise RuntimeError("access log chain head missing (run `crm db upgrade`)")
    seq, prev = row[0] - n, row[1]
    sha = hashlib.sha256
    rows = []
    for entry in pending:
        seq += 1
        entry["seq"] = seq
        entry["prev_hash"] = prev
        prev = sha(canonical(entry)).hexdigest()
        entry["hash"] = prev
        values = [entry[k] for k in _COLUMNS]
        values[1] = _sqlite_time(values[1])
        rows.append(values)
    conn.exec_driver_sql(_SQLITE_INSERT, [tuple(r) for r in rows])
    conn.exec_driver_sql(_SQLITE_HEAD, (prev,))


def _chain_pg(session: Session, conn, pending: list[dict]) -> None:
    """PostgreSQL: everything but the two chain values is encoded here, outside the lock; then
    one pipelined message (psycopg pipeline mode) locks the head, chains, inserts and — when the
    session has nothing left to flush — commits, so the head-row lock is never held while the
    server waits for the application. SQLAlchemy's own COMMIT that follows finds the transaction
    closed and sends nothing (psycopg skips COMMIT when idle). If anything would still be flushed
    after us (a ``before_commit`` hook registered later), the COMMIT is left to SQLAlchemy."""
    import psycopg

    early = _early_release()
    commit = not (session.new or session.dirty or session.deleted)
    if early and not commit:  # synchronous_commit off for this transaction only (set by crm_audit_append)
        session.info[_BARRIER] = conn  # the barrier runs after SQLAlchemy's COMMIT
    raw = conn.connection.dbapi_connection
    # Nothing sent yet in this transaction (an action that only logs): psycopg would send BEGIN
    # and wait for its reply before anything else; send it ourselves, inside the one message.
    own_begin = commit and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if own_begin:
        raw.autocommit = True  # so psycopg adds no BEGIN of its own (restored below; no round trip)
    try:
        for i in range(0, len(pending), _CHUNK):
            chunk = pending[i:i + _CHUNK]
            first, last = i == 0, i + _CHUNK >= len(pending)
            params = (_SEP.join([pg_entry(e) for e in chunk]), early)
            if _sql_log.isEnabledFor(logging.INFO):
                _sql_log.info("%s%s%s %r", "BEGIN; " if own_begin and first else "", _PG_APPEND,
                              "; COMMIT" if commit and last else "", params)
            # The statement (and BEGIN, COMMIT) leave in one message, answered by one reply at the
            # pipeline's Sync. COMMIT goes as a statement: ``raw.commit()`` would Sync (a round
            # trip) on its own, and leaving the pipeline would Sync once more.
            with raw.pipeline():
                with raw.cursor() as cur:
                    if own_begin and first:
                        cur.execute("BEGIN")
                    cur.execute(_PG_APPEND, params)
                    if commit and last:
                        cur.execute("COMMIT")
                        if early:
                            queue_barrier(raw)
            if commit and last:
                session.info[_COMMITTED] = True
    except psycopg.errors.UndefinedFunction as err:
        raise RuntimeError("access log chain function missing (run `crm db upgrade`)") from err
    except psycopg.errors.RaiseException as err:  # e.g. the chain head is missing
        raise RuntimeError(err.diag.message_primary or str(err)) from err
    finally:
        if own_begin:
            if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raw.rollback()  # failed inside our BEGIN; SQLAlchemy's rollback then finds it idle
            raw.autocommit = False


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # a released savepoint fires before_commit too: chain only at the outermost commit, so the
    # head-row lock is never taken mid-transaction (it deadlocked with row inserts on PostgreSQL)
    if session.in_nested_transaction():
        return
    if session.info.get(_PENDING):
        _chain_pending(session)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _flush_context, _instances) -> None:
    """Nothing may be written after the chaining message committed the transaction: it would go
    to a transaction of its own, outside the one the access log vouches for. Only a
    ``before_commit`` hook registered after ours could do that; fail loudly instead."""
    if session.info.get(_COMMITTED):
        raise RuntimeError("the session changed after its access-log entries were committed "
                           "(a before_commit hook that writes must run before crm.security.audit's)")


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    conn = session.info.pop(_BARRIER, None)
    if conn is not None:
        durability_barrier(conn)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    """Entries belong to the session's outermost transaction: when it ends without chaining them
    (rolled back, or the session closed), they are dropped, so a refused or failed action leaves no
    entry. :func:`record` begins that transaction if none is open, so this holds even when no SQL
    was sent; a savepoint ending (the outer transaction goes on) keeps them. On commit this runs
    after ``after_commit``, i.e. after the durability barrier."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_BARRIER, None)
        session.info.pop(_COMMITTED, None)


def queue_barrier(raw) -> None:
    """:func:`durability_barrier` inside a psycopg pipeline, right after the COMMIT (which released
    the chain lock without waiting for the disk): a statement in an implicit transaction of its
    own, ended by the pipeline's Sync under the server's ``synchronous_commit``, so the reply to
    the whole message comes once the WAL is flushed past our commit record. No extra round trip."""
    with raw.cursor() as cur:
        cur.execute("SELECT txid_current()")


def durability_barrier(bind=None) -> None:
    """Return once everything this process committed so far is on disk (PostgreSQL).

    A tiny transaction that gets a transaction id commits with the server's ``synchronous_commit``;
    its commit flushes the WAL up to its own commit record and so every earlier one. Concurrent
    barriers share a flush. ``bind``: the just-committed session connection (reused on the DBAPI
    level: SQLAlchemy calls ``after_commit`` before returning it to the pool), or an engine
    (default ``db.engine``). A no-op on SQLite, whose commits are synchronous."""
    bind = bind if bind is not None else db.engine
    if bind.dialect.name != "postgresql":
        return
    if hasattr(bind, "connection") and not bind.closed:
        raw = bind.connection.dbapi_connection
        if raw is not None and not bind.in_transaction():
            raw.autocommit = True  # one round trip: the statement is its own transaction
            try:
                raw.execute("SELECT txid_current()")
            finally:
                raw.autocommit = False
            return
    engine = bind.engine if hasattr(bind, "engine") else bind
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT txid_current()")
        conn.commit()


# --- reading and verifying ---------------------------------------------------------------------------

def head(session: Session | None = None) -> tuple[int, str]:
    """``(seq, hash)`` of the chain head as committed (0 and 64 zeros for an empty log)."""
    session = session or db.session
    row = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def _row_hash(row) -> str:
    """SHA-256 of a row selected in :data:`SORTED_FIELDS` order, any value types (see :func:`_enc`)."""
    return hashlib.sha256((_TEMPLATE % tuple([_enc(v) for v in row])).encode("utf-8")).hexdigest()


# The hot loop of verification. Rows come straight from the driver in SORTED_FIELDS order with ``at``
# already as its ISO 8601 string; one expression per column, no per-row dicts or type dispatch.
assert SORTED_FIELDS == ("action", "actor", "actor_id", "actor_role", "appeal_id", "at", "call_id", "citizen_id",
                         "detail", "fields", "ip", "outcome", "prev_hash", "purpose", "seq", "user_agent")


def _raw_row_hash(r, s=_json_str, sha=hashlib.sha256) -> str:
    try:
        return sha((_TEMPLATE % (
            s(r[0]), s(r[1]), "null" if r[2] is None else int.__repr__(r[2]), s(r[3]),
            "null" if r[4] is None else s(r[4]), s(r[5]), "null" if r[6] is None else s(r[6]),
            "null" if r[7] is None else s(r[7]), "null" if r[8] is None else s(r[8]), s(r[9]),
            "null" if r[10] is None else s(r[10]), s(r[11]), s(r[12]), "null" if r[13] is None else s(r[13]),
            int.__repr__(r[14]), "null" if r[15] is None else s(r[15]))).encode("utf-8")).hexdigest()
    except TypeError:  # a NULL where the app never writes one (a tampered row): the generic path
        return _row_hash(r[:len(SORTED_FIELDS)])


_SEQ = SORTED_FIELDS.index("seq")
_PREV = SORTED_FIELDS.index("prev_hash")
_AT = SORTED_FIELDS.index("at")
_RAW_AT = {  # ``at`` as the exact string hashed: UTC, ISO 8601, microseconds, "+00:00"
    "postgresql": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')",
    "sqlite": "at",  # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff" (UTC): converted below
}


def _pg_canonical_sql() -> str:
    """PostgreSQL expression building :func:`canonical` of a row as text. ``to_json(text)`` escapes
    exactly as Python's ``json`` does with ``ensure_ascii=False`` (``"``, ``\\``, ``\\b \\f \\n \\r \\t``,
    other control characters as lower-case ``\\u00xx``; everything else as is). The hash is still
    computed here, never by the database (tests/integration/test_audit_tamper.py checks both agree)."""
    parts = []
    for i, k in enumerate(SORTED_FIELDS):
        prefix = ("{" if i == 0 else ",") + f'"{k}":'
        value = (f"'\"' || {_RAW_AT['postgresql']} || '\"'" if k == "at" else f"coalesce(to_json({k})::text, 'null')")
        parts.append(f"'{prefix}' || {value}")
    return " || ".join(parts) + " || '}'"


def _iter_pg_canonical(conn, first: int, last: int, batch: int) -> Iterator[tuple]:
    """``(seq, prev_hash, hash, canonical text)`` from PostgreSQL: 4 values a row instead of 17, so
    the driver's per-value conversion stops dominating verification."""
    sql = (f"SELECT seq, prev_hash, hash, {_pg_canonical_sql()} FROM access_log "
           f"WHERE seq > %(after)s AND seq <= %(last)s ORDER BY seq LIMIT %(batch)s")
    cursor = conn.connection.dbapi_connection.cursor()
    after = first - 1
    try:
        while True:
            cursor.execute(sql, {"after": after, "last": last, "batch": batch})
            rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]
    finally:
        cursor.close()


def _sqlite_at(value: str) -> str:
    if len(value) == 26 and value[10] == " ":
        return f"{value[:10]}T{value[11:]}+00:00"
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).isoformat(timespec="microseconds")


def iter_rows(session: Session, first: int = 1, last: int | None = None, batch: int = 50000,
              raw: bool = False) -> Iterator[tuple]:
    """Rows ``(SORTED_FIELDS..., hash)`` with ``first <= seq <= last`` in order, fetched in batches
    by key range (flat memory, no ORM objects). ``raw``: plain driver tuples with ``at`` as the ISO
    string that was hashed (PostgreSQL and SQLite; elsewhere ``at`` stays a datetime)."""
    conn = session.connection(bind_arguments={"mapper": AccessLogEntry})
    dialect = conn.dialect.name
    if raw and dialect in _RAW_AT:
        cols = ", ".join(_RAW_AT[dialect] if k == "at" else k for k in SORTED_FIELDS)
        fix_at = dialect == "sqlite"
        ph = (lambda n: f":{n}") if fix_at else (lambda n: f"%({n})s")  # sqlite3 / psycopg named parameters
        sql = (f"SELECT {cols}, hash FROM access_log WHERE seq > {ph('after')} AND seq <= {ph('last')} "
               f"ORDER BY seq LIMIT {ph('batch')}")
        after, last = first - 1, last if last is not None else 2 ** 62
        cursor = conn.connection.dbapi_connection.cursor()  # plain tuples: no result-row wrapping
        while True:
            cursor.execute(sql, {"after": after, "last": last, "batch": batch})
            rows = cursor.fetchall()
            if not rows:
                cursor.close()
                return
            if fix_at:
                for r in rows:
                    r = list(r)
                    r[_AT] = _sqlite_at(r[_AT])
                    yield r
            else:
                yield from rows
            after = rows[-1][_SEQ]
    cols = [getattr(AccessLogEntry, k) for k in SORTED_FIELDS] + [AccessLogEntry.hash]
    after = first - 1
    while True:
        q = select(*cols).where(AccessLogEntry.seq > after)
        if last is not None:
            q = q.where(AccessLogEntry.seq <= last)
        rows = session.execute(q.order_by(AccessLogEntry.seq).limit(batch)).all()
        if not rows:
            return
        if raw:
            rows = [(*r[:_AT], r[_AT].isoformat(timespec="microseconds"), *r[_AT + 1:]) for r in rows]
        yield from rows
        after = rows[-1][_SEQ]


def verify(session: Session | None = None, batch: int = 50000) -> tuple[int, int | None, str]:
    """Walk the chain from entry 1 to the head. Returns ``(entries checked, first bad seq or None,
    message)``.

    Detects edited, deleted, swapped or inserted entries, and a chain cut short of the head row.
    The head is read first, so entries appended while verifying are not mistaken for damage.
    On PostgreSQL the database builds each row's canonical text (one value a row instead of 17 for
    the driver to convert); the hashes are computed here. Figures: ``bench/audit.py``."""
    session = session or db.session
    head_seq, head_hash = head(session)
    prev = GENESIS
    expected = 1
    count = 0
    conn = session.connection(bind_arguments={"mapper": AccessLogEntry})
    if conn.dialect.name == "postgresql":
        sha = hashlib.sha256
        for seq, prev_hash, own, canon in _iter_pg_canonical(conn, 1, head_seq, batch):
            if seq != expected:
                return count, expected, f"entry {expected} is missing (next is {seq})"
            if prev_hash != prev:
                return count, seq, f"entry {seq}: previous-hash link broken"
            if sha(canon.encode("utf-8")).hexdigest() != own:
                return count, seq, f"entry {seq}: contents do not match its hash"
            prev = own
            expected += 1
            count += 1
        return _head_check(count, prev, head_seq, head_hash)
    for row in iter_rows(session, 1, head_seq, batch, raw=True):
        seq, own = row[_SEQ], row[-1]
        if seq != expected:
            return count, expected, f"entry {expected} is missing (next is {seq})"
        if row[_PREV] != prev:
            return count, seq, f"entry {seq}: previous-hash link broken"
        if _raw_row_hash(row) != own:
            return count, seq, f"entry {seq}: contents do not match its hash"
        prev = own
        expected += 1
        count += 1
    return _head_check(count, prev, head_seq, head_hash)


def _head_check(count: int, prev: str, head_seq: int, head_hash: str) -> tuple[int, int | None, str]:
    if count != head_seq:
        return count, count + 1, (f"entries {count + 1}–{head_seq} are missing: the chain ends at entry {count} "
                                  f"but the head says {head_seq} (newest entries removed)")
    if prev != head_hash:
        return count, count, f"entry {count}: hash differs from the head row's"
    return count, None, "ok"


def hashes_at(seqs: Iterable[int], session: Session | None = None) -> dict[int, str]:
    """``{seq: hash}`` of the entries with these numbers that exist."""
    session = session or db.session
    seqs = sorted(set(seqs))
    out: dict[int, str] = {}
    for i in range(0, len(seqs), 1000):
        part = seqs[i:i + 1000]
        out.update((s, h) for s, h in session.execute(select(AccessLogEntry.seq, AccessLogEntry.hash)
                                                      .where(AccessLogEntry.seq.in_(part))))
    return out


# --- the purpose of the DPO's own reads ------------------------------------------------------------

#: the purpose logged by the DPO's reports and data-subject requests (crm.dpo, crm.consent.rights)
REPORT_PURPOSE = "data_subject_request"


# --- export for archiving ----------------------------------------------------------------------------

def seq_range(start: datetime | None, end: datetime | None, session: Session | None = None) -> tuple[int, int] | None:
    """The contiguous range ``(first, last)`` of entries from the first with ``at >= start`` to the
    last with ``at < end`` (UTC; None = open). An archive is always a contiguous run of ``seq``, so
    it verifies on its own; entries written concurrently near the edges may lie a few ms outside."""
    session = session or db.session
    q_first = select(AccessLogEntry.seq)
    q_last = select(AccessLogEntry.seq)
    if start is not None:
        q_first = q_first.where(AccessLogEntry.at >= start)
    if end is not None:
        q_last = q_last.where(AccessLogEntry.at < end)
    first = session.execute(q_first.order_by(AccessLogEntry.seq).limit(1)).scalar()
    last = session.execute(q_last.order_by(AccessLogEntry.seq.desc()).limit(1)).scalar()
    if first is None or last is None or first > last:
        return None
    return first, last


def export_lines(first: int, last: int, session: Session | None = None) -> Iterator[str]:
    """JSON lines (no newline) of entries ``first..last``: every hashed field plus ``hash``, ``at``
    as the ISO string that was hashed, keys sorted. Each line verifies alone with :func:`entry_hash`
    and links to the one before by ``prev_hash``."""
    session = session or db.session
    keys = SORTED_FIELDS + ("hash",)
    for row in iter_rows(session, first, last, raw=True):
        yield json.dumps(dict(zip(keys, row)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def verify_lines(lines: Iterable[str]) -> tuple[int, int | None, str, dict]:
    """Check an archive made by :func:`export_lines`. Returns ``(entries, first bad seq or None,
    message, {"first", "last", "first_prev", "last_hash", "hashes": {seq: hash}})``."""
    info: dict = {"first": None, "last": None, "first_prev": None, "last_hash": None, "hashes": {}}
    prev = None
    expected = None
    count = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            seq, own = data["seq"], data["hash"]
            hashed = {k: data[k] for k in ENTRY_FIELDS}
        except (ValueError, KeyError, TypeError):
            return count, expected or 0, f"line {lineno}: not an access-log entry", info
        if expected is None:
            info["first"], info["first_prev"] = seq, data["prev_hash"]
            expected, prev = seq, data["prev_hash"]
        if seq != expected:
            return count, expected, f"entry {expected} is missing (next is {seq})", info
        if data["prev_hash"] != prev:
            return count, seq, f"entry {seq}: previous-hash link broken", info
        if entry_hash(hashed) != own:
            return count, seq, f"entry {seq}: contents do not match its hash", info
        info["hashes"][seq] = own
        prev, expected = own, seq + 1
        info["last"], info["last_hash"] = seq, own
        count += 1
    return count, None, "ok", info



def action_label(code: str | None) -> str:
    """The Russian label of an action code (:data:`ACTION_LABELS`), else the code itself (an
    action this version does not know is shown as written)."""
    return ACTION_LABELS.get(code or "", code or "")


def entry_fields(row) -> list[str]:
    """The field categories of an access-log row, as a list."""
    return [f for f in (row.fields or "").split(",") if f]


def entry_labels(row, person, purposes: dict[str, str]) -> dict[str, str]:
    """The Russian labels of an access-log row's codes (``actor_label``, ``role_label``,
    ``action_label``, ``fields_label``, ``purpose_label``, ``outcome_label``), a code with no label
    standing for itself; ``person``: the staff member of ``actor_id`` (or None), ``purposes``:
    :func:`crm.consent.services.purpose_names`. Shared by the per-citizen report and the DPO's log viewer."""
    return {"actor_label": actor_label(row.actor, person), "role_label": role_label(row.actor_role),
            "action_label": action_label(row.action),
            "fields_label": ", ".join(FIELD_LABELS.get(f, f) for f in entry_fields(row)),
            "purpose_label": purposes.get(row.purpose or "", row.purpose or ""),
            "outcome_label": outcome_label(row.outcome)}
