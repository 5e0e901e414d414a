"""``/api/v1/kb``: the knowledge base — articles, call scripts and building hints (write: supervisors
and administrators; read and search: every staff role)."""
from __future__ import annotations

from flask import g

from crm.api import ApiError, Blueprint, token_required, translates
from crm.kb import services as kb
from crm.kb.schemas import (ArticleCreateSchema, ArticleSchema, ArticleUpdateSchema, ArticleVersionListSchema,
                            KbSearchQuerySchema, KbSearchSchema, RestoreSchema)

bp = Blueprint("api_kb", __name__, description="Knowledge base and call scripts: articles by topic, versions, "
                                              "Russian full-text search")


@translates(kb.KbError)
def _kb_error(exc: kb.KbError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


def _article(article_id: int):
    a = kb.get(article_id)
    if a is None:
        raise ApiError(404, "not_found", "no such knowledge-base article")
    return a


def _version(v) -> dict:
    return {"version": v.version, "kind": v.kind, "topic": v.topic, "building_id": v.building_id, "title": v.title,
            "body": v.body, "archived": v.archived, "restored_from": v.restored_from, "edited_by": v.edited_by,
            "edited_at": v.edited_at.isoformat()}


@bp.route("/kb/articles", methods=["POST"])
@token_required(*kb.EDIT_ROLES)
@bp.body(ArticleCreateSchema)
@bp.response(201, ArticleSchema)
@bp.errors({400: "empty or too long title or body, unknown topic or kind, a hint without a building of the "
                 "register (code invalid_title, invalid_body, invalid_topic, invalid_kind, invalid_building_id)"})
def kb_article_create(body: dict):
    """Add an article, a call script or a building hint (version 1)"""
    a = kb.create(g.api_user, title=body["title"], body=body["body"], topic=body["topic"], kind=body["kind"],
                  building_id=body["building_id"])
    return kb.view(a), 201, {"Location": f"{bp.url_prefix}/kb/articles/{a.id}"}


@bp.route("/kb/articles/<int:article_id>", methods=["GET"])
@token_required(*kb.READ_ROLES, session_ok=True)
@bp.response(200, ArticleSchema)
@bp.errors({404: "no such article (code not_found)"})
def kb_article_get(article_id: int):
    """An article in its current version (a script with its lines)"""
    return kb.view(_article(article_id))


@bp.route("/kb/articles/<int:article_id>", methods=["PUT"])
@token_required(*kb.EDIT_ROLES)
@bp.body(ArticleUpdateSchema)
@bp.response(200, ArticleSchema)
@bp.errors({400: "as for POST /kb/articles", 404: "no such article (code not_found)",
            409: "another edit was saved since expected_version (code stale)"})
def kb_article_update(body: dict, article_id: int):
    """Save a new version of an article (an edit that changes nothing saves none)"""
    a = kb.update(g.api_user, article_id, title=body["title"], body=body["body"], topic=body["topic"],
                  kind=body["kind"], building_id=body["building_id"], expected_version=body["expected_version"])
    return kb.view(a)


@bp.route("/kb/articles/<int:article_id>/versions", methods=["GET"])
@token_required(*kb.READ_ROLES, session_ok=True)
@bp.response(200, ArticleVersionListSchema)
@bp.errors({404: "no such article (code not_found)"})
def kb_article_versions(article_id: int):
    """Every saved version of an article, newest first, with who saved it and when"""
    _article(article_id)
    return {"items": [_version(v) for v in kb.versions(article_id)]}


@bp.route("/kb/articles/<int:article_id>/restore", methods=["POST"])
@token_required(*kb.EDIT_ROLES)
@bp.body(RestoreSchema)
@bp.response(200, ArticleSchema)
@bp.errors({404: "no such article or version (code not_found)"})
def kb_article_restore(body: dict, article_id: int):
    """Make an old version current again (saved as a new version)"""
    return kb.view(kb.restore(g.api_user, article_id, body["version"]))


@bp.route("/kb/search", methods=["GET"])
@token_required(*kb.READ_ROLES, session_ok=True)
@bp.query(KbSearchQuerySchema)
@bp.response(200, KbSearchSchema)
@bp.errors({400: "q longer than 200 characters, unknown topic or kind (code invalid_q, invalid_topic, "
                 "invalid_kind)"})
def kb_search(args: dict):
    """Articles holding every word of q in any word form, best first

    Russian full-text search: on PostgreSQL the `russian` text search configuration, on SQLite an
    FTS5 index of the words' lemmas, so «горячая вода» finds «горячей воды». Archived articles are
    left out. The knowledge base holds no personal data, so q may travel in the URL."""
    return {"items": kb.search(args["q"], topic=args["topic"], kind=args["kind"], limit=args["limit"])}
