"""Forms of the knowledge-base pages."""
from __future__ import annotations

from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from crm.appeals.catalog import TOPICS
from crm.kb.services import KIND_NAMES


class ArticleForm(FlaskForm):
    """Create or edit an article, a script or a building hint. The checks are the service's
    (:func:`crm.kb.services._clean`): its error comes back under the field it names."""

    kind = SelectField(_l("Вид"), choices=[], validators=[Optional()])
    topic = SelectField(_l("Тематика"), choices=[], validators=[Optional()])
    building = StringField(_l("Дом (для подсказки по дому)"), validators=[Optional()])
    building_id = HiddenField()
    title = StringField(_l("Заголовок"), validators=[Optional()])
    body = TextAreaField(_l("Текст"), validators=[Optional()])
    expected_version = IntegerField(validators=[Optional()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = [(code, _(label)) for code, label in KIND_NAMES.items()]
        self.topic.choices = [("", _("— все тематики —"))] + [(code, _(label)) for code, label in TOPICS.items()]


class ActionForm(FlaskForm):
    """A button that posts (archive, restore): the CSRF token only."""
