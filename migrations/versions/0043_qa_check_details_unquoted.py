"""automatic QA check details stored before 49c845b: transcript words replaced by the configured phrases

Until commit 49c845b a phrase check's detail (``qa_check_results.detail``) quoted the words of the
transcript that matched: «оператор ковальчук» for the phrase «оператор» and the name after it, the
recogniser's «операто рано», and in a mono call words of the citizen. Since then it names the phrase
as the configuration writes it («оператор …» for a phrase followed by a name). The details are
plain text (not encrypted: no key is needed), kept until the call's data are erased.

This data migration rewrites the details stored in the old form. In the part of a detail the check
wrote (before «; по сценарию», whose quotes are script titles written by supervisors), every quote
of the phrase checks' sentences (greeting, closing, address, callback_number, forbidden_phrases):

* that is one of the check's configured phrases (or such a phrase followed by `` …``) is left as it
  is: the new form, or old words identical to a configured phrase (nothing of the transcript beyond
  the configuration);
* else is replaced by the configured phrase its words match, through the checks' own matching
  (``crm.qa.checks.phrase_label``: lemmas, near misses where the check allows them), which is what
  the check writes today;
* else (the configuration no longer has a phrase for those words) by «…».

"Configured" means this instance's configuration now: ``crm.qa.checks.DEFAULTS`` with
``CRM_QA_CHECKS``, as the checks read it. A quote of a phrase removed from the configuration since
is renamed or becomes «…»: more hidden, never more shown. Rows with nothing to change are not
written, so a second run (or a run after an interrupted one) changes nothing. Plain SQL on the
migration's connection, in batches by id: the same on PostgreSQL and SQLite. Downgrade: nothing to
undo (the words are not kept anywhere to put back).

Revision ID: 0043_qa_check_details_unquoted
Revises: 0042_staff_second_factor
"""
import logging
import re

import sqlalchemy as sa
from alembic import op

revision = "0043_qa_check_details_unquoted"
down_revision = "0042_staff_second_factor"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 500

_results = sa.table("qa_check_results", sa.column("id", sa.Integer), sa.column("code", sa.String),
                    sa.column("detail", sa.Text))
PHRASE_CHECKS = ("greeting", "closing", "address", "callback_number", "forbidden_phrases")
#: where the check's own sentence ends and the names of missed script lines begin (crm.qa.checks._with_script)
SCRIPT_PART = "; по сценарию "
QUOTE = re.compile(r"«([^«»]*)»")
HIDDEN = "…"


def _lists(code: str, cfg: dict, before: str) -> list[tuple[tuple[str, ...], bool, float]]:
    """``[(phrases, need_following_word, fuzzy)]`` a quote of check ``code`` may name, in the order
    tried; ``before``: the detail's text in front of the quote (greeting: «приветствие «…» names a
    greeting, the quotes of «представление …» the line or the operator)."""
    fuzzy = float(cfg.get("fuzzy") or 0) if code in ("greeting", "closing") else 0.0
    if code != "greeting":
        return [(tuple(cfg["phrases"]), False, fuzzy)]
    if before.endswith("приветствие "):
        return [(tuple(cfg["greetings"]), False, fuzzy)]
    return [(tuple(cfg["line_names"]), False, fuzzy), (tuple(cfg["operator_names"]), True, fuzzy)]


def _labels(code: str, cfg: dict) -> set[str]:
    """Every quote a detail of ``code`` writes since 49c845b: the configured phrases (and «phrase …»
    for the operator's name)."""
    if code != "greeting":
        return set(cfg["phrases"])
    return set(cfg["greetings"]) | set(cfg["line_names"]) | {f"{p} …" for p in cfg["operator_names"]}


def unquoted(code: str, detail: str, cfg: dict) -> str:
    """``detail`` of a stored ``code`` result with every quote that is not a configured phrase of the
    check (``cfg``: that check's configuration, ``crm.qa.checks.config(...)[code]``) renamed as
    described in the module docstring; the detail itself when there is nothing to change."""
    from crm.qa import checks

    if code not in PHRASE_CHECKS or not detail:
        return detail
    cut = detail.find(SCRIPT_PART)
    head, tail = (detail, "") if cut < 0 else (detail[:cut], detail[cut:])
    labels = _labels(code, cfg)

    def rename(m: re.Match) -> str:
        words = m.group(1)
        if words in labels:
            return m.group(0)
        for phrases, follow, fuzzy in _lists(code, cfg, head[:m.start()]):
            label = checks.phrase_label(words, phrases, need_following_word=follow, fuzzy=fuzzy)
            if label:
                return f"«{label}»"
        return f"«{HIDDEN}»"

    return QUOTE.sub(rename, head) + tail


def rewrite(conn, overrides: dict | None, *, batch: int = BATCH) -> dict:
    """Rewrite the old-form details of ``qa_check_results`` through ``conn`` under the check
    configuration ``overrides`` (``CRM_QA_CHECKS``). Returns ``{"read", "rewritten"}``."""
    from crm.qa import checks

    cfg = checks.config(overrides)
    counts = {"read": 0, "rewritten": 0}
    last = 0
    while True:
        rows = conn.execute(sa.select(_results.c.id, _results.c.code, _results.c.detail)
                            .where(_results.c.code.in_(PHRASE_CHECKS), _results.c.detail.like("%«%"),
                                   _results.c.id > last)
                            .order_by(_results.c.id).limit(batch)).all()
        if not rows:
            break
        last = rows[-1].id
        for row in rows:
            counts["read"] += 1
            new = unquoted(row.code, row.detail, cfg[row.code])
            if new != row.detail:
                conn.execute(sa.update(_results).where(_results.c.id == row.id).values(detail=new))
                counts["rewritten"] += 1
    return counts


def upgrade():
    from flask import current_app

    counts = rewrite(op.get_bind(), current_app.config.get("CRM_QA_CHECKS"))
    log.info("qa_check_results: %d details with quotes read, %d rewritten without the transcript's words",
             counts["read"], counts["rewritten"])


def downgrade():
    pass
