"""Demo data for ``crm demo-data`` / ``make run``: one user per role, citizens, appeals, one real call."""
from __future__ import annotations

import secrets
from pathlib import Path

from flask import current_app

from crm.db import db
from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.kb import services as kb
from crm.qa import services as qa
from crm.users import services as users

DEMO_USERS = [("operator", "operator", "Анна Смирнова"), ("supervisor", "supervisor", "Ольга Кузнецова"),
              ("dpo", "dpo", "Игорь Лебедев"), ("admin", "admin", "Администратор")]
#: the demo knowledge base: (kind, topic, title, body)
DEMO_KB = [
    ("script", None, "Общий сценарий звонка",
     "Начало: «Горячая линия ЖКХ», оператор (имя), здравствуйте!\n"
     "Выслушайте заявителя, не перебивая; уточните адрес и телефон для связи.\n"
     "Завершение: Назовите «номер обращения» и срок ответа.\n"
     "Прощание: «Всего доброго»!"),
    ("script", "hot_water", "Нет горячей воды",
     "Спросите, есть ли горячая вода у соседей и на других этажах.\n"
     "Проверьте, нет ли отключения по этому дому (плановые работы, авария).\n"
     "Если отключение плановое — назовите срок, когда воду дадут."),
    ("article", "hot_water", "Сколько может не быть горячей воды",
     "По правилам предоставления коммунальных услуг (ПП РФ № 354, приложение 1, п. 4) перерыв в подаче "
     "горячей воды допускается не более 8 часов в месяц в сумме и не более 4 часов подряд, при аварии на "
     "тупиковой магистрали — 24 часа подряд. На время плановых ремонтных работ горячую воду отключают "
     "по графику (обычно до 14 дней летом). За каждый час сверх допустимого плата снижается."),
    ("article", "billing", "Перерасчёт за время без коммунальной услуги",
     "Если услуга не предоставлялась или была ненадлежащего качества сверх допустимых перерывов, "
     "плата уменьшается (ПП РФ № 354, раздел IX). Заявитель может подать заявление о перерасчёте; "
     "зарегистрируйте обращение с тематикой «Начисления и перерасчёт»."),
]
DEMO_CALL = Path(__file__).resolve().parent.parent / "tests" / "data" / "audio" / "speech-ru" / "calls" / "dev_call_01_hot_water.stereo8k.wav"


def load_demo(with_call: bool = True) -> list[str]:
    """Create what is missing; returns lines to print (passwords of users created now, saved to
    ``instance/demo-logins.txt`` so a second ``make run`` can print them again)."""

    consent.ensure_purposes()
    qa.ensure_default_scorecard()
    out = []
    logins_file = Path(current_app.instance_path) / "demo-logins.txt"
    # "user password [totp-secret]" per line
    known = {parts[0]: parts[1:] for parts in (line.split(" ") for line in logins_file.read_text().splitlines())
             if len(parts) >= 2} if logins_file.exists() else {}
    for username, role, name in DEMO_USERS:
        if users.get_by_username(username) is None:
            password = secrets.token_urlsafe(9)
            user = users.create_user(username, role, password, full_name=name)
            # the second factor (issue 17), pre-enrolled for the demo: the secret is printed below
            known[username] = [password, users.enrol_demo_second_factor(user)]
    logins_file.write_text("".join(f"{u} {' '.join(v)}\n" for u, v in known.items()))
    logins_file.chmod(0o600)
    for username, role, _ in DEMO_USERS:
        password, *secret = known.get(username, ["(set earlier)"])
        out.append(f"  {role:<11} login: {username:<11} password: {password:<13} "
                   f"TOTP secret: {secret[0] if secret else '(set up at first sign-in)'}")
    out.append("  second factor: add the TOTP secret to an authenticator app, or print the current code with")
    out.append("    .venv/bin/python -c 'import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).now())' SECRET")
    op = users.get_by_username("operator")
    supervisor = users.get_by_username("supervisor")
    if supervisor is not None and supervisor.role in kb.EDIT_ROLES and not kb.list_articles(limit=1):
        for kind, topic, title, body in DEMO_KB:
            kb.create(supervisor, kind=kind, topic=topic, title=title, body=body)
        out.append(f"  demo knowledge base: {len(DEMO_KB)} articles and call scripts")
    if not appeals.recent(limit=1):
        people = [("Петров Иван Сергеевич", "8 912 345-67-89", "ул. Садовая, д. 5", "17", "hot_water", "routine",
                   "С утра нет горячей воды во всём подъезде."),
                  ("Соколова Мария Андреевна", "+7 (903) 111-22-33", "ул. Лесная, д. 12", "4", "roof_leak", "emergency",
                   "Протекает крыша над квартирой на последнем этаже, вода на потолке."),
                  ("Иванов Пётр Алексеевич", "89161234567", "пр. Мира, д. 3", "56", "billing", "consultation",
                   "Вопрос о перерасчёте за отопление за прошлый месяц.")]
        for name, phone, address, apt, topic, category, text in people:
            c = citizens.register(citizens.CitizenData(name, phone, None, address, apt))
            a = appeals.create(c, category=category, topic=topic, description=text, channel="phone", operator_id=op.id)
            consent.record(c, "call_recording_qa", channel="call", operator_id=op.id)
            if with_call and topic == "hot_water" and DEMO_CALL.exists():
                with open(DEMO_CALL, "rb") as fh:
                    calls.store_recording(fh, "Звонок Петров.wav", appeal=a, operator_id=op.id)
                out.append("  demo call queued for transcription (a real Russian recording)")
        out.append(f"  demo data: {len(people)} citizens and appeals")
    return out
