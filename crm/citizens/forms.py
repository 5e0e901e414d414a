"""The rectification form (152-ФЗ ст. 21 ч. 2) shown to the operator on the appeal page and to the DPO
on the citizen's consent history: a field left blank keeps its value."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import Length, Optional


class RectifyForm(FlaskForm):
    full_name = StringField(_l("ФИО"), validators=[Optional(), Length(max=200)])
    phone = StringField(_l("Телефон"), validators=[Optional(), Length(max=40)])
    email = StringField(_l("Эл. почта"), validators=[Optional(), Length(max=200)])
    address = StringField(_l("Адрес (улица, дом)"), validators=[Optional(), Length(max=300)])
    apartment = StringField(_l("Квартира"), validators=[Optional(), Length(max=20)])
    #: shown once the new phone was refused as another citizen's (crm.citizens.services.PhoneInUse)
    confirm_duplicate = BooleanField(_l("Номер общий с другим заявителем (например, домашний): всё равно исправить"))
    #: set by the view when the phone was refused as another citizen's: the page shows confirm_duplicate
    phone_in_use = False

    def changes(self) -> dict[str, str]:
        """``{field: new value}`` of the fields filled in (blank ones are left as they are)."""
        return {name: getattr(self, name).data.strip() for name in ("full_name", "phone", "email", "address",
                                                                     "apartment")
                if (getattr(self, name).data or "").strip()}
