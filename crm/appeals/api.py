"""``/api/v1/appeals``: register an appeal (finding or registering its citizen, with the consent
answers; :func:`crm.appeals.services.register_appeal`, the operator form's service), read it, move it
along its lifecycle. The services own the transactions and write the history and the access log."""
from __future__ import annotations

from flask import current_app, g, request

from crm.api import ApiError, Blueprint, translates, token_required
from crm.appeals import repeats, services as appeals
from crm.appeals.schemas import (AppealCreatedSchema, AppealCreateSchema, AppealListQuerySchema, AppealListSchema,
                                 AppealSchema, AppealSummarySchema, AssignSchema, AppealCommentCreatedSchema, AppealCommentSchema, DuplicateSchema, PhoneInUseSchema,
                                 RepeatCandidatesSchema, RepeatQuerySchema, StaleSchema, TransitionSchema)
from crm.citizens import services as citizens
from crm.notifications import services as notify
from crm.i18n import lazy_gettext as _l
from crm.incidents import services as incidents

OPERATORS = ("operator", "admin")
#: who hands appeals over to executors
DISPATCHERS = ("operator", "supervisor", "admin")

bp = Blueprint("api_appeals", __name__, description="Appeals: register, read, move along the lifecycle")


@translates(appeals.AppealError)
def _appeal_error(exc: appeals.AppealError) -> ApiError:
    if exc.code == "invalid":
        return ApiError(400, f"invalid_{exc.field or 'appeal'}", str(exc))
    return ApiError(409, exc.code, str(exc))  # erased, bad_transition


def _summary(appeal) -> dict:
    """The appeal without its (encrypted) description: nothing is decrypted, nothing to log."""
    data = appeals.as_dict(appeal)
    data.pop("description", None)
    return data


class PhoneInUse(ApiError):
    """409: the phone belongs to citizens of other names; nothing was registered. Carries their
    ``citizen_ids`` and masked ``duplicates`` cards, as the operator's form lists them."""

    def __init__(self, cards: list[dict]):
        super().__init__(409, "phone_in_use", _l(
            "этот номер уже есть у заявителя: укажите «citizen_id» одного из них или «confirm_duplicate»: true, "
            "чтобы зарегистрировать нового") if len(cards) == 1 else _l(
            "этот номер уже есть у заявителей (%(count)s): укажите «citizen_id» одного из них или "
            "«confirm_duplicate»: true, чтобы зарегистрировать нового", count=len(cards)))
        self.cards = cards

    def to_json(self) -> dict:
        return {**super().to_json(), "citizen_ids": [c["id"] for c in self.cards], "duplicates": self.cards}


@translates(appeals.PhoneInUse)
def _phone_in_use(exc: appeals.PhoneInUse) -> ApiError:
    return PhoneInUse(exc.duplicates)


@bp.route("/appeals", methods=["POST"])
@token_required(*OPERATORS)
@bp.body(AppealCreateSchema)
@bp.response(201, AppealCreatedSchema, description=(
    "created (or, with a repeated Idempotency-Key, the appeal made the first time)"))
@bp.errors({404: "citizen_id unknown"})
@bp.alt_response(409, schema=PhoneInUseSchema, description=(
    "the phone belongs to citizens of other names and `confirm_duplicate` is not true (code phone_in_use; "
    "nothing registered; `citizen_ids` and their masked cards in `duplicates`), or the citizen's data were "
    "erased (code erased)"))
@bp.doc(parameters=[{
    "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 64},
    "description": "a retried POST with the same key returns the same appeal"}])
def appeal_create(body: dict):
    """Register an appeal

    Sets the SLA clocks and `repeat_of` (same citizen or building and topic within the repeat window).
    The description is not echoed back; GET /appeals/{id} returns it and logs the read. The citizen is
    found or registered as the operator's form does it (the same service): a `citizen` with the phone and
    name of an existing citizen is that citizen; a phone that belongs to citizens of other names is
    answered 409 `phone_in_use` with their `citizen_ids` (and masked cards, each read logged), and nothing
    is registered: send `citizen_id` to use one of them, or `confirm_duplicate: true` to register a new
    citizen all the same. `possible_duplicates` is therefore always empty now (kept for clients that read
    it). A retried POST with the same `Idempotency-Key` gets the appeal made the first time, without
    `possible_duplicates`, and looks up, registers and decrypts nothing. `consents` records the answers
    to the consent questions asked on the call, as the form's radio buttons do. The citizen, the appeal and
    the consents are one transaction (crm.appeals.services.register_appeal, the operator form's service):
    any error registers nothing."""
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key and len(key) > 64:
        raise ApiError(400, "invalid_idempotency_key", _l("Idempotency-Key длиннее 64 символов"))
    person = body.get("citizen")
    intake = appeals.register_appeal(
        g.api_user, citizen_id=body.get("citizen_id"),
        citizen=citizens.CitizenData(**{k: person.get(k) for k in ("full_name", "phone", "email", "address",
                                                                     "apartment")}) if person is not None else None,
        category=body["category"], topic=body["topic"], description=body["description"],
        channel=body.get("channel") or "api", consents=body.get("consents"),
        confirm_duplicate=bool(body.get("confirm_duplicate")), submission_key=key,
        building_id=body.get("building_id"), repeat_of_id=body.get("repeat_of_id"), call_id=body.get("call_id"),
        incident_id=body.get("incident_id"))
    data = _summary(intake.appeal)
    data["incident_id"] = incidents.incident_of_appeal(intake.appeal.id)
    if not intake.replayed:
        data["possible_duplicates"] = []
        if "consents" in body:
            data["consents"] = [{"id": e.id, "purpose": e.purpose_code, "status": e.status} for e in intake.consents]
            data["consent_error"] = intake.consent_error
    return data, 201, {"Location": f"{bp.url_prefix}/appeals/{intake.appeal.id}"}


@bp.route("/appeals/<appeal_id>", methods=["GET"])
@token_required(*OPERATORS, "supervisor", "executor")
@bp.response(200, AppealSchema)
@bp.errors({404: "unknown id, or (an executor's account) an appeal not handed over to its executor"})
def appeal_get(appeal_id: str):
    """An appeal with its citizen card (masked) and history; the read is logged

    An executor's account sees only the appeals handed over to its executor (404 for others)."""
    appeal = appeals.get_for(g.api_user, appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", _l("обращение не найдено"))
    return {**appeals.view(appeal), "notifications": notify.for_appeal(appeal.id)}


class Stale(ApiError):
    """409 ``stale``: the appeal is no longer in ``expected_status``; carries both statuses."""

    def __init__(self, exc: appeals.StaleTransition):
        super().__init__(409, "stale", str(exc))
        self.exc = exc

    def to_json(self) -> dict:
        return {**super().to_json(), "current_status": self.exc.current, "expected_status": self.exc.expected}


@translates(appeals.StaleTransition)
def _stale(exc: appeals.StaleTransition) -> ApiError:
    return Stale(exc)


@bp.route("/appeals/<appeal_id>/transitions", methods=["POST"])
@token_required(*OPERATORS)
@bp.body(TransitionSchema)
@bp.response(200, AppealSummarySchema)
@bp.errors({404: "unknown id (also `duplicate_of`)", 409: "the lifecycle table does not allow this transition "
                                                         "(code bad_transition)"})
@bp.alt_response(409, schema=StaleSchema, description=(
    "code stale: the appeal is no longer in `expected_status` (nothing changed; `current_status` says where it "
    "is now), or code bad_transition"))
def appeal_transition(body: dict, appeal_id: str):
    """Move an appeal along its lifecycle

    One table of allowed transitions (design.md, "Appeal lifecycle"). Send `expected_status` (the status the
    client showed): a transition from a status the appeal has left is refused with 409 `stale`, never applied
    nor counted as a re-opening, so a double click or a retried request moves the appeal once. A re-opening
    (resolved or closed → in_progress, consulted → escalated) counts in `reopen_count` and starts a new
    resolution cycle with its own deadline. `consulted` from `received` closes the appeal in one step as a
    first-contact resolution. The history row keeps the user, their role, the time (UTC) and the comment with
    its `visibility`."""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", _l("обращение не найдено"))
    if body.get("duplicate_of"):
        if body["status"] != "duplicate":
            raise ApiError(400, "invalid_duplicate_of", _l("«duplicate_of» — только для статуса «duplicate»"))
        appeal = appeals.mark_duplicate(appeal, body["duplicate_of"], user=g.api_user, merge=False,
                                        comment=body.get("comment"), expected_status=body.get("expected_status"))
        return _summary(appeal)
    appeal = appeals.transition(appeal, body["status"], user=g.api_user, comment=body.get("comment"),
                                visibility=body.get("visibility") or "internal",
                                expected_status=body.get("expected_status"))
    return _summary(appeal)


@bp.route("/appeals/<appeal_id>/comments", methods=["POST"])
@token_required(*OPERATORS)
@bp.body(AppealCommentSchema)
@bp.response(201, AppealCommentCreatedSchema)
@bp.errors({404: "unknown id"})
def appeal_comment(body: dict, appeal_id: str):
    """Comment on an appeal without changing its status

    In any status, a closed appeal included. `visibility` `internal` (the default) keeps the comment among
    staff; `citizen` also shows it on the citizen's self-service page. The history row keeps the user,
    their role and the time (UTC); the text is encrypted under the citizen's data key. Logged as
    `appeal.comment`."""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", _l("обращение не найдено"))
    event = appeals.add_comment(appeal, body["text"], user=g.api_user, visibility=body.get("visibility") or "internal")
    return {"id": event.id, "appeal_id": appeal.id, "visibility": event.visibility, "at": event.at}, 201


@bp.route("/appeals/<appeal_id>/duplicate", methods=["POST"])
@token_required(*OPERATORS)
@bp.body(DuplicateSchema)
@bp.response(200, AppealSummarySchema)
@bp.errors({400: "the original is this appeal, a duplicate or rejected (invalid_original_id)",
            404: "unknown id or original_id"})
@bp.alt_response(409, schema=StaleSchema, description="stale (see /transitions) or bad_transition")
def appeal_duplicate(body: dict, appeal_id: str):
    """Mark an appeal a duplicate of its original, and merge it

    The appeal moves to `duplicate` (linked through `duplicate_of`). With `merge: true` its calls and comments
    move to the original in the same transaction, and the citizen is told once: one comment for the citizen on
    the duplicate (their self-service page shows it) and one status notification (SMS, where the citizen
    consented) of the step to `duplicate`. A second request for an appeal already merged is refused (409
    stale with `expected_status`, or bad_transition), so nothing moves twice and nobody is told twice."""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", _l("обращение не найдено"))
    return _summary(appeals.mark_duplicate(appeal, body["original_id"], user=g.api_user, merge=bool(body.get("merge")),
                                           comment=body.get("comment"), expected_status=body.get("expected_status")))


@bp.route("/appeals/<appeal_id>/assign", methods=["POST"])
@token_required(*DISPATCHERS)
@bp.body(AssignSchema)
@bp.response(200, AppealSummarySchema)
@bp.errors({400: "unknown or inactive executor (code invalid_executor_id)", 404: "unknown id",
            409: "the appeal can no longer be handed over: resolved, closed, rejected, duplicate (code bad_transition)"})
def appeal_assign(body: dict, appeal_id: str):
    """Hand an appeal over to an executor

    The appeal moves to «Передано исполнителю» (`escalated`) when its lifecycle allows it; an appeal
    already there changes executor. Logged (`appeal.assign`, and the transition in the history)."""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        raise ApiError(404, "not_found", _l("обращение не найдено"))
    return _summary(appeals.assign(appeal, body["executor_id"], user_id=g.api_user.id))


@translates(appeals.SearchError)
def _search_error(exc: appeals.SearchError) -> ApiError:
    code = f"invalid_{exc.field or 'filter'}" if exc.code == "invalid" else exc.code
    return ApiError(400, code, str(exc))


def _list(args: dict) -> dict:
    page = appeals.search(appeals.filters_from(args), sort=args.get("sort") or "deadline",
                          limit=args.get("limit") or 50, cursor=args.get("cursor") or None, user=g.api_user)
    return {"items": [_summary(a) for a in page.items], "next_cursor": page.next_cursor, "total": page.total,
            "total_capped": page.total_capped}


#: Answers to ``GET /appeals`` with a ``q``: RFC 9745 ``Deprecation`` (the date, a structured-field
#: date) and RFC 8594 ``Link`` to the successor. A phone, name or address in a URL ends up in request
#: logs, proxies and browser history (crm/weblog.py); design.md keeps the GET (change only by adding).
Q_IN_URL_HEADERS = {"Deprecation": "@1796601600",  # 2026-12-07T00:00:00Z
                    "Link": '</api/v1/appeals/search>; rel="successor-version"'}


@bp.route("/appeals", methods=["GET"])
@token_required(*OPERATORS, "supervisor", "executor")
@bp.query(AppealListQuerySchema)
@bp.response(200, AppealListSchema, headers={
    "Deprecation": {"description": "RFC 9745, only when `q` is given: searching by `q` in the URL is deprecated",
                    "schema": {"type": "string"}},
    "Link": {"description": "only when `q` is given: the successor, POST /api/v1/appeals/search",
             "schema": {"type": "string"}}})
@bp.errors({400: "unknown filter value, sort, bad cursor (invalid_cursor), a `q` that is none of a number, a "
                 "phone, a name or an address (invalid_q)"})
def appeal_list(args: dict):
    """List and search appeals

    Nearest pending deadline first by default (`sort=created`: oldest first). Keyset paging: follow
    `next_cursor` until null to reach every appeal once, even while appeals are being added. `total`
    counts all matches, up to CRM_SEARCH_COUNT_CAP (10 000): `total_capped` true means more than `total`. An executor's account sees only the appeals handed over to its executor.
    `executor_id` filters on the executor an appeal is handed over to. The search is logged (`appeal.search`: the kind of query and the filters' names,
    never their values); nothing is decrypted.

    `q` in the URL is deprecated (a phone, name or address in a URL leaks into proxies' and clients' logs):
    it still works, and the answer then carries `Deprecation` and `Link` to POST /appeals/search, which
    takes the same parameters in a JSON body."""
    if "q" in args:
        return _list(args), 200, Q_IN_URL_HEADERS
    return _list(args)


@bp.route("/appeals/search", methods=["POST"])
@token_required(*OPERATORS, "supervisor", "executor")
@bp.body(AppealListQuerySchema)
@bp.response(200, AppealListSchema)
@bp.errors({400: "as GET /appeals"})
def appeal_search(body: dict):
    """List and search appeals, the filters in the body

    GET /appeals with the parameters in a JSON body, so that a phone, name or address is not in a URL."""
    return _list(body)


@bp.route("/appeals/repeat-candidates", methods=["POST"])
@token_required(*OPERATORS)
@bp.body(RepeatQuerySchema)
@bp.response(200, RepeatCandidatesSchema)
@bp.errors({404: "citizen_id unknown (citizen_not_found)", 400: "unknown topic (invalid_topic)"})
def repeat_candidates(body: dict):
    """Open or recent appeals a new one may repeat

    While a new appeal is being typed: the open appeals, and those created within CRM_REPEAT_WINDOW_DAYS
    (30), on the same topic and the same house (`building_id`, or the typed `address` matched to the
    buildings register, or the citizen's own address) or of the same citizen; open ones first. Link the new
    appeal to one with `repeat_of_id` in POST /appeals. A POST, so nothing about the citizen is in a URL;
    nothing is decrypted; logged as `appeal.search` (`repeat_candidates`)."""
    found = repeats.candidates(g.api_user, citizen_id=body["citizen_id"], topic=body["topic"],
                               building_id=body.get("building_id"), address=body.get("address"),
                               limit=body.get("limit") or 10)
    return {"items": [c.as_dict() for c in found], "window_days": float(current_app.config["CRM_REPEAT_WINDOW_DAYS"])}
