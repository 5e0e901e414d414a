"""Citizens (data subjects): registration, lookup by blind index, reads that write the access log.

Every function that returns decrypted personal data records an access-log entry in the same
transaction and commits it; callers pass the purpose (``appeal_processing`` …) and, where there is
one, the appeal or call the access serves."""
from __future__ import annotations

from dataclasses import dataclass

from crm.citizens.models import Citizen
from crm.citizens.phones import InvalidPhone, format_phone, mask_phone, normalise_phone
from crm import hooks, text_ru
from crm.db import db
from crm.i18n import lazy_gettext as _l
from crm.security import audit, blind_index, registry
from crm.security.crypto import reserve_owner_id
from crm.security.permissions import require_role
from crm.security import crypto


class CitizenError(ValueError):
    """Invalid citizen data. ``field`` names the offending field; the message is Russian."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class PhoneInUse(CitizenError):
    """A rectification refused: the new phone already belongs to other citizens (``citizen_ids``;
    found through the phone's blind index and confirmed by decryption, so a truncated-HMAC collision
    is no match). Nothing was changed; the look-up is logged (``citizen.search``)."""

    def __init__(self, citizen_ids: list[str]):
        n = len(citizen_ids)
        super().__init__(_l("этот номер уже есть у другого заявителя: проверьте номер; если он у вас общий "
                            "(например, домашний), подтвердите исправление") if n == 1 else
                         _l("этот номер уже есть у других заявителей (%(n)s): проверьте номер; если он у вас "
                            "общий (например, домашний), подтвердите исправление", n=n), "phone")
        self.citizen_ids = citizen_ids


@dataclass
class CitizenData:
    full_name: str
    phone: str
    email: str | None = None
    address: str | None = None
    apartment: str | None = None


def surname_value(full_name: str) -> str:
    """The ``surname`` index's normalised value: the first word of :func:`~crm.security.blind_index.normalise_name`
    of ``full_name`` ("" for a blank name)."""
    parts = blind_index.normalise_name(full_name).split()
    return parts[0] if parts else ""


def _clean(data: CitizenData) -> CitizenData:
    name = " ".join((data.full_name or "").split())
    if len(name) < 2:
        raise CitizenError(_l("укажите ФИО заявителя"), "full_name")
    if len(name) > 200:
        raise CitizenError(_l("ФИО длиннее 200 символов"), "full_name")
    try:
        phone = normalise_phone(data.phone)
    except InvalidPhone as exc:
        raise CitizenError(exc.args[0], "phone") from None
    email = (data.email or "").strip() or None
    if email and ("@" not in email or len(email) > 200 or " " in email):
        raise CitizenError(_l("неверный адрес электронной почты"), "email")
    address = " ".join((data.address or "").split()) or None
    apartment = (data.apartment or "").strip() or None
    if address and len(address) > 300:
        raise CitizenError(_l("адрес длиннее 300 символов"), "address")
    if apartment and len(apartment) > 20:
        raise CitizenError(_l("номер квартиры длиннее 20 символов"), "apartment")
    return CitizenData(name, phone, email, address, apartment)


def building_value(address: str | None) -> str | None:
    """The ``building`` index's normalised value: :func:`~crm.security.blind_index.normalise_building`
    of ``address`` (None without an address)."""
    if not address:
        return None
    return blind_index.normalise_building(address)


def building_key(address: str | None) -> str | None:
    """Blind index of a normalised address (building) as lookups read it now (the read slot's key),
    for repeat-appeal matching without decryption."""
    value = building_value(address)
    return blind_index.lookup("building", value)[1] if value else None


def name_building_value(full_name: str, address: str | None) -> str | None:
    """``surname|building`` for the compound index: "ул. Садовая, д. 5" and "ул Садовая д 5" agree.
    None without an address."""
    if not address:
        return None
    return f"{surname_value(full_name)}|{' '.join(blind_index.normalise_building(address).split())}"


def index_values(full_name: str, phone: str, address: str | None) -> dict[str, str | None]:
    """``{index name: normalised value}`` for every blind index of a citizen with these (cleaned, or
    decrypted) values: what :func:`register`/:func:`update` index and what the key-rotation
    backfill (:data:`crm.security.rotation.ROTATABLE`) recomputes. ``phone`` is E.164 as stored."""
    return {"phone": phone or None, "surname": surname_value(full_name) or None,
            "name_building": name_building_value(full_name, address), "building": building_value(address)}


def phone_index(phone: str) -> str:
    """Blind index of a phone in any spelling, as lookups read it; raises :class:`InvalidPhone`."""
    return blind_index.lookup("phone", normalise_phone(phone))[1]


def _set_indexes(citizen: Citizen, clean: CitizenData) -> None:
    """Every slot of every blind index from the cleaned values (both slots of an index whose key
    rotates, :func:`crm.security.blind_index.write_values`)."""
    for name, value in index_values(clean.full_name, clean.phone, clean.address).items():
        for col, bidx in blind_index.write_values(name, value).items():
            setattr(citizen, col, bidx)


def register(data: CitizenData, *, purpose: str = "appeal_processing", commit: bool = True,
             submission_key: str | None = None) -> Citizen:
    """Create a citizen with encrypted fields and blind indexes. Raises :class:`CitizenError`.

    ``submission_key`` is stored in the unique ``citizens.submission_key`` (a second insert with the
    same key fails at flush with ``IntegrityError``; :func:`register_checked` handles that)."""
    clean = _clean(data)

    citizen = Citizen(id=reserve_owner_id())  # its data key is already in the key store
    citizen.submission_key = submission_key
    citizen.full_name = clean.full_name
    citizen.phone = clean.phone
    citizen.email = clean.email
    citizen.address = clean.address
    citizen.apartment = clean.apartment
    _set_indexes(citizen, clean)
    db.session.add(citizen)
    audit.record("citizen.create", citizen_id=citizen.id,
                 fields=[f for f in Citizen.PERSONAL_FIELDS if getattr(clean, f)], purpose=purpose)
    if commit:
        db.session.commit()
    return citizen


def update(citizen: Citizen, data: CitizenData, *, purpose: str = "appeal_processing") -> Citizen:
    """Replace a citizen's personal fields (and blind indexes). Raises :class:`CitizenError`."""
    clean = _clean(data)
    changed = [f for f in Citizen.PERSONAL_FIELDS if getattr(citizen, f) != getattr(clean, f)]
    for f in changed:
        setattr(citizen, f, getattr(clean, f))
    _set_indexes(citizen, clean)
    audit.record("citizen.update", citizen_id=citizen.id, fields=changed, purpose=purpose)
    db.session.commit()
    return citizen


#: The fields a rectification may correct, in the order the log names them.
RECTIFIABLE = ("full_name", "phone", "email", "address", "apartment")
#: Who may rectify: the operator who talks to the citizen, the DPO answering a request (152-ФЗ ст. 21 ч. 2).
RECTIFIERS = ("operator", "dpo")


def rectify(citizen: Citizen, changes: dict[str, str | None], *, user, purpose: str = "appeal_processing",
            appeal_id: str | None = None, confirm_duplicate: bool = False) -> list[str]:
    """Correct a citizen's personal data at their request (152-ФЗ ст. 14 ч. 1, ст. 21 ч. 2).

    ``changes``: ``{field: new value}`` for any of :data:`RECTIFIABLE` (a field not given keeps its
    value; ``""`` or None clears e-mail, address or apartment; name and phone cannot be cleared).
    ``user``: an operator or the DPO (:data:`RECTIFIERS`). The new values are checked as at
    registration, encrypted, and every blind index is recomputed from them, so lookups find the
    citizen by the new phone or name and no longer by the old. Logs ``citizen.rectify`` naming the
    fields changed — never the old or the new values — with ``purpose`` and ``appeal_id``; commits.
    Returns the names of the fields changed (``[]``: nothing changed, nothing logged). After the
    commit fires ``citizen.rectified`` (:mod:`crm.hooks`): a changed phone's old number gets an SMS
    saying the number was replaced (:mod:`crm.consent.hooks`), so a staff member cannot silently move
    the citizen's self-service sign-in to another phone.

    A new phone that already belongs to other citizens is refused as registration refuses it
    (README: ``phone_in_use``): :class:`PhoneInUse` naming them, nothing changed, the look-up logged
    (``citizen.search`` per holder) and committed. ``confirm_duplicate`` (the staff member checked
    that the number is shared, e.g. a household's landline) corrects it all the same.
    Raises :class:`CitizenError` (bad value, unknown field, erased citizen), :class:`PhoneInUse` and
    :class:`crm.security.permissions.PermissionDenied`."""
    require_role(user, *RECTIFIERS)
    unknown = sorted(set(changes) - set(RECTIFIABLE))
    if unknown:
        raise CitizenError(_l("эти данные не исправляются здесь: %(fields)s", fields=', '.join(unknown)), unknown[0])
    if citizen.erased_at is not None:
        raise CitizenError(_l("данные заявителя уничтожены: исправлять нечего"), "citizen_id")
    current = CitizenData(citizen.full_name, citizen.phone, citizen.email, citizen.address, citizen.apartment)
    wanted = CitizenData(**{f: (changes[f] if f in changes else getattr(current, f)) for f in RECTIFIABLE})
    clean = _clean(wanted)
    changed = [f for f in RECTIFIABLE if getattr(current, f) != getattr(clean, f)]
    if not changed:
        return []
    if "phone" in changed and not confirm_duplicate:
        holders = _phone_holders(clean.phone, purpose=purpose, exclude=citizen.id)
        if holders:
            db.session.commit()  # the look-up's access-log entries; the citizen is untouched
            raise PhoneInUse([c.id for c in holders])
    for f in changed:
        setattr(citizen, f, getattr(clean, f))
    _set_indexes(citizen, clean)
    if "address" in changed:
        _refresh_index_copies(citizen, "building")
    actor = audit.Actor(user.id, user.username, user.role)
    audit.record("citizen.rectify", citizen_id=citizen.id, fields=changed, purpose=purpose, appeal_id=appeal_id,
                 detail="152-ФЗ ст. 21 ч. 2: " + ",".join(changed), actor=actor)
    db.session.commit()
    # the old number is told (crm.consent subscribes): nobody can move /my to another phone unnoticed
    hooks.fire("citizen.rectified", citizen_id=citizen.id, fields=list(changed),
               old_phone=current.phone if "phone" in changed else None, actor=actor)
    return changed


def _refresh_index_copies(citizen: Citizen, index: str) -> None:
    """Rows of other features that copy the citizen's blind index ``index`` (e.g. each appeal's
    ``building_key``, declared in :mod:`crm.security.registry`) take its corrected value, so searches
    and repeat matching follow a rectified address instead of the old one. No commit."""
    value = blind_index.read_value(index, citizen)
    for copy in registry.INDEX_COPIES.values():
        if copy.index == index:
            table = copy.model.__table__
            db.session.execute(table.update().where(table.c[copy.citizen_column] == citizen.id)
                               .values({copy.column: value}))


def find_by_phone(phone: str, *, purpose: str = "appeal_processing", even: bool = False) -> list[Citizen]:
    """Citizens whose phone equals ``phone`` (any spelling). Candidates from the blind index are
    decrypted and filtered; the lookup is logged. ``even``: the look-up does the same work whether the
    number is anyone's or not (the self-service sign-in, issue 13 point 4): the candidates' keys are
    read from the key store, never a process cache, and a number without candidates decrypts a decoy
    (:func:`crm.security.crypto.prefetch_keys_evenly`). Raises :class:`CitizenError` for a bad number."""
    try:
        e164 = normalise_phone(phone)
    except InvalidPhone as exc:
        raise CitizenError(exc.args[0], "phone") from None
    found = _phone_holders(e164, purpose=purpose, even=even)
    if not found:
        audit.record("citizen.search", fields=["phone"], purpose=purpose, outcome="not_found")
    db.session.commit()
    return found


def _phone_holders(e164: str, *, purpose: str, exclude: str | None = None, even: bool = False) -> list[Citizen]:
    """The citizens (not erased, other than ``exclude``) whose phone is ``e164``: blind-index
    candidates decrypted and compared, so an index collision is no match. Each one found is logged
    (``citizen.search``); no commit."""
    column, value = blind_index.lookup("phone", e164)
    q = db.select(Citizen).where(getattr(Citizen, column) == value, Citizen.erased_at.is_(None))
    if exclude is not None:
        q = q.where(Citizen.id != exclude)
    found = _filter(db.session.execute(q).scalars().all(), lambda c: c.phone == e164, even=even)
    for c in found:
        audit.record("citizen.search", citizen_id=c.id, fields=["phone", "full_name"], purpose=purpose)
    return found


@dataclass
class Registration:
    """What :func:`register_checked` did. ``citizen``: the citizen registered (or, for a re-sent
    form, the one its first submission registered: ``replayed``); None when nothing was registered
    because the phone already belongs to ``duplicates`` — their cards as :func:`view` returns them
    (masked: name and masked phone), each read logged."""

    citizen: Citizen | None
    duplicates: list[dict]
    replayed: bool = False
    #: ``citizen`` already existed with this phone and name (``same_name_is_same_person``)
    existing: bool = False

    @property
    def registered(self) -> bool:
        """Whether this call registered ``citizen`` (not a replay, not an existing citizen)."""
        return self.citizen is not None and not self.replayed and not self.existing


def by_submission_key(key: str | None) -> Citizen | None:
    """The citizen a registration form with this key made (no decryption, no log entry), or None."""
    if not key:
        return None
    return db.session.execute(db.select(Citizen).where(Citizen.submission_key == key)).scalar_one_or_none()


def _same_person_indexes(citizen: Citizen, clean: CitizenData) -> bool:
    """Whether ``citizen`` holds the blind indexes of ``clean``'s phone and surname (read slots):
    tells a re-sent form from a form reused for someone else, without decrypting anything."""
    for name, value in (("phone", clean.phone), ("surname", surname_value(clean.full_name))):
        if blind_index.read_value(name, citizen) != blind_index.lookup(name, value)[1]:
            return False
    return True


def same_phone(a: str | None, b: str | None) -> bool:
    """Whether ``a`` and ``b`` are the same valid phone number in any spelling (False if either is not)."""
    try:
        return normalise_phone(a) == normalise_phone(b)
    except InvalidPhone:
        return False


def register_checked(data: CitizenData, *, confirmed_phone: str | None = None, submission_key: str | None = None,
                     purpose: str = "appeal_processing", same_name_is_same_person: bool = False,
                     commit: bool = True) -> Registration:
    """Register a citizen from the operator's form or the API, unless the phone already belongs to
    someone.

    1. ``data`` is checked (raises :class:`CitizenError`).
    2. A ``submission_key`` that already registered a citizen with this phone and surname (blind
       indexes compared, nothing decrypted) — a double-clicked or re-sent form: that citizen,
       ``replayed``; nothing looked up or written. The same key with another person's data (the
       form reused after the back button) registers without the key.
    3. Unless ``confirmed_phone`` is this same number (the operator ticked «Всё равно
       зарегистрировать» under the warning for it), the phone is looked up by its blind index
       (:func:`find_by_phone`: ``citizen.search`` per match, or one ``not_found``) and every match
       is shown as a masked card (:func:`view`: ``citizen.view``). Matches → nothing registered;
       ``Registration(None, cards)``. With ``same_name_is_same_person`` (the API), a match with the
       same name (case, spaces and ё/е ignored) is that citizen: ``Registration(it, [], existing=True)``,
       nothing shown.
    4. Otherwise the citizen is registered under ``submission_key``; when a concurrent twin with
       the same key committed first (unique key), the twin's citizen is returned, ``replayed``.
       ``commit=False`` leaves the new citizen in the session, to commit with what the caller adds
       (the API's appeal), so that a refused appeal registers nobody."""
    from sqlalchemy.exc import IntegrityError

    clean = _clean(data)
    key = (submission_key or "").strip()[:64] or None
    earlier = by_submission_key(key)
    if earlier is not None:
        if _same_person_indexes(earlier, clean):
            return Registration(earlier, [], replayed=True)
        key = None  # the key's form was reused for another person (back button): a registration of its own
    if not same_phone(confirmed_phone, clean.phone):
        found = find_by_phone(clean.phone, purpose=purpose)
        twin = next((c for c in found if key and c.submission_key == key), None)
        if twin is not None:  # the first submission committed between our key check and the search
            return Registration(twin, [], replayed=True)
        if same_name_is_same_person:
            name = blind_index.normalise_name(clean.full_name)
            same = next((c for c in found if blind_index.normalise_name(c.full_name) == name), None)
            if same is not None:
                return Registration(same, [], existing=True)
        if found:
            cards = [view(c, purpose=purpose, commit=False) for c in found]
            db.session.commit()
            return Registration(None, cards)
    try:
        citizen = register(data, purpose=purpose, submission_key=key, commit=commit)
    except IntegrityError:
        db.session.rollback()  # discards the citizen and its access-log entry
        twin = by_submission_key(key)
        if twin is None:
            raise
        return Registration(twin, [], replayed=True)
    return Registration(citizen, [])


def _filter(candidates: list[Citizen], match, even: bool = False) -> list[Citizen]:
    """Decrypt blind-index candidates (their data keys fetched in one key-store query) and keep the
    true matches. A candidate whose data key was erased (a row restored from a backup taken before
    its erasure) is no match; the failed read is in the access log as ``security.decrypt_failed``.
    ``even``: at least one decryption whatever the candidates, keys from the key store
    (:func:`crm.security.crypto.prefetch_keys_evenly`)."""

    if even:
        crypto.open_decoys(crypto.prefetch_keys_evenly([c.id for c in candidates], at_least=1))
    else:
        crypto.prefetch_keys([c.id for c in candidates])
    found = []
    for c in candidates:
        try:
            if match(c):
                found.append(c)
        except crypto.KeyErased:
            continue
    return found


def find_by_name_and_building(full_name_or_surname: str, address: str, *,
                              purpose: str = "appeal_processing") -> list[Citizen]:
    """Citizens with this surname (the first word of ``full_name_or_surname``) registered at this
    building (``address`` in any usual spelling), through the compound blind index; logged."""
    surname = surname_value(full_name_or_surname or "")
    nb = name_building_value(surname, address) if surname else None
    if not nb:
        raise CitizenError(_l("укажите фамилию и адрес"), "full_name")
    column, value = blind_index.lookup("name_building", nb)
    candidates = db.session.execute(
        db.select(Citizen).where(getattr(Citizen, column) == value, Citizen.erased_at.is_(None))).scalars().all()
    found = _filter(candidates, lambda c: name_building_value(c.full_name, c.address) == nb)
    for c in found:
        audit.record("citizen.search", citizen_id=c.id, fields=["full_name", "address"], purpose=purpose)
    if not found:
        audit.record("citizen.search", fields=["full_name", "address"], purpose=purpose, outcome="not_found")
    db.session.commit()
    return found


def registrations_select():
    """``SELECT id, created_at`` of every citizen (their registration, an activity for retention)."""
    return db.select(Citizen.id.label("cid"), Citizen.created_at.label("at"))


def named_in(citizen_id: str, text: str | None) -> bool:
    """Whether ``text`` names the citizen: one of its words that could be a name, in any grammatical case
    and any letter case, or a Latin word read back into Cyrillic by the standard romanisations
    (:func:`crm.text_ru.name_forms`: «Иванову», «ИВАНОВУ», «иванову», «Ivanovu»), has the citizen's
    ``surname`` blind index. Nothing is decrypted (so nothing is logged); the index's truncation
    makes a rare false positive."""
    citizen = get(citizen_id)
    if citizen is None or citizen.erased_at is not None or not text:
        return False
    for form in text_ru.name_forms(text):
        column, value = blind_index.lookup("surname", surname_value(form))
        if value and getattr(citizen, column) == value:
            return True
    return False


def live_ids_select():
    """``SELECT id`` of the citizens whose data were not erased."""
    return db.select(Citizen.id).where(Citizen.erased_at.is_(None))


def get(citizen_id: str) -> Citizen | None:
    """The citizen row (no decryption, no log entry): for relations and permission checks."""
    return db.session.get(Citizen, citizen_id)


def view(citizen: Citizen, *, purpose: str, reveal: bool = False, appeal_id: str | None = None,
         call_id: str | None = None, commit: bool = True) -> dict:
    """Decrypted card of a citizen, phone and address masked unless ``reveal``. Logs the fields shown.

    Returns ``{"id", "full_name", "phone", "email", "address", "apartment", "masked", "erased"}``."""
    if citizen.erased_at is not None:
        audit.record("citizen.view", citizen_id=citizen.id, purpose=purpose, appeal_id=appeal_id,
                     call_id=call_id, outcome="erased")
        if commit:
            db.session.commit()
        return {"id": citizen.id, "erased": True, "full_name": "(данные уничтожены)", "phone": None,
                "email": None, "address": None, "apartment": None, "masked": False}
    shown = ["full_name", "phone"] + (["email", "address", "apartment"] if reveal else [])
    card = {"id": citizen.id, "erased": False, "full_name": citizen.full_name, "masked": not reveal,
            "phone": format_phone(citizen.phone) if reveal else mask_phone(citizen.phone),
            "email": citizen.email if reveal else None,
            "address": citizen.address if reveal else ("*** (скрыт)" if citizen.address_enc else None),
            "apartment": citizen.apartment if reveal else None}
    audit.record("citizen.reveal" if reveal else "citizen.view", citizen_id=citizen.id, fields=shown,
                 purpose=purpose, appeal_id=appeal_id, call_id=call_id)
    if commit:
        db.session.commit()
    return card


def address_for_matching(citizen: Citizen, *, purpose: str) -> str | None:
    """The citizen's address, decrypted to find their house in the buildings register (the new-appeal
    form shows that house prefilled, so the read is logged as a reveal of the address, ``detail``
    ``house``; committed). None for an erased citizen or one without an address."""
    if citizen.erased_at is not None or not citizen.address_enc:
        return None
    audit.record("citizen.reveal", citizen_id=citizen.id, fields=["address"], purpose=purpose, detail="house")
    db.session.commit()
    return citizen.address


def address_for(citizen: Citizen, *, purpose: str, appeal_id: str | None = None, detail: str | None = None,
                commit: bool = True) -> dict | None:
    """The citizen's ``{"address", "apartment"}`` alone (an executor going to the house needs nothing
    else), logged as ``citizen.reveal`` of those two fields with ``purpose``, ``appeal_id`` and
    ``detail`` (why). None for an erased citizen (logged ``erased``)."""
    if citizen.erased_at is not None:
        audit.record("citizen.reveal", citizen_id=citizen.id, purpose=purpose, appeal_id=appeal_id, outcome="erased",
                     detail=detail)
        if commit:
            db.session.commit()
        return None
    found = {"address": citizen.address, "apartment": citizen.apartment}
    audit.record("citizen.reveal", citizen_id=citizen.id, fields=["address", "apartment"], purpose=purpose,
                 appeal_id=appeal_id, detail=detail)
    if commit:
        db.session.commit()
    return found


def identifiers_for_masking(citizen_id: str | None) -> dict | None:
    """The citizen's stored identifiers, decrypted only to hide them: ``{"full_name", "phone", "email",
    "addresses": [(address, apartment)]}``, or None for no citizen, an erased one or a missing one.

    **Logs nothing, on purpose.** The only use is masking a transcript a QA reader is shown
    (:func:`crm.calls.services.known_identifiers`): the values are matched against the transcript and
    replaced by labels; none of them is shown, returned to a client, written or cached (not in Redis
    either). The read they serve is the caller's, logged there (``transcript.view``,
    ``transcript.reveal`` or ``transcript.search`` naming the citizen and the call); an entry here would
    tell the DPO that the supervisor saw the citizen's name, phone and address, which they did not."""
    citizen = get(citizen_id) if citizen_id else None
    if citizen is None or citizen.erased_at is not None:
        return None
    return {"full_name": citizen.full_name, "phone": citizen.phone, "email": citizen.email,
            "addresses": [(citizen.address, citizen.apartment)] if citizen.address_enc or citizen.apartment_enc else []}


def names_for(citizen_ids: list[str], *, purpose: str) -> dict[str, str]:
    """Decrypted full names for a list page, each logged. ``{citizen_id: full_name}``."""
    out = {}
    for cid in set(citizen_ids):
        c = db.session.get(Citizen, cid)
        if c is None:
            continue
        if c.erased_at is not None:
            out[cid] = "(данные уничтожены)"
            continue
        out[cid] = c.full_name
        audit.record("citizen.view", citizen_id=cid, fields=["full_name"], purpose=purpose)
    return out


def ids_by_phone_select(phone: str):
    """``SELECT id`` of the (not erased) citizens whose phone blind index matches ``phone`` (any
    spelling): a sub-query for list filters; nothing is decrypted. Raises :class:`CitizenError` for
    a bad number."""
    try:
        e164 = normalise_phone(phone)
    except InvalidPhone as exc:
        raise CitizenError(exc.args[0], "phone") from None
    column, value = blind_index.lookup("phone", e164)
    return db.select(Citizen.id).where(getattr(Citizen, column) == value, Citizen.erased_at.is_(None))


def ids_by_surname_select(full_name_or_surname: str):
    """``SELECT id`` of the (not erased) citizens whose ``surname`` blind index matches the first word
    of ``full_name_or_surname``; nothing decrypted (the index's truncation makes a rare false positive).
    None for a blank name."""
    surname = surname_value(full_name_or_surname or "")
    if not surname:
        return None
    column, value = blind_index.lookup("surname", surname)
    return db.select(Citizen.id).where(getattr(Citizen, column) == value, Citizen.erased_at.is_(None))


def building_search_keys(address: str) -> list[str]:
    """The ``building`` blind-index values of ``address`` under each key version in use: what
    ``appeals.building_key`` may hold for that building."""
    value = building_value(" ".join((address or "").split()))
    return blind_index.search_values("building", value) if value and value.strip() else []
