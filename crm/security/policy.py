"""The authorization policy: one table of endpoint × role × scope.

Every Flask endpoint of the application (HTML pages, ``/api/v1`` operations, health, static files) has
exactly one entry in :data:`POLICY`:

- :func:`staff` — signed-in staff (a session for HTML pages, a bearer token for ``/api/v1``; some API
  reads also take the staff browser's session, ``token_required(session_ok=True)``): the roles allowed
  and, per role, the *scope* of the objects that role may reach (:data:`SCOPES`);
- :func:`public` — anyone, with the reason (the sign-in form, health, the OpenAPI document);
- :func:`citizen` — the data subject's self-service pages: no staff role; the citizen's own
  self-service session (``crm.consent.selfservice.session_scope``) is checked by the view, which sends
  anyone without one to ``/my``;
- :func:`signed` — machine callbacks authenticated by a shared secret or signature the view checks
  (the PBX webhook, the SMS provider's delivery reports), never by a staff session or token.

The role part is enforced centrally for every request, before the view runs, by
``crm.users.access`` (a ``before_request`` hook registered by the application factory): an endpoint with
no entry is refused (403, fail closed) and logged. The views' decorators
(:func:`crm.security.permissions.roles_required`, ``crm.api.token_required``) stay as a second check and
must name the same roles (tests/security/test_policy_matrix.py compares them and calls every route as
every role). The *scope* part is per object and stays in the services that load the object — the
services named in :data:`SCOPES`.

Adding a route: add its endpoint here (the generated test fails with the endpoint's name until you do).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from crm.security.permissions import ROLES

#: Scope names: which objects of an endpoint a role reaches, and which service enforces it.
SCOPES = {
    "all": "every object of the kind the endpoint serves",
    "own_service": "an executor account: only the appeals handed over to its own executor (users.executor_id), "
                   "their extension requests and its own notifications — crm.appeals.services.visibility / "
                   "visible_to / get_for (others answer 404, so nothing leaks), crm.dispatch.services "
                   "(executor steps check visible_to; notifications filtered by audience and executor_id)",
    "own_calls": "an operator: only the calls they handled and the QA evaluations of those calls — "
                 "crm.calls.services.get_for and crm.calls.api.call_get (403 «оператор видит только свои "
                 "звонки»), crm.qa.services.evaluations.get_for (403); acknowledging or disputing only "
                 "their own evaluation (crm.qa.services.evaluations.can_respond and _check_respond)",
    "audit": "the DPO: access log, consent records, data subject requests, destruction acts and alerts (crm.dpo, crm.consent.rights) — "
             "never appeal contents or transcripts (no appeal, call or QA endpoint lists the dpo role)",
    "staff_admin": "an administrator: staff accounts, roles, passwords, API tokens and sessions "
                   "(crm.users.services: disable_user, change_role … keep at least one active administrator); "
                   "never the keys, the access log or the DPO's pages (no dpo.* endpoint lists admin)",
    "self": "the signed-in user's own account only: their sessions, their password typed again before an export "
            "(crm.users.sessions: live, end_one, fresh_required)",
    "own_pop": "only the screen pop waiting for the requesting user (crm.telephony.pop.pending; 404 otherwise)",
    "ivr": "the PBX's voice menu (an API token of role ivr): the /api/v1/ivr look-ups only (crm.telephony.ivr), each answering one "
           "Russian sentence about the caller's own appeal or house",
}

KINDS = ("staff", "public", "citizen", "signed")


@dataclass(frozen=True)
class Rule:
    """One endpoint's rule. ``kind``: one of :data:`KINDS`; ``scopes``: role → scope (staff only);
    ``reason``: why a non-staff endpoint is open and what checks it instead."""

    kind: str
    scopes: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def roles(self) -> tuple[str, ...]:
        """The staff roles allowed (empty for public, citizen and signed endpoints)."""
        return tuple(self.scopes)

    def allows(self, role: str | None) -> bool:
        """True when a staff member of ``role`` passes the role check (always for non-staff kinds:
        their own check is the view's)."""
        return self.kind != "staff" or role in self.scopes


def staff(*roles: str, **scoped: str) -> Rule:
    """A staff endpoint: ``roles`` reach every object (scope ``all``); ``role=scope`` keywords limit a
    role to a narrower scope of :data:`SCOPES`."""
    scopes = {r: "all" for r in roles}
    scopes.update(scoped)
    unknown = [r for r in scopes if r not in ROLES] + [s for s in scopes.values() if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown role or scope in the policy: {unknown}")
    return Rule("staff", scopes)


#: Every role that signs in to the pages (ivr is a machine client with a token only).
SIGNED_IN = ("operator", "supervisor", "dpo", "admin", "executor")


def signed_in(scope: str = "self") -> Rule:
    """A page for any signed-in staff member (the view is ``login_required``, no role list), on their
    own account (``scope``)."""
    return staff(**{role: scope for role in SIGNED_IN})


def public(reason: str) -> Rule:
    return Rule("public", reason=reason)


def citizen(reason: str) -> Rule:
    return Rule("citizen", reason=reason)


def signed(reason: str) -> Rule:
    return Rule("signed", reason=reason)


OP, SUP, DPO, ADM, EXE, IVR = "operator", "supervisor", "dpo", "admin", "executor", "ivr"
_SELF = "the citizen's self-service session (crm.consent.selfservice.session_scope); else a redirect to /my"

#: endpoint → :class:`Rule`. Sorted by blueprint; one line per endpoint.
POLICY: dict[str, Rule] = {
    # --- public ------------------------------------------------------------------------------------
    "static": public("CSS, scripts and images"),
    "users.index": public("redirects to the role's home page, or to the sign-in form"),
    "users.login": public("the sign-in form"),
    "users.enrol": public("the second sign-in step, first time: only with the pending sign-in a right password "
                          "left in the session (crm.users.views), else back to the sign-in form"),
    "users.second_factor": public("the second sign-in step: only with the pending sign-in a right password left "
                                  "in the session (crm.users.views), else back to the sign-in form"),
    "users.logout": public("sign-out; ends whatever session the request carries"),
    "users.reauth": signed_in(),
    "users.my_sessions": signed_in(),
    "users.end_session": signed_in(),
    "health.healthz": public("process status, no data"),
    "health.readyz": public("dependency status, no data"),
    "api.openapi": public("the OpenAPI document"),
    "csat.survey": public("the satisfaction survey reached by its single-use SMS link (the token is the key)"),
    "csat.thanks": public("the thanks page after a survey; shows nothing"),
    "selfservice.start": public("the citizen's sign-in to self-service: by SMS code"),
    "selfservice.code": public("the citizen's sign-in to self-service: the code form"),
    "selfservice.link": public("the citizen's sign-in to self-service: a signed one-time link"),
    "selfservice.logout": public("the citizen's sign-out"),
    # --- the citizen's own pages ---------------------------------------------------------------------
    "selfservice.consents": citizen(_SELF),
    "selfservice.withdraw": citizen(_SELF),
    "appeals_selfservice.my_appeals": citizen(_SELF),
    "dpo_selfservice.selfservice_export": citizen(_SELF + "; the request must be the citizen's own"),
    # --- machine callbacks ---------------------------------------------------------------------------
    "api_telephony.telephony_event": signed("the PBX webhook: X-CRM-Signature, HMAC-SHA256 of the body under "
                                            "CRM_TELEPHONY_SECRET (crm.telephony.api)"),
    "api_notifications.delivery_report": signed("an SMS provider's delivery report: CRM_SMS_CALLBACK_TOKEN "
                                                "(crm.notifications.api)"),
    # --- admin -------------------------------------------------------------------------------------------
    "admin.calendar_page": staff(ADM),
    "admin.calendar_remove": staff(ADM),
    "admin.job_monitor": staff(ADM),
    "admin.job_retry": staff(ADM),
    "admin.job_retry_all": staff(ADM),
    "staff.staff_list": staff(admin="staff_admin"),
    "staff.staff_user": staff(admin="staff_admin"),
    "staff.staff_disable": staff(admin="staff_admin"),
    "staff.staff_enable": staff(admin="staff_admin"),
    "staff.staff_end_sessions": staff(admin="staff_admin"),
    "staff.staff_issue_token": staff(admin="staff_admin"),
    "staff.staff_reset_password": staff(admin="staff_admin"),
    "staff.staff_reset_second_factor": staff(admin="staff_admin"),
    "staff.staff_revoke_token": staff(admin="staff_admin"),
    "staff.staff_revoke_tokens": staff(admin="staff_admin"),
    "staff.staff_role": staff(admin="staff_admin"),
    # --- appeals -----------------------------------------------------------------------------------------
    "appeals.operator_home": staff(OP, ADM),
    "appeals.citizen_search": staff(OP, ADM),
    "appeals.citizen_create": staff(OP, ADM),
    "appeals.citizen_card": staff(OP, ADM, SUP),
    "appeals.citizen_rectify": staff(OP),
    "appeals.appeal_new": staff(OP, ADM),
    "appeals.appeal_attach": staff(OP, ADM),
    "appeals.repeat_candidates": staff(OP, ADM),
    "appeals.intake_incidents": staff(OP, ADM),
    "appeals.incident_attach": staff(OP, ADM),
    "appeals.appeal_list": staff(OP, ADM, SUP, executor="own_service"),
    "appeals.appeal_search": staff(OP, ADM, SUP, executor="own_service"),
    "appeals.appeal_detail": staff(OP, ADM, SUP, executor="own_service"),
    "appeals.appeal_reveal": staff(OP, ADM),
    "appeals.appeal_comment": staff(OP, ADM),
    "appeals.appeal_transition": staff(OP, ADM),
    "appeals.appeal_duplicate": staff(OP, ADM),
    "appeals.appeal_add_call": staff(OP, ADM),
    "appeals.quick_consent": staff(OP, ADM),
    "appeals.consent_withdraw": staff(OP, ADM),
    "api_appeals.appeal_create": staff(OP, ADM),
    "api_appeals.appeal_list": staff(OP, ADM, SUP, executor="own_service"),
    "api_appeals.appeal_search": staff(OP, ADM, SUP, executor="own_service"),
    "api_appeals.appeal_get": staff(OP, ADM, SUP, executor="own_service"),
    "api_appeals.appeal_assign": staff(OP, SUP, ADM),
    "api_appeals.appeal_comment": staff(OP, ADM),
    "api_appeals.appeal_duplicate": staff(OP, ADM),
    "api_appeals.appeal_transition": staff(OP, ADM),
    "api_appeals.repeat_candidates": staff(OP, ADM),
    # --- citizens and consent ------------------------------------------------------------------------------
    "api_citizens.citizen_card": staff(OP, ADM),
    "api_citizens.citizen_rectify": staff(OP, DPO),
    "api_citizens.citizens_by_phone": staff(OP, ADM),
    "api_citizens.citizens_search": staff(OP, ADM),
    "api_consent.consent_create": staff(OP, ADM),
    "api_consent.consent_list": staff(OP, ADM, dpo="audit"),
    "api_consent.consent_withdraw": staff(OP, ADM, dpo="audit"),
    "consent.selfservice_link": staff(OP, ADM, dpo="audit"),
    # --- buildings, executors ---------------------------------------------------------------------------------
    "buildings.building_list": staff(SUP, ADM),
    "api_buildings.buildings_search": staff(OP, SUP, ADM, EXE),
    "api_executors.executor_create": staff(ADM, SUP),
    "api_executors.executor_list": staff(OP, SUP, ADM, EXE),
    # --- calls ---------------------------------------------------------------------------------------------------
    "calls.call_detail": staff(SUP, ADM, operator="own_calls"),
    "calls.call_audio": staff(SUP, ADM, operator="own_calls"),
    "calls.call_reveal": staff(SUP, ADM),
    "calls.call_retranscribe": staff(SUP, ADM),
    "calls.call_search": staff(SUP, ADM),
    "calls.call_search_submit": staff(SUP, ADM),
    "api_calls.call_get": staff(SUP, ADM, operator="own_calls"),
    "api_calls.call_retranscribe": staff(SUP, ADM),
    "api_calls.call_search": staff(SUP, ADM),
    "api_calls.call_search_in_url": staff(SUP, ADM),
    "api_calls.call_upload": staff(OP, SUP, ADM),
    # --- dispatch (executors' work, breaches, extensions, staff notifications) -----------------------------------
    "dispatch.appeal_assign": staff(OP, SUP, ADM),
    "dispatch.breach_list": staff(SUP, ADM),
    "dispatch.breach_acknowledge": staff(SUP, ADM),
    "dispatch.executor_stats": staff(SUP, ADM),
    "dispatch.executor_address": staff(executor="own_service"),
    "dispatch.executor_step": staff(executor="own_service"),
    "dispatch.extension_decide": staff(SUP, ADM),
    "dispatch.notification_list": staff(SUP, ADM, executor="own_service"),
    "dispatch.notification_read": staff(SUP, ADM, executor="own_service"),
    "api_dispatch.appeal_accept": staff(executor="own_service"),
    "api_dispatch.appeal_address": staff(executor="own_service"),
    "api_dispatch.appeal_done": staff(executor="own_service"),
    "api_dispatch.appeal_progress": staff(executor="own_service"),
    "api_dispatch.breach_acknowledge": staff(SUP, ADM),
    "api_dispatch.breach_list": staff(SUP, ADM),
    "api_dispatch.executor_stats_list": staff(SUP, ADM),
    "api_dispatch.executor_stats_one": staff(SUP, ADM),
    "api_dispatch.executor_suggestions": staff(OP, SUP, ADM),
    "api_dispatch.extension_create": staff(executor="own_service"),
    "api_dispatch.extension_decide": staff(SUP, ADM),
    "api_dispatch.extension_list": staff(SUP, ADM, OP, executor="own_service"),
    "api_dispatch.extension_pending": staff(SUP, ADM),
    "api_dispatch.notification_list": staff(SUP, ADM, executor="own_service"),
    "api_dispatch.notification_read": staff(SUP, ADM, executor="own_service"),
    # --- the DPO's pages (no admin: issue 17 point 4) -----------------------------------------------------------
    "dpo.access_log": staff(dpo="audit"),
    "dpo.access_report": staff(dpo="audit"),
    "dpo.access_report_print": staff(dpo="audit"),
    "dpo.act": staff(dpo="audit"),
    "dpo.acts": staff(dpo="audit"),
    "dpo.alert_acknowledge": staff(dpo="audit"),
    "dpo.alert_list": staff(dpo="audit"),
    "dpo.alert_scan": staff(dpo="audit"),
    "dpo.citizen_lookup": staff(dpo="audit"),
    "dpo.citizen_rectify": staff(dpo="audit"),
    "dpo.citizen_search": staff(dpo="audit"),
    "dpo.dpo_withdraw": staff(dpo="audit"),
    "dpo.erasure_request": staff(dpo="audit"),
    "dpo.history": staff(dpo="audit"),
    "dpo.outbox": staff(dpo="audit"),
    "dpo.purpose_edit": staff(dpo="audit"),
    "dpo.purpose_proposal": staff(dpo="audit"),
    "dpo.purposes": staff(dpo="audit"),
    "dpo.request_answer": staff(dpo="audit"),
    "dpo.request_approve_export": staff(dpo="audit"),
    "dpo.request_detail": staff(dpo="audit"),
    "dpo.request_export": staff(dpo="audit"),
    "dpo.request_extend": staff(dpo="audit"),
    "dpo.request_verify": staff(dpo="audit"),
    "dpo.requests": staff(dpo="audit"),
    "dpo.retention_page": staff(dpo="audit"),
    "api_dpo.audit_log": staff(dpo="audit"),
    # --- incidents ---------------------------------------------------------------------------------------------
    "incidents.incident_list": staff(SUP, ADM),
    "incidents.incident_new": staff(SUP, ADM),
    "incidents.incident_detail": staff(SUP, ADM),
    "incidents.incident_close": staff(SUP, ADM),
    "incidents.proposal_decide": staff(SUP, ADM),
    "api_incidents.incident_active": staff(OP, SUP, ADM, EXE),
    "api_incidents.incident_call": staff(OP, ADM),
    "api_incidents.incident_close": staff(SUP, ADM),
    "api_incidents.incident_create": staff(OP, SUP, ADM),
    "api_incidents.incident_get": staff(OP, SUP, ADM, EXE),
    "api_incidents.incident_list": staff(OP, SUP, ADM, EXE),
    # --- knowledge base ------------------------------------------------------------------------------------------
    "kb.kb_list": staff(OP, SUP, ADM, EXE, DPO),
    "kb.kb_article": staff(OP, SUP, ADM, EXE, DPO),
    "kb.kb_versions": staff(OP, SUP, ADM, EXE, DPO),
    "kb.kb_panel": staff(OP, SUP, ADM),
    "kb.kb_new": staff(SUP, ADM),
    "kb.kb_edit": staff(SUP, ADM),
    "kb.kb_restore": staff(SUP, ADM),
    "kb.kb_archive": staff(SUP, ADM),
    "api_kb.kb_search": staff(OP, SUP, ADM, EXE, DPO),
    "api_kb.kb_article_get": staff(OP, SUP, ADM, EXE, DPO),
    "api_kb.kb_article_versions": staff(OP, SUP, ADM, EXE, DPO),
    "api_kb.kb_article_create": staff(SUP, ADM),
    "api_kb.kb_article_update": staff(SUP, ADM),
    "api_kb.kb_article_restore": staff(SUP, ADM),
    # --- notifications -------------------------------------------------------------------------------------------
    "notifications.template_list": staff(SUP, ADM),
    "notifications.template_save": staff(SUP, ADM),
    # --- quality control -----------------------------------------------------------------------------------------
    "qa.queue": staff(SUP, ADM),
    "qa.queue_sample": staff(SUP, ADM),
    "qa.calls_list": staff(SUP, ADM),
    "qa.review": staff(SUP, ADM),
    "qa.evaluate": staff(SUP, ADM),
    "qa.evaluations": staff(SUP, ADM),
    "qa.evaluation_detail": staff(SUP, ADM, operator="own_calls"),
    "qa.evaluation_acknowledge": staff(operator="own_calls"),
    "qa.evaluation_dispute": staff(operator="own_calls"),
    "qa.evaluation_resolve": staff(SUP, ADM),
    "qa.my_evaluations": staff(operator="own_calls"),
    "qa.disputes": staff(SUP, ADM),
    "qa.dashboard": staff(SUP, ADM),
    "qa.calibration_list": staff(SUP, ADM),
    "qa.calibration_detail": staff(SUP, ADM),
    "qa.calibration_score": staff(SUP, ADM),
    "qa.calibration_close": staff(SUP, ADM),
    "qa.sampling_rules": staff(SUP, ADM),
    "qa.scorecard_edit": staff(SUP, ADM),
    "api_qa.evaluation_create": staff(SUP, ADM),
    # --- reports -------------------------------------------------------------------------------------------------
    "reports.kpi_page": staff(SUP, ADM),
    "api_reports.kpi": staff(SUP, ADM),
    # --- telephony and the IVR -----------------------------------------------------------------------------------
    "telephony.callback_page": staff(OP, SUP, ADM),
    "telephony.callback_attempt": staff(OP, SUP, ADM),
    "telephony.callback_reveal": staff(OP, SUP, ADM),
    "telephony.queue_page": staff(SUP, ADM),
    "telephony.call_log_page": staff(SUP, ADM),
    "telephony.pop_poll": staff(operator="own_pop", admin="own_pop"),
    "telephony.pop_card": staff(operator="own_pop", admin="own_pop"),
    "api_telephony.callback_attempt": staff(OP, SUP, ADM),
    "api_telephony.callback_list": staff(OP, SUP, ADM),
    "api_telephony.queue_board": staff(SUP, ADM),
    "api_telephony.telephony_call": staff(SUP, ADM),
    "api_telephony.telephony_call_list": staff(SUP, ADM),
    "api_ivr.ivr_appeal_status": staff(ivr="ivr"),
    "api_ivr.ivr_appeal_status_in_url": staff(ivr="ivr"),
    "api_ivr.ivr_outage": staff(ivr="ivr"),
    "api_ivr.ivr_outage_in_url": staff(ivr="ivr"),
}


def rule_for(endpoint: str | None) -> Rule | None:
    """The rule of ``endpoint`` (a Flask endpoint name), or None when the table has none."""
    return POLICY.get(endpoint) if endpoint else None


def allows(endpoint: str, role: str | None) -> bool:
    """True when ``role`` passes the role check of ``endpoint`` (False for an endpoint with no rule)."""
    rule = rule_for(endpoint)
    return rule is not None and rule.allows(role)


def roles_for(endpoint: str) -> tuple[str, ...]:
    """The staff roles the table allows on ``endpoint`` (empty for unknown or non-staff endpoints)."""
    rule = rule_for(endpoint)
    return rule.roles if rule is not None else ()


def scope_of(endpoint: str, role: str) -> str | None:
    """The scope ``role`` has on ``endpoint`` (a key of :data:`SCOPES`), or None when not allowed."""
    rule = rule_for(endpoint)
    return rule.scopes.get(role) if rule is not None else None
