"""Transports: e-mail over SMTP (the standard library's ``smtplib`` and ``email``) and SMS through a
provider's HTTP API (``httpx``), each with the outbox as its development backend.

SMS: :class:`SmscGateway` speaks SMSC.ru's HTTP API (``/sys/send.php``: ``login``, ``psw``,
``phones``, ``mes``, ``charset=utf-8``, ``fmt=3`` for a JSON answer ``{"id", "cnt"}`` or ``{"error",
"error_code"}``). The provider posts delivery reports to our callback (:mod:`crm.notifications.api`)
with the message ``id``, the ``phone`` and a numeric ``status`` (:data:`SMSC_STATUS`). Another
provider is another :class:`crm.consent.sms.SmsGateway` subclass with ``deliver`` and a
``parse_callback``, named in :data:`SMS_PROVIDERS`.

Every failure is a :class:`crm.consent.sms.TransportError` whose message holds no credential, number
or text (it is stored on the message and shown on the appeal page): ``permanent`` when trying again
cannot help (refused number, wrong login, no funds), else the delivery job retries.
"""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import httpx

from crm.consent.sms import OutgoingSms, SmsGateway, TransportError


# --- e-mail -----------------------------------------------------------------------------------------

@dataclass
class OutgoingEmail:
    """One e-mail: ``to`` (address), ``subject``, ``body`` (plain text), ``message_id`` (our outbox id)."""

    to: str
    subject: str
    body: str
    message_id: str


class EmailTransport:
    """Interface: ``deliver`` sends one e-mail and returns its ``Message-ID`` header (or None);
    raises :class:`TransportError`. ``sends`` is False only for the outbox."""

    name = "email"
    sends = True

    def deliver(self, mail: OutgoingEmail) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError


class OutboxEmail(EmailTransport):
    """Development backend: nothing is sent (status ``logged``)."""

    name = "outbox"
    sends = False

    def deliver(self, mail: OutgoingEmail) -> str | None:
        return None


#: SMTP reply codes after which another try cannot help (RFC 5321 §4.2.1: 5yz are permanent).
def _permanent(code: int | None) -> bool:
    return code is not None and 500 <= int(code) < 600


class SmtpTransport(EmailTransport):
    """E-mail through an SMTP server: ``security`` ``starttls`` (submission, port 587), ``ssl``
    (SMTPS, port 465) or ``none`` (a relay on a trusted network); ``user``/``password`` to log in.
    One connection per message (notifications are few; a pooled connection would go stale)."""

    name = "smtp"

    def __init__(self, host: str, port: int, *, user: str | None = None, password: str | None = None,
                 sender: str | None = None, security: str = "starttls", timeout_s: float = 20.0):
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"CRM_SMTP_SECURITY must be starttls, ssl or none, not {security!r}")
        self.host, self.port, self.user, self.password = host, int(port), user, password
        self.sender = sender or user or f"noreply@{host}"
        self.security, self.timeout_s = security, float(timeout_s)

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context())
        conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        if self.security == "starttls":
            conn.starttls(context=ssl.create_default_context())
        return conn

    def deliver(self, mail: OutgoingEmail) -> str | None:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or None
        msg["Message-ID"] = make_msgid(idstring=mail.message_id.replace("-", ""), domain=domain)
        msg.set_content(mail.body)  # UTF-8, quoted-printable or base64 as the text needs
        try:
            with self._connect() as conn:
                if self.user:
                    conn.login(self.user, self.password or "")
                conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [c for c, _ in exc.recipients.values()]
            raise TransportError(f"SMTP: recipient refused ({', '.join(map(str, codes))})",
                                 permanent=all(_permanent(c) for c in codes)) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(f"SMTP: authentication failed ({exc.smtp_code})", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            raise TransportError(f"SMTP: server answered {exc.smtp_code}", permanent=_permanent(exc.smtp_code)) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"SMTP: {type(exc).__name__} talking to {self.host}:{self.port}") from None
        return msg["Message-ID"]


# --- SMS --------------------------------------------------------------------------------------------

#: SMSC.ru's message statuses (its "Статусы сообщений" table) → ours. -1 waiting, 0 handed to the
#: operator: sent; 1 delivered, 2 read, 4 link followed: delivered; 3 expired, 20 cannot be
#: delivered, 22 wrong number, 23 forbidden, 24 no funds, 25 unavailable number: failed.
SMSC_STATUS = {-1: "sent", 0: "sent", 1: "delivered", 2: "delivered", 4: "delivered",
               3: "failed", 20: "failed", 22: "failed", 23: "failed", 24: "failed", 25: "failed"}
#: SMSC.ru's error codes of a send request after which another try cannot help: 1 bad parameters,
#: 2 wrong login or password, 3 no funds, 6 message forbidden, 7 wrong number format, 8 cannot be
#: delivered. 4 (IP blocked for a while), 5 (date format) and 9 (too many requests) are retried.
SMSC_PERMANENT = {1, 2, 3, 6, 7, 8}


@dataclass
class DeliveryReport:
    """A provider's callback, parsed: its message id, our status (``sent``, ``delivered``,
    ``failed``) and the provider's own code (kept as the error of a failure)."""

    provider_message_id: str
    status: str
    code: str


class SmscGateway(SmsGateway):
    """SMSC.ru (``CRM_SMS_PROVIDER=smsc``): a POST to ``api_url`` (``CRM_SMS_API_URL``,
    ``https://smsc.ru/sys/send.php``) per message. Returns SMSC's message id."""

    name = "smsc"

    def __init__(self, api_url: str, login: str | None, password: str | None, *, sender: str | None = None,
                 timeout_s: float = 15.0, client: httpx.Client | None = None):
        if not login or not password:
            raise ValueError("CRM_SMS_PROVIDER=smsc needs CRM_SMS_LOGIN and CRM_SMS_PASSWORD")
        self.api_url, self.login, self.password, self.sender = api_url, login, password, sender
        self.timeout_s = float(timeout_s)
        self.client = client

    def deliver(self, sms: OutgoingSms) -> str | None:
        form = {"login": self.login, "psw": self.password, "phones": sms.to, "mes": sms.body, "charset": "utf-8",
                "fmt": "3"}
        if self.sender:
            form["sender"] = self.sender
        try:
            if self.client is not None:
                resp = self.client.post(self.api_url, data=form, timeout=self.timeout_s)
            else:
                resp = httpx.post(self.api_url, data=form, timeout=self.timeout_s)
        except httpx.HTTPError as exc:  # its message may quote the request: never stored
            raise TransportError(f"SMSC: {type(exc).__name__}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransportError(f"SMSC: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise TransportError(f"SMSC: HTTP {resp.status_code}", permanent=True)
        try:
            answer = resp.json()
        except ValueError:
            raise TransportError("SMSC: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise TransportError("SMSC: the answer is not a JSON object")
        if "error_code" in answer or "error" in answer:
            code = answer.get("error_code")
            try:
                code = int(code)
            except (TypeError, ValueError):
                code = None
            raise TransportError(f"SMSC: error {code}", permanent=code in SMSC_PERMANENT)
        if answer.get("id") is None:
            raise TransportError("SMSC: no message id in the answer")
        return str(answer["id"])

    @staticmethod
    def parse_callback(form: dict) -> DeliveryReport:
        """SMSC's delivery report (form fields ``id``, ``phone``, ``status``, ``err``). Raises
        ValueError when ``id`` or a known numeric ``status`` is missing."""
        message_id = str(form.get("id") or "").strip()
        try:
            code = int(str(form.get("status", "")).strip())
        except ValueError:
            raise ValueError("status is not a number") from None
        if not message_id or code not in SMSC_STATUS:
            raise ValueError("unknown message id or status")
        err = str(form.get("err") or "").strip()
        return DeliveryReport(message_id, SMSC_STATUS[code], f"SMSC status {code}" + (f", err {err[:10]}" if err else ""))


#: ``CRM_SMS_PROVIDER`` → gateway class.
SMS_PROVIDERS = {"smsc": SmscGateway}


def sms_gateway_from_config(config) -> SmsGateway | None:
    """The gateway ``CRM_SMS_PROVIDER`` names, configured from ``CRM_SMS_*``; None when unset (the
    outbox). Raises ValueError for an unknown provider or missing credentials."""
    provider = (config["CRM_SMS_PROVIDER"] or "").strip().lower()
    if not provider:
        return None
    if provider not in SMS_PROVIDERS:
        raise ValueError(f"CRM_SMS_PROVIDER={provider!r} is unknown; one of {', '.join(SMS_PROVIDERS)}")
    return SMS_PROVIDERS[provider](config["CRM_SMS_API_URL"], config["CRM_SMS_LOGIN"],
                                   config["CRM_SMS_PASSWORD"], sender=config["CRM_SMS_SENDER"],
                                   timeout_s=config["CRM_SMS_TIMEOUT_S"])


def email_transport_from_config(config) -> EmailTransport:
    """:class:`SmtpTransport` from ``CRM_SMTP_*`` when ``CRM_SMTP_HOST`` is set, else :class:`OutboxEmail`."""
    host = (config["CRM_SMTP_HOST"] or "").strip()
    if not host:
        return OutboxEmail()
    return SmtpTransport(host, int(config["CRM_SMTP_PORT"]), user=config["CRM_SMTP_USER"],
                         password=config["CRM_SMTP_PASSWORD"], sender=config["CRM_SMTP_FROM"],
                         security=str(config["CRM_SMTP_SECURITY"]).lower(),
                         timeout_s=config["CRM_SMTP_TIMEOUT_S"])
