from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.security.fields import Encrypted


class Citizen(db.Model):
    """A data subject. Personal fields are ciphertext under the citizen's own data key; ``*_bidx``
    and ``building_key`` are blind indexes, each with two columns (slot ``a`` and its ``*_b`` slot
    ``b``, filled while the index's key is rotated, see :data:`crm.security.blind_index.SLOTS`);
    ``name_building_bidx`` is surname + building. Erasure clears every one of them
    (:data:`BLIND_INDEX_COLUMNS`). ``erased_at`` is set when the data key was shredded
    (:func:`crm.security.shredding.erase_citizen`)."""

    __tablename__ = "citizens"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    full_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    apartment_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    phone_bidx_b: Mapped[str | None] = mapped_column(String(32), index=True)
    surname_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    surname_bidx_b: Mapped[str | None] = mapped_column(String(32), index=True)
    name_building_bidx: Mapped[str | None] = mapped_column(String(32), index=True)
    name_building_bidx_b: Mapped[str | None] = mapped_column(String(32), index=True)
    building_key: Mapped[str | None] = mapped_column(String(32), index=True)  # blind index of the address
    building_key_b: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the registration form's idempotency key (random, not personal): a double-clicked or re-sent
    # form registers one citizen (crm.citizens.services.register_checked)
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    full_name = Encrypted("full_name_enc")
    phone = Encrypted("phone_enc")
    email = Encrypted("email_enc")
    address = Encrypted("address_enc")
    apartment = Encrypted("apartment_enc")

    PERSONAL_FIELDS = ("full_name", "phone", "email", "address", "apartment")
    # every slot of every blind index (crm.security.blind_index.SLOTS); erasure sets them all to NULL
    BLIND_INDEX_COLUMNS = ("phone_bidx", "phone_bidx_b", "surname_bidx", "surname_bidx_b", "name_building_bidx",
                           "name_building_bidx_b", "building_key", "building_key_b")

    def __init__(self, **kwargs):
        # the id goes first: the associated data of every ciphertext names the row
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.id
