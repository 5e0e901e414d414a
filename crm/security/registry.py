"""The personal-data registry: what each feature keeps about a citizen, declared by the feature itself.

``crm.security`` is the ground every feature stands on, so it imports none of them. Erasure
(:mod:`crm.security.shredding`), key and blind-index rotation (:mod:`crm.security.rotation`), the
security events of :mod:`crm.security.crypto` and the access-request export ask this registry
instead: each feature's ``personal_data.register()`` (called by the application factory through
``crm.register_personal_data``) declares, for its own tables,

* :func:`register_table`: the encrypted columns and blind indexes of a table and how to find "the
  rows that belong to citizen X" (a SQL condition); the table of the citizens themselves is declared
  with ``subject=True`` (exactly one);
* :func:`register_files`: files kept outside the database for a citizen (call recordings);
* :func:`register_sweeper`: a clean-up run at every erasure for copies of personal data no one
  citizen can be told from (plaintext left on disk by a process of an earlier version that was killed);
* :func:`register_key_owner`: rows that own a data key of their own besides the citizen (a call
  made before it was linked to a citizen encrypts its transcript under the call's key);
* :func:`register_blind_index`: how the backfill of a rotated blind index recomputes its value;
* :func:`register_index_copy`: columns elsewhere that hold a copy of a citizen's blind index (the
  building key of an appeal), re-keyed when the index's old key is dropped;
* :func:`register_export`: a section of the citizen's data for an access request (152-ФЗ ст. 14).

Registration replaces an earlier entry of the same name, so building several applications in one
process (tests) registers the same thing again harmlessly. :func:`check_complete` refuses to start
an application whose models have an encrypted column no entry declares: a column the registry does
not know would survive an erasure.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

from crm.db import db

#: ``where(citizen_id, owners)`` -> a SQL condition on the table; ``owners`` are the citizen id and
#: the ids of the other key owners of the citizen (:func:`key_owners`).
RowsOf = Callable[[str, list[str]], Any]


class RegistryError(RuntimeError):
    """The registry is incomplete or contradicts the models; the message names the table and column."""


@dataclass(frozen=True)
class PersonalTable:
    """A table holding personal data of citizens.

    ``model``: the mapped class; ``rows_of``: :data:`RowsOf`; ``encrypted``: its ciphertext columns
    (``*_enc``; cleared by erasure); ``blind_indexes``: its blind-index columns cleared by erasure;
    ``cleared``: plaintext columns derived from the citizen's data (e.g. an automatic check's
    sentence about the transcript) that erasure empties (NULL, or ``""`` when NOT NULL);
    ``category``: the data category a destruction record names (the subject table uses the field
    names of its non-empty ciphertext columns instead); ``subject``: the citizens' own table (its
    ``erased_at`` is set by erasure, its ids are data-key owners)."""

    model: type
    rows_of: RowsOf
    encrypted: tuple[str, ...]
    blind_indexes: tuple[str, ...] = ()
    category: str = ""
    subject: bool = False
    cleared: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.model.__tablename__


@dataclass(frozen=True)
class PersonalFiles:
    """Files of a citizen outside the database: ``paths(citizen_id) -> [Path]`` (read before the rows
    are erased), deleted by erasure and counted under ``category``."""

    category: str
    paths: Callable[[str], list[Path]]


@dataclass(frozen=True)
class KeyOwner:
    """Rows that own a data key: ``id_column`` (the owner id), ``citizen_column`` (the citizen the row
    belongs to; None for the subject table itself)."""

    id_column: Any
    citizen_column: Any = None


@dataclass(frozen=True)
class IndexSource:
    """Where the backfill of a blind index gets its value from.

    ``normalised(row) -> str | None``: the normalised value the writer of the row indexes (None: no
    value, the slot stays NULL); may raise :class:`~crm.security.crypto.KeyErased`. ``ciphertext``:
    the ciphertext columns of the row it is computed from; the backfill writes a row only while all
    of them still hold what it read (a writer that changed them meanwhile has already filled both
    slots itself). ``model``: the table indexed (None: the subject table)."""

    normalised: Callable[[Any], str | None]
    ciphertext: tuple[str, ...]
    model: type | None = None


@dataclass(frozen=True)
class IndexCopy:
    """``model.column`` holds a copy of the blind index ``index`` of the citizen ``model.citizen_column``."""

    index: str
    model: type
    column: str
    citizen_column: str


#: table name -> entry
TABLES: dict[str, PersonalTable] = {}
#: category -> entry
FILES: dict[str, PersonalFiles] = {}
#: table name -> entry
KEY_OWNERS: dict[str, KeyOwner] = {}
#: blind-index name -> how its backfill recomputes it (the same dict is ``crm.security.rotation.ROTATABLE``)
BLIND_INDEXES: dict[str, IndexSource] = {}
#: (index, table name, column) -> entry
INDEX_COPIES: dict[tuple[str, str, str], IndexCopy] = {}
#: section name -> ``export(citizen_id, user) -> Any`` (JSON-serialisable)
EXPORTS: dict[str, Callable[..., Any]] = {}
#: name -> ``sweep() -> int`` (files deleted)
SWEEPERS: dict[str, Callable[[], int]] = {}


def register_table(model: type, rows_of: RowsOf, *, encrypted: tuple[str, ...], blind_indexes: tuple[str, ...] = (),
                   category: str = "", subject: bool = False, cleared: tuple[str, ...] = ()) -> PersonalTable:
    """Declare ``model``'s personal data (see :class:`PersonalTable`). Raises :class:`RegistryError`
    for a column the model does not have, or a second subject table."""
    cols = tuple(encrypted)
    table = model.__table__
    for col in cols + tuple(blind_indexes) + tuple(cleared):
        if col not in table.c:
            raise RegistryError(f"{table.name}.{col}: declared in the personal-data registry but not a column")
    if subject and any(t.subject and t.name != table.name for t in TABLES.values()):
        raise RegistryError(f"{table.name}: a second subject table (already {subject_table().name})")
    entry = PersonalTable(model, rows_of, cols, tuple(blind_indexes), category or table.name, subject,
                          tuple(cleared))
    TABLES[table.name] = entry
    return entry


def register_files(category: str, paths: Callable[[str], list[Path]]) -> None:
    """Declare files of a citizen kept outside the database (see :class:`PersonalFiles`)."""
    FILES[category] = PersonalFiles(category, paths)


def register_sweeper(name: str, sweep: Callable[[], int]) -> None:
    """Declare ``sweep()`` (returns how many files it deleted), run by every erasure after the
    citizen's own files are deleted: it removes personal data that cannot be attributed to one
    citizen, such as plaintext a killed process left behind."""
    SWEEPERS[name] = sweep


def register_key_owner(id_column, citizen_column=None) -> None:
    """Declare rows that own data keys (see :class:`KeyOwner`)."""
    KEY_OWNERS[id_column.table.name] = KeyOwner(id_column, citizen_column)


def register_blind_index(name: str, source: IndexSource) -> None:
    """Declare how blind index ``name`` is recomputed by a key rotation's backfill."""
    BLIND_INDEXES[name] = source


def register_index_copy(index: str, model: type, column: str, citizen_column: str = "citizen_id") -> None:
    """Declare that ``model.column`` copies the blind index ``index`` of its citizen."""
    INDEX_COPIES[(index, model.__tablename__, column)] = IndexCopy(index, model, column, citizen_column)


def register_export(section: str, export: Callable[..., Any]) -> None:
    """Declare section ``section`` of the access-request export: ``export(citizen_id, user)``."""
    EXPORTS[section] = export


# --- queries ---------------------------------------------------------------------------------------

def subject_table() -> PersonalTable:
    """The citizens' table. Raises :class:`RegistryError` when none is registered."""
    for entry in TABLES.values():
        if entry.subject:
            return entry
    raise RegistryError("no subject table in the personal-data registry (crm.citizens.personal_data)")


def tables() -> list[PersonalTable]:
    """Every registered table, the subject's first."""
    return sorted(TABLES.values(), key=lambda t: (not t.subject, t.name))


def key_owners(citizen_id: str, session=None) -> list[str]:
    """The citizen id and the ids of every other row that owns a data key for the citizen's data."""
    session = session or db.session
    out = [citizen_id]
    for owner in KEY_OWNERS.values():
        if owner.citizen_column is not None:
            out += list(session.execute(sa.select(owner.id_column).where(owner.citizen_column == citizen_id)).scalars())
    return out


def known_owners(owner_ids: list[str], session=None) -> set[str]:
    """Which of ``owner_ids`` exist in the main database (citizens, or other rows that own a key)."""
    session = session or db.session
    found: set[str] = set()
    for owner in KEY_OWNERS.values():
        found |= set(session.execute(sa.select(owner.id_column).where(owner.id_column.in_(owner_ids))).scalars())
    return found


def is_subject(owner_id: str | None, session=None) -> bool:
    """Whether ``owner_id`` is the id of a citizen (not of another key owner)."""
    if owner_id is None or not TABLES:
        return False
    session = session or db.session
    model = subject_table().model
    return session.execute(sa.select(model.id).where(model.id == owner_id)).first() is not None


def check_complete(found: dict[str, list[str]]) -> None:
    """Raise :class:`RegistryError` naming every column of ``found`` (``{table name: [ciphertext
    column]}``, :func:`crm.security.fields.encrypted_tables`) that no entry declares, or when no
    subject table is registered."""
    subject_table()
    missing = []
    for name, cols in sorted(found.items()):
        entry = TABLES.get(name)
        declared = set(entry.encrypted) if entry is not None else set()
        missing += [f"{name}.{c}" for c in cols if c not in declared]
    if missing:
        raise RegistryError("encrypted columns missing from the personal-data registry (declare them in the "
                            "feature's personal_data.py, or erasure would leave them): " + ", ".join(missing))


__all__ = ["PersonalTable", "PersonalFiles", "KeyOwner", "IndexSource", "IndexCopy", "RegistryError",
           "TABLES", "FILES", "KEY_OWNERS", "BLIND_INDEXES", "INDEX_COPIES", "EXPORTS",
           "register_table", "register_files", "register_key_owner", "register_blind_index",
           "register_index_copy", "register_export", "subject_table", "tables", "key_owners",
           "known_owners", "is_subject", "check_complete"]
