"""QA's personal data, declared to :mod:`crm.security.registry` at start-up: an evaluation's
comment, notes, dispute reason and resolution, under the key of the call's owner; and the automatic
checks' sentences about a transcript (``qa_check_results.detail``, which can name what was said),
emptied by erasure while the outcome and measured value stay as statistics."""
from __future__ import annotations

from crm.qa.models import CheckResult, Evaluation
from crm.security import registry


def register() -> None:
    """Declare the evaluations' table."""
    registry.register_table(Evaluation, lambda cid, owners: Evaluation.owner_id.in_(owners),
                            encrypted=("comment_enc", "notes_enc", "dispute_reason_enc", "resolution_enc"),
                            category="qa_comments")
    # owners: the citizen and the ids of the citizen's calls (crm.calls.personal_data's key owners)
    registry.register_table(CheckResult, lambda cid, owners: CheckResult.call_id.in_(owners), encrypted=(),
                            cleared=("detail",), category="qa_check_details")
