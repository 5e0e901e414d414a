"""factory_boy factories for the rows tests need: users, citizens, consents, appeals, calls with a
transcript, QA evaluations.

Every factory creates its row THROUGH the product's service (``citizens.register``,
``consent.record``, ``appeals.create``, ``calls.store_recording`` + ``calls.save_transcript``,
``qa.evaluate``, ``users.create_user``), never by building a model row: personal data is encrypted
under the owner's data key, blind indexes are written and the access log records the creation, as
in the product. They need an app context (the ``ctx`` fixture) and commit like the services do.

``XFactory(...)`` creates; ``CitizenFactory.build(...)`` gives the :class:`CitizenData` a
registration would use, without a row. Defaults are deterministic: a citizen is «Петров Иван
Сергеевич» with a fresh mobile number from a sequence (``+7 915 7xx-xx-xx``, a range no test spells
out), so two default citizens never share a phone.
"""
from __future__ import annotations

import io
import secrets
from datetime import datetime
from types import SimpleNamespace

import factory

from crm import hooks
from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.db import db
from crm.qa import services as qa
from crm.users import services as users
from tests.wavs import tone_wav

PASSWORD = "correct-horse-1"  # the password the ``login`` fixture and SharedContextClient use
SADOVAYA = "ул. Садовая, д. 5"

# A call transcript in the shape the transcriber stores: an operator who greets, asks for the
# address and phone, says what happens next and closes (every automatic check passes).
GOOD_SEGMENTS = [
    {"start": 0.3, "end": 4.0, "speaker": "operator", "channel": 0, "text": "Горячая линия ЖКХ, оператор Анна, здравствуйте!"},
    {"start": 4.5, "end": 9.0, "speaker": "citizen", "channel": 1, "text": "Здравствуйте, у нас нет горячей воды."},
    {"start": 9.5, "end": 14.0, "speaker": "operator", "channel": 0, "text": "Назовите адрес и телефон для связи."},
    {"start": 14.5, "end": 20.0, "speaker": "citizen", "channel": 1, "text": "Садовая, пять, восемь девятьсот двенадцать."},
    {"start": 20.5, "end": 26.0, "speaker": "operator", "channel": 0, "text": "Записала, заявка передана в аварийную службу."},
    {"start": 26.5, "end": 29.0, "speaker": "operator", "channel": 0, "text": "Спасибо за обращение, всего доброго."},
]
# A rude, short call: no greeting by name, no address asked, a forbidden phrase.
RUDE_SEGMENTS = [
    {"start": 0.5, "end": 3.0, "speaker": "operator", "channel": 0, "text": "Алло, что у вас?"},
    {"start": 3.0, "end": 9.0, "speaker": "citizen", "channel": 1, "text": "Добрый день, нет света в подъезде."},
    {"start": 9.0, "end": 12.0, "speaker": "operator", "channel": 0, "text": "Не знаю, это не ко мне."},
]


def factory_phone(n: int) -> str:
    """The ``n``-th factory phone, ``+7 915 7xx-xx-xx`` (valid Russian mobile numbers, n < 1 000 000)."""
    return f"+7 915 {700 + n // 10000:03d}-{n // 100 % 100:02d}-{n % 100:02d}"


class UserFactory(factory.Factory):
    """A staff account through :func:`crm.users.services.create_user` (password hashed, creation
    logged). ``role`` operator by default; the password is :data:`PASSWORD`."""

    class Meta:
        model = SimpleNamespace  # build(): the arguments only; create(): the saved User

    role = "operator"
    username = factory.LazyAttribute(lambda o: f"{o.role}_{secrets.token_hex(3)}")
    password = PASSWORD
    full_name = factory.LazyAttribute(lambda o: f"Тест {o.role}")

    @classmethod
    def _create(cls, model_class, *, username, role, password, full_name):
        return users.create_user(username, role, password, full_name=full_name)


class CitizenFactory(factory.Factory):
    """A citizen through :func:`crm.citizens.services.register`: fields encrypted, blind indexes
    written, ``citizen.create`` logged. ``build()`` returns the :class:`CitizenData` only.

    Parameters besides the fields: ``qa_consent`` True records a consent to ``call_recording_qa``
    (channel call), False a refusal, None (default) asks nothing; ``commit``, ``purpose`` and
    ``submission_key`` go to ``register``; the trait ``sadovaya=True`` gives the address
    :data:`SADOVAYA`, apartment 17."""

    class Meta:
        model = citizens.CitizenData

    class Params:
        # the address many tests use: ул. Садовая, д. 5, кв. 17
        sadovaya = factory.Trait(address=SADOVAYA, apartment="17")

    full_name = "Петров Иван Сергеевич"
    phone = factory.Sequence(factory_phone)
    email = None
    address = None
    apartment = None
    # not fields of CitizenData: what register() and the consent get
    qa_consent = None
    commit = True
    purpose = "appeal_processing"
    submission_key = None

    @classmethod
    def _build(cls, model_class, *, qa_consent, commit, purpose, submission_key, **fields):
        return model_class(**fields)

    @classmethod
    def _create(cls, model_class, *, qa_consent, commit, purpose, submission_key, **fields):
        citizen = citizens.register(model_class(**fields), purpose=purpose, commit=commit,
                                    submission_key=submission_key)
        if qa_consent is not None:
            consent.record(citizen, "call_recording_qa", channel="call", given=qa_consent)
        return citizen


class ConsentFactory(factory.Factory):
    """A consent event through :func:`crm.consent.services.record` (text version, controller,
    ``consent.grant``/``consent.refuse`` logged): by default the citizen's consent to
    ``call_recording_qa`` given on a call. Any other keyword goes to ``record``."""

    class Meta:
        model = SimpleNamespace

    citizen = factory.SubFactory(CitizenFactory)
    purpose = "call_recording_qa"
    channel = "call"
    given = True

    @classmethod
    def _create(cls, model_class, *, citizen, purpose, **kwargs):
        return consent.record(citizen, purpose, **kwargs)


class AppealFactory(factory.Factory):
    """An appeal through :func:`crm.appeals.services.create` (SLA clocks, history, ``appeal.create``
    logged): a routine heating appeal by phone of a new citizen. ``operator`` (a User) or
    ``operator_id``; any other keyword (``submission_key``, ``commit``) goes to ``create``."""

    class Meta:
        model = SimpleNamespace

    class Params:
        operator = None

    citizen = factory.SubFactory(CitizenFactory)
    operator_id = factory.LazyAttribute(lambda o: o.operator.id if o.operator is not None else None)
    category = "routine"
    topic = "heating"
    description = "Холодные батареи"
    channel = "phone"

    @classmethod
    def _create(cls, model_class, *, citizen, **kwargs):
        return appeals.create(citizen, **kwargs)


class CallFactory(factory.Factory):
    """A call as the product makes one: the recording stored (encrypted) by
    :func:`crm.calls.services.store_recording`, then the transcript saved by
    :func:`crm.calls.services.save_transcript` as the transcription job ends, and the job's
    ``call.transcribed`` hook fired (QA stores its automatic checks).

    Parameters: ``operator`` (a User or None); ``citizen``: without ``appeal``, a routine appeal of
    this citizen by ``operator`` is made for the call; ``appeal``; ``segments`` (transcript turns,
    :data:`GOOD_SEGMENTS`; an empty list gives a ``no_speech`` call); ``status`` of the transcript
    (``done``); ``transcribed`` False leaves the call as uploaded (queued, no transcript);
    ``checks`` False fires no hook (no automatic checks stored); ``created_at`` back-dates the call (UTC);
    ``audio`` the WAV bytes (a tone by default) uploaded as ``original_name``; ``duration_s`` the
    transcript's duration (default: the end of the last segment)."""

    class Meta:
        model = SimpleNamespace

    operator = None
    citizen = None
    appeal = factory.LazyAttribute(lambda o: AppealFactory(citizen=o.citizen, operator=o.operator)
                                   if o.citizen is not None else None)
    segments = factory.LazyFunction(lambda: [dict(s) for s in GOOD_SEGMENTS])
    status = "done"
    transcribed = True
    checks = True
    created_at: datetime | None = None
    audio: bytes | None = None
    original_name = "call.wav"
    duration_s: float | None = None

    @classmethod
    def _create(cls, model_class, *, operator, citizen, appeal, segments, status, transcribed, checks,
                created_at, audio, original_name, duration_s):
        call = calls.store_recording(io.BytesIO(audio or tone_wav()), original_name, appeal=appeal,
                                     operator_id=operator.id if operator is not None else None)
        if created_at is not None:
            call.created_at = created_at
            db.session.commit()
        if not transcribed:
            return call
        duration = duration_s if duration_s is not None else max((s["end"] for s in segments), default=1.0)
        stored = calls.save_transcript(call, SimpleNamespace(status=status if segments else "no_speech",
                                                             language="ru", rtf=0.1, duration_s=duration,
                                                             segments=[dict(s) for s in segments]))
        if checks:  # as the transcription job ends: QA stores its automatic checks from the segments as stored
            hooks.fire("call.transcribed", call_id=call.id, segments=stored)
        return call


def yes_to_all(card) -> dict:
    """Answers "yes" to every criterion of a scorecard."""
    return {c["code"]: "yes" for c in qa.criteria_of(card)}


class EvaluationFactory(factory.Factory):
    """A QA evaluation through :func:`crm.qa.services.evaluate` (score computed, queue item done,
    ``evaluation.create`` logged): a supervisor scores a transcribed call of a new operator (with
    a citizen who consents to ``call_recording_qa``: QA refuses other calls),
    "yes" to every criterion of the active scorecard unless ``answers`` are given. Other keywords
    (``comment``, ``notes``, ``scorecard``) go to ``evaluate``."""

    class Meta:
        model = SimpleNamespace

    class Params:
        operator = None

    # QA scores only calls whose citizen consents to quality control (the QA-consent gate)
    call = factory.LazyAttribute(lambda o: CallFactory(operator=o.operator or UserFactory(),
                                                       citizen=CitizenFactory(qa_consent=True)))
    evaluator = factory.SubFactory(UserFactory, role="supervisor")
    answers = None

    @classmethod
    def _create(cls, model_class, *, call, evaluator, answers, **kwargs):
        if answers is None:
            answers = yes_to_all(kwargs.get("scorecard") or qa.ensure_default_scorecard())
        return qa.evaluate(call, evaluator=evaluator, answers=answers, **kwargs)
