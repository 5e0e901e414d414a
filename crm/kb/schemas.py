"""The knowledge-base resources of ``/api/v1``: articles (with script lines), versions, search."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import IsoDateTime, Schema, fields, nullable
from crm.appeals.catalog import TOPICS
from crm.kb.models import KINDS
from crm.kb.scripts import STAGES
from crm.kb.services import MAX_BODY, MAX_QUERY, MAX_TITLE

_TOPIC_DOC = {"description": "appeal topic code (hot_water, heating, …); null: every topic"}


class ArticleCreateSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TITLE))
    body = fields.String(required=True, validate=validate.Length(min=1, max=MAX_BODY), metadata={
        "description": "the text; for a script one line per row, «phrases» being what the QA checks look for"})
    topic = fields.String(required=True, allow_none=True, validate=validate.OneOf(list(TOPICS)), metadata=_TOPIC_DOC)
    kind = fields.String(load_default="article", validate=validate.OneOf(KINDS),
                         metadata={"description": "article, script (call script) or hint (about one building)"})
    building_id = fields.Integer(load_default=None, allow_none=True,
                                 metadata={"description": "the building of a hint (GET /buildings)"})


class ArticleUpdateSchema(ArticleCreateSchema):
    kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "article, script or hint; left out: kept"})
    expected_version = fields.Integer(load_default=None, allow_none=True, metadata={
        "description": "the version the edit started from: another edit saved meanwhile answers 409 stale"})


class RestoreSchema(Schema):
    version = fields.Integer(required=True, validate=validate.Range(min=1))


class ScriptLineSchema(Schema):
    number = fields.Integer(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    text = fields.String(required=True)
    phrases = fields.List(fields.String(), required=True, metadata={
        "description": "what the automatic QA check looks for (empty: guidance, not checked)"})


class ArticleSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    topic = nullable(fields.String, required=True)
    building_id = nullable(fields.Integer, required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    version = fields.Integer(required=True)
    archived = fields.Boolean(required=True)
    updated_at = IsoDateTime(required=True)
    updated_by = nullable(fields.Integer, required=True)
    lines = fields.List(fields.Nested(ScriptLineSchema), required=True, metadata={"description": "a script's lines"})


class ArticleVersionSchema(Schema):
    version = fields.Integer(required=True)
    kind = fields.String(required=True)
    topic = nullable(fields.String, required=True)
    building_id = nullable(fields.Integer, required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    archived = fields.Boolean(required=True)
    restored_from = nullable(fields.Integer, required=True)
    edited_by = nullable(fields.Integer, required=True)
    edited_at = IsoDateTime(required=True)


class ArticleVersionListSchema(Schema):
    items = fields.List(fields.Nested(ArticleVersionSchema), required=True)


class KbSearchQuerySchema(Schema):
    q = fields.String(load_default="", validate=validate.Length(max=MAX_QUERY),
                      metadata={"description": "words in any form («горячая вода» finds «горячей воды»)"})
    topic = fields.String(load_default=None, validate=validate.OneOf(list(TOPICS)))
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class KbSearchItemSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True)
    topic = nullable(fields.String, required=True)
    building_id = nullable(fields.Integer, required=True)
    version = fields.Integer(required=True)
    snippet = fields.String(required=True, metadata={"description": "the text around the first matched word"})


class KbSearchSchema(Schema):
    items = fields.List(fields.Nested(KbSearchItemSchema), required=True)
