"""knowledge base: articles, call scripts and building hints with versions; Russian full-text search
(issue 15, point 4)

``kb_articles`` holds each entry's current text, ``kb_article_versions`` every saved one. Search:

- PostgreSQL: ``kb_articles.search_tsv``, a stored generated ``tsvector`` of the title (weight A) and
  the body (weight B) under the ``russian`` text search configuration (Snowball stemmer: «горячей
  воды» and «горячая вода» both give ``горяч``, ``вод``), with a GIN index;
- SQLite: ``kb_articles_fts``, an FTS5 table over ``kb_articles.search_lemmas`` (the lemmas
  :mod:`crm.text_ru` gives, written by the services) with external content, kept in step by three
  triggers on ``kb_articles``. A later batch migration that rebuilds ``kb_articles`` on SQLite drops
  those triggers: it must create them again (:func:`sqlite_fts`).

Revision ID: 0028_knowledge_base
Revises: 0027_speech_under_call_key
"""
import sqlalchemy as sa
from alembic import op

revision = "0028_knowledge_base"
down_revision = "0027_speech_under_call_key"
branch_labels = None
depends_on = None

SQLITE_FTS = (
    "CREATE VIRTUAL TABLE kb_articles_fts USING fts5(search_lemmas, content='kb_articles', content_rowid='id')",
    "CREATE TRIGGER kb_articles_fts_ai AFTER INSERT ON kb_articles BEGIN "
    "INSERT INTO kb_articles_fts(rowid, search_lemmas) VALUES (new.id, new.search_lemmas); END",
    "CREATE TRIGGER kb_articles_fts_ad AFTER DELETE ON kb_articles BEGIN "
    "INSERT INTO kb_articles_fts(kb_articles_fts, rowid, search_lemmas) VALUES ('delete', old.id, old.search_lemmas); END",
    "CREATE TRIGGER kb_articles_fts_au AFTER UPDATE ON kb_articles BEGIN "
    "INSERT INTO kb_articles_fts(kb_articles_fts, rowid, search_lemmas) VALUES ('delete', old.id, old.search_lemmas); "
    "INSERT INTO kb_articles_fts(rowid, search_lemmas) VALUES (new.id, new.search_lemmas); END",
)


def sqlite_fts() -> None:
    """The FTS5 table and its triggers (SQLite only)."""
    for statement in SQLITE_FTS:
        op.execute(statement)


def upgrade():
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("search_lemmas", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('article', 'script', 'hint')", name=op.f("ck_kb_articles_kind")),
        sa.CheckConstraint("(kind = 'hint') = (building_id IS NOT NULL)", name=op.f("ck_kb_articles_hint_building")),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], name=op.f("fk_kb_articles_building_id_buildings")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_kb_articles_created_by_users")),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"], name=op.f("fk_kb_articles_updated_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
    )
    op.create_index(op.f("ix_kb_articles_topic"), "kb_articles", ["topic"], unique=False)
    op.create_index(op.f("ix_kb_articles_building_id"), "kb_articles", ["building_id"], unique=False)
    op.create_table(
        "kb_article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("restored_from", sa.Integer(), nullable=True),
        sa.Column("edited_by", sa.Integer(), nullable=True),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["kb_articles.id"], name=op.f("fk_kb_article_versions_article_id_kb_articles"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["edited_by"], ["users.id"], name=op.f("fk_kb_article_versions_edited_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_article_versions")),
        sa.UniqueConstraint("article_id", "version", name=op.f("uq_kb_article_versions_article_id")),
    )
    op.create_index(op.f("ix_kb_article_versions_article_id"), "kb_article_versions", ["article_id"], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE kb_articles ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ("
                   "setweight(to_tsvector('russian', coalesce(title, '')), 'A') || "
                   "setweight(to_tsvector('russian', coalesce(body, '')), 'B')) STORED")
        op.execute("CREATE INDEX ix_kb_articles_search_tsv ON kb_articles USING gin (search_tsv)")
    elif dialect == "sqlite":
        sqlite_fts()


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("kb_articles_fts_ai", "kb_articles_fts_ad", "kb_articles_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS kb_articles_fts")
    op.drop_index(op.f("ix_kb_article_versions_article_id"), table_name="kb_article_versions")
    op.drop_table("kb_article_versions")
    op.drop_index(op.f("ix_kb_articles_building_id"), table_name="kb_articles")
    op.drop_index(op.f("ix_kb_articles_topic"), table_name="kb_articles")
    op.drop_table("kb_articles")
