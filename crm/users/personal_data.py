"""The users package's encrypted column, declared to :mod:`crm.security.registry` at start-up.

A staff member's TOTP secret (``users.totp_secret_enc``) is encrypted under a data key of the
account's own (``users.mfa_key_owner``), not a citizen's: no citizen's erasure touches it (its rows
condition is false), and the account is declared a key owner so ``crm keys gc`` keeps its key."""
from __future__ import annotations

import sqlalchemy as sa

from crm.security import registry
from crm.users.models import User


def register() -> None:
    """Declare ``users`` (the TOTP secret) and its data-key owner column."""
    registry.register_table(User, lambda cid, owners: sa.false(), encrypted=("totp_secret_enc",),
                            category="staff_second_factor")
    registry.register_key_owner(User.mfa_key_owner)
