"""QA's personal data, declared to :mod:`crm.security.registry` at start-up: an evaluation's
comment, notes, dispute reason and resolution, under the key of the call's owner."""
from __future__ import annotations

from crm.qa.models import Evaluation
from crm.security import registry


def register() -> None:
    """Declare the evaluations' table."""
    registry.register_table(Evaluation, lambda cid, owners: Evaluation.owner_id.in_(owners),
                            encrypted=("comment_enc", "notes_enc", "dispute_reason_enc", "resolution_enc"),
                            category="qa_comments")
