"""Quality assurance services, one module per responsibility; this package re-exports their public
names, so callers keep writing ``from crm.qa import services as qa; qa.evaluate(...)``.

- :mod:`~crm.qa.services.common`: the error type, the operator's answer states, the QA-consent gate
  (every use of a call for quality control passes it);
- :mod:`~crm.qa.services.scorecards`: versioned scorecards (sections, weighted criteria);
- :mod:`~crm.qa.services.scoring`: answers, pinned notes and the score arithmetic;
- :mod:`~crm.qa.services.evaluations`: evaluations, the operator's acknowledgement or dispute, resolution;
- :mod:`~crm.qa.services.checkresults`: the automatic checks' results stored per call;
- :mod:`~crm.qa.services.sampling`: sampling rules and the per-supervisor review queue;
- :mod:`~crm.qa.services.calibration`: calibration sessions and their spread report;
- :mod:`~crm.qa.services.dashboards`: the dashboards' figures.

Services own the transaction: they check who may act, change the data, write the access-log entry
and commit. Errors are :class:`EvaluationError` (a Russian message, a ``code`` for the API). Other
features are reached through their services (calls, appeals, users, consent), never their models.
"""
from __future__ import annotations

from crm.qa.services.common import (OPERATOR_STATUS_RU, STATUS_OF_CODE, TRANSCRIBED, EvaluationError, qa_allowed,
                                    qa_permitted, require_qa_consent, permitted_calls)
from crm.qa.services.scorecards import (DEFAULT_FAMILY, DEFAULT_SECTIONS, DEFAULT_CRITERIA, ANSWERS,
                                        ANSWERS_RU, KINDS, MAX_SCALE, criteria_of, sections_of,
                                        ensure_default_scorecard, active_scorecard, get_scorecard,
                                        versions, validate_scorecard, save_scorecard)
from crm.qa.services.scoring import (MAX_NOTES, parse_answer, answer_value, answer_failed,
                                     compute_score, parse_time)
from crm.qa.services.evaluations import (evaluate, dispute_days, get, get_for, view, for_call, forget_texts,
                                         texts_shown, EvaluationLine, history,
                                         can_respond, acknowledge, dispute, resolve, recent,
                                         disputes, by_operator, as_dict)
from crm.qa.services.checkresults import (store_checks, after_transcript, forget_check_details, check_results,
                                          checks_for_call, RECHECK_OUTCOMES, recheck, recheck_calls)
from crm.qa.services.sampling import (RULE_KINDS, PERIODS, DEFAULT_RULES, ensure_rules, update_rule,
                                      period_of, run_sampling, queue_for, next_in_queue, next_after,
                                      queue_item_for_call, unqueued_count)
from crm.qa.services.calibration import (create_session, get_session, sessions, session_scores,
                                         own_score, submit_calibration, close_session,
                                         calibration_report)
from crm.qa.services.dashboards import dashboard, kpi_figures
from crm.qa.services.calllist import PAGE_SIZE, call_page

__all__ = [
    "OPERATOR_STATUS_RU",
    "STATUS_OF_CODE",
    "TRANSCRIBED",
    "EvaluationError",
    "qa_allowed",
    "qa_permitted",
    "require_qa_consent",
    "permitted_calls",
    "DEFAULT_FAMILY",
    "DEFAULT_SECTIONS",
    "DEFAULT_CRITERIA",
    "ANSWERS",
    "ANSWERS_RU",
    "KINDS",
    "MAX_SCALE",
    "criteria_of",
    "sections_of",
    "ensure_default_scorecard",
    "active_scorecard",
    "get_scorecard",
    "versions",
    "validate_scorecard",
    "save_scorecard",
    "MAX_NOTES",
    "parse_answer",
    "answer_value",
    "answer_failed",
    "compute_score",
    "parse_time",
    "evaluate",
    "dispute_days",
    "get",
    "get_for",
    "view",
    "for_call",
    "history",
    "can_respond",
    "acknowledge",
    "dispute",
    "resolve",
    "recent",
    "disputes",
    "by_operator",
    "as_dict",
    "store_checks",
    "after_transcript",
    "check_results",
    "checks_for_call",
    "RECHECK_OUTCOMES",
    "recheck",
    "recheck_calls",
    "kpi_figures",
    "RULE_KINDS",
    "PERIODS",
    "DEFAULT_RULES",
    "ensure_rules",
    "update_rule",
    "period_of",
    "run_sampling",
    "call_page",
    "PAGE_SIZE",
    "unqueued_count",
    "queue_for",
    "next_in_queue",
    "next_after",
    "queue_item_for_call",
    "create_session",
    "get_session",
    "sessions",
    "session_scores",
    "own_score",
    "submit_calibration",
    "close_session",
    "calibration_report",
    "dashboard",
]
