"""Knowledge-base tables: ``kb_articles`` (the current text of each article, script or building hint)
and ``kb_article_versions`` (every saved text, one row per edit). No personal data: articles are the
hotline's own reference texts.

Search columns kept beside the text (see :mod:`crm.kb.search`): on PostgreSQL ``kb_articles.search_tsv``,
a stored generated ``tsvector`` (``russian`` configuration, GIN index), made by the migration and not
mapped here (the ORM never writes it); on every database ``search_lemmas``, the lemmas of title and body
as :mod:`crm.text_ru` gives them, which SQLite's FTS5 table ``kb_articles_fts`` indexes (external content,
kept in step by triggers on ``kb_articles``, so a plain ``DELETE`` keeps the index right too).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, db, utcnow

#: article kinds: a reference article, a call script (its lines feed the QA checks), a building hint
KINDS = ("article", "script", "hint")


class Article(db.Model):
    """The current version of one knowledge-base entry.

    ``kind``: ``article``, ``script`` or ``hint``; ``topic``: an appeal topic code
    (:data:`crm.appeals.catalog.TOPICS`) or None (every topic: e.g. the hotline's general script);
    ``building_id``: the building a hint is about (required for ``hint``, None otherwise);
    ``version``: the number of the newest row of :class:`ArticleVersion`; ``archived``: hidden from
    search and from the intake panel (archiving is itself a version)."""

    __tablename__ = "kb_articles"
    __table_args__ = (
        CheckConstraint("kind IN ('article', 'script', 'hint')", name="kind"),
        CheckConstraint("(kind = 'hint') = (building_id IS NOT NULL)", name="hint_building"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="article")
    topic: Mapped[str | None] = mapped_column(String(40), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    search_lemmas: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ArticleVersion(db.Model):
    """One saved text of an article: what it said (``kind``, ``topic``, ``building_id``, ``title``,
    ``body``, ``archived``), who saved it and when (UTC), and ``restored_from`` when the edit put an
    older version back."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    topic: Mapped[str | None] = mapped_column(String(40))
    building_id: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    restored_from: Mapped[int | None] = mapped_column(Integer)
    edited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    edited_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
