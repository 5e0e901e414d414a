"""Encrypted attributes that look like ordinary ones (``citizen.phone``).

A model declares the ciphertext column and the plain attribute::

    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone = Encrypted("phone_enc")

and defines ``crypto_owner_id`` (the citizen whose DEK encrypts the row). Reading decrypts,
writing encrypts. The class attribute has no comparison operators: ``Citizen.phone == x`` raises
``TypeError`` instead of silently comparing ciphertexts (sqlalchemy#5807); search with blind indexes.
"""
from __future__ import annotations

import json
from typing import Any

from crm.db import db
from crm.security import crypto


class Encrypted:
    """Descriptor over a ``LargeBinary`` ciphertext column. ``kind`` is ``"text"`` or ``"json"``."""

    def __init__(self, column: str, kind: str = "text"):
        self.column = column
        self.kind = kind
        self.name = column

    def __set_name__(self, owner, name):
        self.name = name

    def _place(self, obj) -> dict[str, str]:
        if obj.id is None:
            raise RuntimeError(f"{type(obj).__name__} needs its id before {self.name} is set")
        owner = obj.crypto_owner_id
        if owner is None:
            raise RuntimeError(f"{type(obj).__name__}.{self.name}: no owner for the data key")
        return {"table": obj.__tablename__, "column": self.name, "row_id": str(obj.id), "owner_id": str(owner)}

    def __get__(self, obj, objtype=None) -> Any:
        if obj is None:
            return self
        blob = getattr(obj, self.column)
        if blob is None:
            return None
        cache = obj.__dict__.setdefault("_crm_plain", {})
        hit = cache.get(self.name)
        if hit is not None and hit[0] is blob:
            return hit[1]
        raw = crypto.decrypt_field(blob, **self._place(obj))
        value = json.loads(raw) if self.kind == "json" else raw.decode("utf-8")
        cache[self.name] = (blob, value)
        return value

    def __set__(self, obj, value) -> None:
        if value is None or (self.kind == "text" and value == ""):
            setattr(obj, self.column, None)
            obj.__dict__.setdefault("_crm_plain", {}).pop(self.name, None)
            return
        raw = json.dumps(value, ensure_ascii=False).encode() if self.kind == "json" else str(value).encode("utf-8")
        blob = crypto.encrypt_field(raw, **self._place(obj))
        setattr(obj, self.column, blob)
        obj.__dict__.setdefault("_crm_plain", {})[self.name] = (blob, value)

    def _refuse(self, *_):
        raise TypeError(f"{self.name} is encrypted: it cannot be compared in SQL; use its blind index")

    __eq__ = __ne__ = __lt__ = __gt__ = __le__ = __ge__ = _refuse
    __hash__ = object.__hash__

    def like(self, *_):
        self._refuse()

    ilike = in_ = like


def encrypted_columns(model) -> list[str]:
    """The ciphertext columns of ``model`` (those behind :class:`Encrypted`), sorted."""
    return sorted({v.column for cls in model.__mro__ for v in vars(cls).values() if isinstance(v, Encrypted)})


def models_with_encrypted_fields() -> list[type]:
    """Every mapped class that has an encrypted attribute."""
    return [m.class_ for m in db.Model.registry.mappers if encrypted_columns(m.class_)]


def encrypted_tables() -> dict[str, list[str]]:
    """``{table name: [ciphertext column]}`` of every mapped class with encrypted attributes."""
    return {m.__tablename__: encrypted_columns(m) for m in models_with_encrypted_fields()}
