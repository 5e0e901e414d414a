"""The buildings register: CSV import, look-up, autocomplete. Other features reach buildings only
through this module (:func:`get`, :func:`view`, :func:`search`).

Import (:func:`import_csv`) is **one transaction per file**: every row is checked first; the rows
that pass are written together and committed once, the rows that fail are refused with their line
numbers and reasons and write nothing. A file that cannot be read as a whole (not UTF-8, no
``address`` column, not CSV) raises :class:`BuildingImportError` and writes nothing. A row whose
normalised address (or ФИАС code) is already in the register updates that building, so importing
the same file twice adds nothing the second time."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from crm.buildings.address import normalize_address
from crm.buildings.models import Building
from crm.db import atomic, db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.security import audit

#: a ФИАС/ГАР object GUID (8-4-4-4-12 hex digits), case-insensitive.
FIAS_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
COLUMNS = ("address", "fias_id", "entrances", "apartments")
MAX_ADDRESS = 300
MAX_COUNT = 100_000
SEARCH_LIMIT = 20


class BuildingImportError(ValueError):
    """The file as a whole cannot be imported (nothing was written)."""


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0  #: of ``updated``: rows that matched a building and changed nothing
    refused: list[tuple[int, str]] = field(default_factory=list)  #: (line number, reason)


def get(building_id: int | None) -> Building | None:
    return db.session.get(Building, building_id) if building_id is not None else None


def view(b: Building) -> dict:
    return {"id": b.id, "address": b.address, "fias_id": b.fias_id, "entrances": b.entrances,
            "apartments": b.apartments}


def find(address: str) -> Building | None:
    """The building whose normalised address is that of ``address``, if any."""
    key = normalize_address(address)
    if not key:
        return None
    return db.session.execute(sa.select(Building).where(Building.address_key == key)).scalar_one_or_none()


def search(q: str | None, limit: int = SEARCH_LIMIT) -> list[Building]:
    """Autocomplete: the buildings whose normalised address has, for every word of ``q`` (normalised
    the same way), a word starting with it («лен 5» finds «ул ленина 5» and «ул ленина 5а», not
    «ул ленина 15»). Exact matches first, then shorter addresses. ``[]`` for an empty query."""
    words = normalize_address(q).split()
    if not words:
        return []
    padded = sa.literal(" ").concat(Building.address_key)
    stmt = sa.select(Building)
    for w in words:
        stmt = stmt.where(padded.like(f"% {w}%"))
    key = " ".join(words)
    stmt = stmt.order_by(sa.case((Building.address_key == key, 0), else_=1), sa.func.length(Building.address_key),
                         Building.address_key).limit(max(1, min(limit, 50)))
    return list(db.session.execute(stmt).scalars())


def _count(raw: str | None, name: str, minimum: int) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not re.fullmatch(r"\d+", raw):
        raise ValueError(_l("%(name)s: не целое число «%(raw)s»", name=name, raw=raw[:20]))
    value = int(raw)
    if not minimum <= value <= MAX_COUNT:
        raise ValueError(_l("%(name)s: %(value)s вне допустимых пределов (%(minimum)s–%(maximum)s)",
                            name=name, value=value, minimum=minimum, maximum=MAX_COUNT))
    return value


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BuildingImportError(_l("файл не в кодировке UTF-8 (байт %(position)s); сохраните его как CSV UTF-8",
                                     position=exc.start + 1)
                                  ) from None


def _reader(text: str) -> csv.DictReader:
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise BuildingImportError(_l("не CSV: %(error)s", error=exc)) from None
    reader.fieldnames = [(h or "").strip().lower() for h in header]
    if "address" not in reader.fieldnames:
        raise BuildingImportError(_l("нет столбца «address» в первой строке (заголовке)"))
    return reader


@atomic
def import_csv(data: bytes) -> ImportResult:
    """Import the CSV file ``data`` (UTF-8, a header line with ``address`` and optionally
    ``fias_id``, ``entrances``, ``apartments``; comma, semicolon or tab separated). One
    transaction for the file (module docstring); an empty optional cell leaves the stored value as
    it is. Logged as ``buildings.import``; commits. Raises :class:`BuildingImportError`."""
    reader = _reader(_decode(data))
    result = ImportResult()
    seen: dict[str, Building] = {}
    try:
        for row in reader:
            line = reader.line_num
            if None in row:  # more cells than the header has
                result.refused.append((line, str(_l("лишние ячейки: больше значений, чем столбцов в заголовке"))))
                continue
            if not any((v or "").strip() for v in row.values()):
                continue  # a blank line
            try:
                outcome = _apply(row, seen)
            except ValueError as exc:
                result.refused.append((line, str(exc)))
                continue
            if outcome == "added":
                result.added += 1
            else:
                result.updated += 1
                result.unchanged += outcome == "unchanged"
    except csv.Error as exc:
        raise BuildingImportError(_l("строка %(line)s: не читается как CSV: %(error)s",
                                     line=reader.line_num + 1, error=exc)) from None
    audit.record("buildings.import", detail=f"added {result.added}, updated {result.updated}, "
                                            f"refused {len(result.refused)}")
    db.session.commit()
    return result


def _apply(row: dict, seen: dict[str, Building]) -> str:
    """Check one row and add or update its building (flushed): ``added``, ``updated`` or
    ``unchanged``. Raises ``ValueError`` (the reason the row is refused) before changing anything."""
    address = " ".join((row.get("address") or "").split())
    if not address:
        raise ValueError(_l("не указан адрес (address)"))
    if len(address) > MAX_ADDRESS:
        raise ValueError(_l("адрес длиннее %(max)s символов", max=MAX_ADDRESS))
    key = normalize_address(address)
    if not key:
        raise ValueError(_l("в адресе «%(address)s» нет ни улицы, ни номера дома", address=address[:60]))
    fias = (row.get("fias_id") or "").strip().lower() or None
    if fias is not None and not FIAS_ID.match(fias):
        raise ValueError(_l("fias_id: «%(fias)s» не GUID ФИАС/ГАР (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                            fias=fias[:40]))
    entrances = _count(row.get("entrances"), "entrances", 1)
    apartments = _count(row.get("apartments"), "apartments", 0)
    building = seen.get(key) or db.session.execute(
        sa.select(Building).where(Building.address_key == key)).scalar_one_or_none()
    if fias is not None:
        other = db.session.execute(sa.select(Building).where(Building.fias_id == fias)).scalar_one_or_none()
        if other is not None and other is not building:
            raise ValueError(_l("fias_id %(fias)s уже у другого дома: «%(address)s»",
                                fias=fias, address=other.address))
    if building is None:
        building = Building(address=address, address_key=key, fias_id=fias, entrances=entrances,
                            apartments=apartments)
        db.session.add(building)
        db.session.flush()
        seen[key] = building
        return "added"
    seen[key] = building
    new = {"address": address, "fias_id": fias, "entrances": entrances, "apartments": apartments}
    new = {k: v for k, v in new.items() if v is not None}
    changed = {k: v for k, v in new.items() if getattr(building, k) != v}
    for k, v in changed.items():
        setattr(building, k, v)
    if changed:
        building.updated_at = utcnow()
        db.session.flush()
    return "updated" if changed else "unchanged"


def buildings(limit: int = 500, offset: int = 0) -> list[Building]:
    """The register by address (the supervisors' list page)."""
    return list(db.session.execute(sa.select(Building).order_by(Building.address_key).limit(limit).offset(offset))
                .scalars())


def count() -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Building)).scalar_one()


#: the key's street-type tokens (crm.buildings.address) as people say them
STREET_TYPE_WORDS = {"ул": "улица", "пр-т": "проспект", "пер": "переулок", "проезд": "проезд", "пл": "площадь",
                     "б-р": "бульвар", "ш": "шоссе", "наб": "набережная", "туп": "тупик"}


def street_names(limit: int = 30) -> list[str]:
    """The register's streets as people say them («улица Садовая», «проспект Мира»), those with the
    most buildings first (ties by name), at most ``limit``. Read from the normalised address keys:
    the words after a street type up to the house number; addresses without a street type are
    skipped. Used for the transcription's vocabulary prompt (crm.calls.vocabulary)."""
    counts: dict[str, int] = {}
    for (key,) in db.session.execute(sa.select(Building.address_key)):
        words = key.split()
        for i, w in enumerate(words):
            if w in STREET_TYPE_WORDS:
                name = []
                for v in words[i + 1:]:
                    if any(c.isdigit() for c in v) or v in STREET_TYPE_WORDS or v in ("корп", "стр", "лит"):
                        break
                    name.append(v)
                if name:
                    street = STREET_TYPE_WORDS[w] + " " + " ".join(x[:1].upper() + x[1:] for x in name)
                    counts[street] = counts.get(street, 0) + 1
                break
    return [s for s, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
