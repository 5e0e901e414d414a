"""Forms of the call pages."""
from __future__ import annotations

import secrets

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField
from wtforms.validators import DataRequired, Length

from crm.calls import services


class RevealForm(FlaskForm):
    """A QA reader asks to see the citizen's identifiers in a transcript: the purpose, chosen (never
    filled in for them), is logged with the reveal (``transcript.reveal``). ``key``: a one-time key
    per page shown, so a double click logs one reveal (:func:`crm.calls.services.view`)."""

    purpose = SelectField(_l("Цель"), validators=[DataRequired(message=_l("Выберите, зачем нужны данные заявителя."))])
    key = HiddenField(validators=[Length(max=64)])

    @classmethod
    def for_call(cls, call, **kwargs) -> "RevealForm":
        """The form for ``call``: the purposes offered for it, an empty first choice, a fresh key."""
        form = cls(**kwargs)
        form.purpose.choices = [("", _l("— выберите цель —"))] + [
            (code, _l(services.REVEAL_PURPOSES[code])) for code in services.reveal_purposes(call)]
        if not form.key.data:
            form.key.data = secrets.token_urlsafe(16)
        return form
