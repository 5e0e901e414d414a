"""Knowledge-base services: articles, call scripts and building hints with versions, search, the
intake panel and the scripts the QA checks read. Other features reach the knowledge base only through
this module.

Every change (create, edit, archive, restore) is a new row of ``kb_article_versions`` with who and when,
written in the same transaction as the article's current text; an edit that changes nothing makes no
version. Supervisors and administrators edit (:data:`EDIT_ROLES`); every staff role reads.

Search (:func:`search`) finds word forms: on PostgreSQL through the stored ``tsvector`` of the
``russian`` configuration (migration 0028), on SQLite through the FTS5 index of the lemmas
:mod:`crm.text_ru` gives (the lemmatiser of the QA checks and the transcript search), so «горячая вода»
finds «горячей воды» on both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from crm import text_ru
from crm.appeals.catalog import TOPICS
from crm.buildings import services as buildings
from crm.db import db, utcnow
from crm.i18n import N_, lazy_gettext as _l
from crm.kb import scripts
from crm.kb.models import KINDS, Article, ArticleVersion
from crm.security.permissions import require_role

EDIT_ROLES = ("supervisor", "admin")
READ_ROLES = ("operator", "supervisor", "admin", "executor", "dpo")
KIND_NAMES = {"article": N_("Статья"), "script": N_("Сценарий разговора"), "hint": N_("Подсказка по дому")}
MAX_TITLE = 200
MAX_BODY = 20_000
MAX_QUERY = 200
SEARCH_LIMIT = 20
SNIPPET_CONTEXT = 80  # characters either side of the first matched word
MAX_ID = 2**31 - 1  # ids are 32-bit integers (a larger one would make PostgreSQL raise, not answer "none")


def _id(value) -> int | None:
    """``value`` as a row id, or None when it is not one (not an integer, or outside 1..MAX_ID)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


class KbError(ValueError):
    """Bad knowledge-base input or state: a Russian message; ``code`` for the API; ``field`` the form
    field it is about (or None); ``status`` the API answer (400 bad input, 404 unknown, 409 stale)."""

    def __init__(self, message, code: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.code, self.field, self.status = code, field, status


# --- reading ---------------------------------------------------------------------------------------

def get(article_id: int | None) -> Article | None:
    """The article, or None (also for something that is not an id)."""
    number = _id(article_id)
    return db.session.get(Article, number) if number is not None else None


def view(a: Article) -> dict:
    """The API shape of an article (times ISO 8601 UTC)."""
    return {"id": a.id, "kind": a.kind, "topic": a.topic, "building_id": a.building_id, "title": a.title,
            "body": a.body, "version": a.version, "archived": a.archived,
            "updated_at": a.updated_at.isoformat(), "updated_by": a.updated_by,
            "lines": [line.as_dict() for line in scripts.parse(a.body)] if a.kind == "script" else []}


def list_articles(*, topic: str | None = None, kind: str | None = None, building_id: int | None = None,
                  archived: bool = False, limit: int = 500) -> list[Article]:
    """Articles by kind, topic and title; ``topic``/``kind``/``building_id`` narrow; archived ones
    only with ``archived=True`` (then only them)."""
    q = sa.select(Article).where(Article.archived.is_(archived))
    if topic:
        q = q.where(Article.topic == topic)
    if kind:
        q = q.where(Article.kind == kind)
    if building_id is not None:
        q = q.where(Article.building_id == building_id)
    return list(db.session.execute(q.order_by(Article.kind, Article.topic, Article.title).limit(limit)).scalars())


def versions(article_id: int) -> list[ArticleVersion]:
    """Every saved version of the article, newest first."""
    return list(db.session.execute(sa.select(ArticleVersion).where(ArticleVersion.article_id == article_id)
                                   .order_by(ArticleVersion.version.desc())).scalars())


def get_version(article_id: int, version: int) -> ArticleVersion | None:
    """Version ``version`` of the article, or None."""
    article_id, version = _id(article_id), _id(version)
    if article_id is None or version is None:
        return None
    return db.session.execute(sa.select(ArticleVersion).where(ArticleVersion.article_id == article_id,
                                                              ArticleVersion.version == version)).scalar_one_or_none()


# --- writing ---------------------------------------------------------------------------------------

def lemma_text(title: str, body: str) -> str:
    """Every lemma of every word of ``title`` and ``body`` (:func:`crm.text_ru.tokens`), space-separated
    in order: what SQLite's FTS5 index holds (an ambiguous form contributes all its lemmas)."""
    out: list[str] = []
    for _word, lemmas in text_ru.tokens(f"{title}\n{body}"):
        out.extend(sorted(lemmas))
    return " ".join(out)


@dataclass
class Fields:
    kind: str
    topic: str | None
    building_id: int | None
    title: str
    body: str


def _clean(*, title, body, topic, kind, building_id) -> Fields:
    """Check and normalise an article's fields; raises :class:`KbError` naming the first bad one."""
    kind = (kind or "article").strip()
    if kind not in KINDS:
        raise KbError(_l("Неизвестный вид записи: %(kind)s.", kind=kind), "invalid_kind", "kind")
    title = (title or "").strip()
    if not title:
        raise KbError(_l("Укажите заголовок."), "invalid_title", "title")
    if len(title) > MAX_TITLE:
        raise KbError(_l("Заголовок длиннее %(n)s символов.", n=MAX_TITLE), "invalid_title", "title")
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise KbError(_l("Текст не может быть пустым."), "invalid_body", "body")
    if len(body) > MAX_BODY:
        raise KbError(_l("Текст длиннее %(n)s символов.", n=MAX_BODY), "invalid_body", "body")
    topic = (topic or "").strip() or None
    if topic is not None and topic not in TOPICS:
        raise KbError(_l("Неизвестная тематика: %(topic)s.", topic=topic), "invalid_topic", "topic")
    if building_id in ("", None):
        building_id = None
    else:
        building_id = _id(building_id)
        if building_id is None:
            raise KbError(_l("Дом указан неверно."), "invalid_building_id", "building_id")
    if kind == "hint":
        if building_id is None or buildings.get(building_id) is None:
            raise KbError(_l("Подсказка по дому: выберите дом из реестра."), "invalid_building_id", "building_id")
    elif building_id is not None:
        raise KbError(_l("Дом указывается только у подсказки по дому."), "invalid_building_id", "building_id")
    return Fields(kind, topic, building_id, title, body)


def _snapshot(a: Article, user_id: int | None, restored_from: int | None = None) -> ArticleVersion:
    return ArticleVersion(article_id=a.id, version=a.version, kind=a.kind, topic=a.topic, building_id=a.building_id,
                          title=a.title, body=a.body, archived=a.archived, restored_from=restored_from,
                          edited_by=user_id, edited_at=a.updated_at)


def create(user, *, title: str, body: str, topic: str | None, kind: str = "article",
           building_id: int | None = None) -> Article:
    """A new article, script or building hint, version 1. Raises ``PermissionDenied`` unless ``user``
    is a supervisor or an administrator, :class:`KbError` for bad fields. Commits."""
    require_role(user, *EDIT_ROLES)
    f = _clean(title=title, body=body, topic=topic, kind=kind, building_id=building_id)
    now = utcnow()
    a = Article(kind=f.kind, topic=f.topic, building_id=f.building_id, title=f.title, body=f.body, version=1,
                archived=False, search_lemmas=lemma_text(f.title, f.body), created_by=user.id, created_at=now,
                updated_by=user.id, updated_at=now)
    db.session.add(a)
    db.session.flush()
    db.session.add(_snapshot(a, user.id))
    db.session.commit()
    return a


def _locked(article_id: int) -> Article:
    a = None
    if _id(article_id) is not None:
        a = db.session.execute(sa.select(Article).where(Article.id == _id(article_id)).with_for_update()
                               ).scalar_one_or_none()
    if a is None:
        raise KbError(_l("Запись базы знаний не найдена."), "not_found", status=404)
    return a


def _save(a: Article, user, f: Fields, archived: bool, expected_version: int | None,
          restored_from: int | None = None) -> Article:
    if expected_version is not None and a.version != expected_version:
        db.session.rollback()
        raise KbError(_l("Запись уже изменили (сейчас версия %(v)s): откройте её заново.", v=a.version), "stale",
                      status=409)
    same = (a.kind, a.topic, a.building_id, a.title, a.body, a.archived) == (
        f.kind, f.topic, f.building_id, f.title, f.body, archived)
    if same and restored_from is None:
        db.session.rollback()
        return a
    a.kind, a.topic, a.building_id, a.title, a.body, a.archived = f.kind, f.topic, f.building_id, f.title, f.body, archived
    a.search_lemmas = lemma_text(f.title, f.body)
    a.version += 1
    a.updated_by, a.updated_at = user.id, utcnow()
    db.session.add(_snapshot(a, user.id, restored_from))
    db.session.commit()
    return a


def update(user, article_id: int, *, title: str, body: str, topic: str | None, kind: str | None = None,
           building_id: int | None = None, expected_version: int | None = None) -> Article:
    """Save a new version of the article (``kind`` None keeps it). ``expected_version``: the version
    the editor started from; another edit saved meanwhile raises :class:`KbError` ``stale`` (409). An
    edit that changes nothing saves no version. Raises ``PermissionDenied``, :class:`KbError`. Commits."""
    require_role(user, *EDIT_ROLES)
    a = _locked(article_id)
    f = _clean(title=title, body=body, topic=topic, kind=kind or a.kind, building_id=building_id)
    return _save(a, user, f, a.archived, expected_version)


def set_archived(user, article_id: int, archived: bool) -> Article:
    """Archive (hide from search and from the intake panel) or bring back an article; a new version.
    Raises ``PermissionDenied``, :class:`KbError`. Commits."""
    require_role(user, *EDIT_ROLES)
    a = _locked(article_id)
    f = Fields(a.kind, a.topic, a.building_id, a.title, a.body)
    return _save(a, user, f, bool(archived), None)


def restore(user, article_id: int, version: int) -> Article:
    """Make an old version the current text again: a new version copying it (``restored_from``), so
    the history keeps everything in between. Raises ``PermissionDenied``, :class:`KbError` (unknown
    version, or a building hint whose building left the register). Commits."""
    require_role(user, *EDIT_ROLES)
    a = _locked(article_id)
    old = get_version(article_id, version)
    if old is None:
        db.session.rollback()
        raise KbError(_l("Версии %(v)s нет.", v=version), "not_found", "version", status=404)
    f = _clean(title=old.title, body=old.body, topic=old.topic, kind=old.kind, building_id=old.building_id)
    return _save(a, user, f, old.archived, None, restored_from=old.version)


# --- search ----------------------------------------------------------------------------------------

def _query_lemmas(q: str) -> list[frozenset[str]]:
    return [lem for _w, lem in text_ru.tokens(q) if lem]


def _fts_query(groups: list[frozenset[str]]) -> str:
    """An FTS5 MATCH expression: every word of the query (any of its lemmas) must occur."""
    def quoted(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'
    return " AND ".join("(" + " OR ".join(quoted(x) for x in sorted(g)) + ")" for g in groups)


def snippet(text: str, groups: list[frozenset[str]], context: int = SNIPPET_CONTEXT) -> str:
    """``text`` around its first word sharing a lemma with the query («…» where cut); the start of
    ``text`` when none does."""
    wanted = frozenset().union(*groups) if groups else frozenset()
    flat = re.sub(r"\s+", " ", text or "").strip()
    for start, end, lem in text_ru.lemma_tokens(flat):
        if lem & wanted:
            a, b = max(0, start - context), min(len(flat), end + context)
            return ("…" if a else "") + flat[a:b].strip() + ("…" if b < len(flat) else "")
    return flat[:2 * context] + ("…" if len(flat) > 2 * context else "")


def search(q: str | None, *, topic: str | None = None, kind: str | None = None,
           limit: int = SEARCH_LIMIT) -> list[dict]:
    """Articles (not archived) whose title or body holds every word of ``q`` in any word form, best
    first: ``[{id, title, kind, topic, building_id, version, snippet}]``. PostgreSQL: the
    ``russian`` text search configuration (``plainto_tsquery``, ranked by ``ts_rank_cd``, title
    weighted above body); SQLite: FTS5 over the lemmas (ranked by bm25). ``topic``/``kind`` narrow.
    An empty ``q`` answers ``[]``. Raises :class:`KbError` for a query over :data:`MAX_QUERY`
    characters or an unknown topic or kind."""
    q = (q or "").strip()
    if len(q) > MAX_QUERY:
        raise KbError(_l("Запрос длиннее %(n)s символов.", n=MAX_QUERY), "invalid_q", "q")
    if topic and topic not in TOPICS:
        raise KbError(_l("Неизвестная тематика: %(topic)s.", topic=topic), "invalid_topic", "topic")
    if kind and kind not in KINDS:
        raise KbError(_l("Неизвестный вид записи: %(kind)s.", kind=kind), "invalid_kind", "kind")
    groups = _query_lemmas(q)
    if not groups:
        return []
    limit = max(1, min(int(limit), 100))
    extra, params = "", {"limit": limit}
    if topic:
        extra += " AND a.topic = :topic"
        params["topic"] = topic
    if kind:
        extra += " AND a.kind = :kind"
        params["kind"] = kind
    if db.engine.dialect.name == "postgresql":
        params["q"] = q
        sql = ("SELECT a.id FROM kb_articles a, plainto_tsquery('russian', :q) query "
               f"WHERE a.search_tsv @@ query AND NOT a.archived{extra} "
               "ORDER BY ts_rank_cd(a.search_tsv, query) DESC, a.id LIMIT :limit")
    else:
        params["match"] = _fts_query(groups)
        sql = ("SELECT a.id FROM kb_articles_fts f JOIN kb_articles a ON a.id = f.rowid "
               f"WHERE kb_articles_fts MATCH :match AND NOT a.archived{extra} "
               "ORDER BY bm25(kb_articles_fts), a.id LIMIT :limit")
    ids = [row[0] for row in db.session.execute(sa.text(sql), params)]
    rows = {a.id: a for a in db.session.execute(sa.select(Article).where(Article.id.in_(ids))).scalars()} if ids else {}
    return [{"id": a.id, "title": a.title, "kind": a.kind, "topic": a.topic, "building_id": a.building_id,
             "version": a.version, "snippet": snippet(a.body, groups)}
            for a in (rows[i] for i in ids if i in rows)]


# --- the intake panel and the QA checks ------------------------------------------------------------

def scripts_for(topic: str | None) -> list[Article]:
    """The call scripts that apply to a call on ``topic``: the general ones (no topic) first, then
    the topic's, each group oldest first; archived ones left out."""
    q = sa.select(Article).where(Article.kind == "script", Article.archived.is_(False))
    cond = Article.topic.is_(None) if not topic else sa.or_(Article.topic.is_(None), Article.topic == topic)
    rows = db.session.execute(q.where(cond)).scalars().all()
    return sorted(rows, key=lambda a: (a.topic is not None, a.id))


def script_lines_for(topic: str | None) -> list[dict]:
    """The checked script lines for a call on ``topic`` (:func:`scripts_for`), in script order, each
    ``{number, stage, text, phrases, script}`` (``script``: the script's title): what the automatic
    QA checks look for (:func:`crm.qa.checks.run`). ``[]`` when no script applies."""
    out = []
    for a in scripts_for(topic):
        for line in scripts.checked_lines(a.body):
            out.append({**line, "script": a.title, "script_id": a.id})
    return out


def intake_panel(topic: str | None, building_id: int | None = None) -> dict:
    """What the operator sees beside the intake form: ``{topic, building, scripts, articles, hints}``
    — the scripts for ``topic`` (:func:`scripts_for`, with their parsed ``lines``), the topic's
    articles, and the hints about the building ``building_id`` (for any topic, or this one). Unknown
    topics and buildings show nothing of theirs."""
    topic = topic if topic in TOPICS else None
    building = buildings.get(_id(building_id)) if _id(building_id) else None
    arts = list_articles(topic=topic, kind="article") if topic else []
    hints = []
    if building is not None:
        hints = [h for h in list_articles(kind="hint", building_id=building.id) if h.topic in (None, topic)]
    return {"topic": topic, "building": building,
            "scripts": [{"article": a, "lines": scripts.parse(a.body)} for a in scripts_for(topic)] if topic else [],
            "articles": arts, "hints": hints}
