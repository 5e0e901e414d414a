"""Imports every model module so the metadata (and Alembic) sees all tables."""
from crm.security.models import AccessLogEntry, AuditHead, DataKey  # noqa: F401
from crm.security.models import BlindIndexState, DestructionRecord, ErasedOwner, KekRecord, KeyRotation  # noqa: F401
from crm.users.models import ApiToken, User  # noqa: F401
from crm.citizens.models import Citizen  # noqa: F401
from crm.clocks.models import CalendarOverride  # noqa: F401
from crm.buildings.models import Building  # noqa: F401
from crm.executors.models import Executor  # noqa: F401
from crm.appeals.models import Appeal, AppealClockWarning, AppealCounter, AppealEvent  # noqa: F401
from crm.calls.models import Call, Segment  # noqa: F401
from crm.kb.models import Article, ArticleVersion  # noqa: F401
from crm.qa.models import CalibrationScore, CalibrationSession, CheckResult, Evaluation  # noqa: F401
from crm.qa.models import EvaluationRevision, QueueItem, SamplingRule, Scorecard  # noqa: F401
from crm.consent.models import ConsentEvent, DataSubjectRequest, DestructionAct, Purpose  # noqa: F401
from crm.consent.models import RetentionRun, SelfServiceGrant, SmsMessage  # noqa: F401
from crm.notifications.models import NotificationTemplate  # noqa: F401
from crm.dispatch.models import Breach, ExtensionRequest, Notification  # noqa: F401
from crm.dpo.models import AccessAlert  # noqa: F401
from crm.telephony.models import AgentState, CallbackAttempt, TelephonyCall, TelephonyEvent  # noqa: F401
from crm.incidents.models import Incident, IncidentAppeal, IncidentBuilding, IncidentCall, IncidentProposal  # noqa: F401
from crm.csat.models import CsatSurvey  # noqa: F401
