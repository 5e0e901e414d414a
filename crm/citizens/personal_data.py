"""The citizens' personal data, declared to :mod:`crm.security.registry` at start-up: the citizens'
table is the subject table (its rows own their data keys; erasure clears every ciphertext column and
every blind-index slot and sets ``erased_at``), and how the key rotation's backfill recomputes each
blind index of :data:`crm.security.blind_index.SLOTS`."""
from __future__ import annotations

from typing import Callable

from crm.citizens import services
from crm.citizens.models import Citizen
from crm.security import registry
from crm.security.registry import IndexSource


def _indexed(name: str) -> Callable[[Citizen], str | None]:
    def normalised(citizen: Citizen) -> str | None:
        full_name = citizen.full_name if name in ("surname", "name_building") else ""
        phone = citizen.phone if name == "phone" else ""
        address = citizen.address if name in ("name_building", "building") else None
        return services.index_values(full_name or "", phone or "", address)[name]

    normalised.__name__ = f"normalised_{name}"
    normalised.__doc__ = f"The ``{name}`` index's normalised value for a citizen, as its writer computes it."
    return normalised


#: index name -> the citizens' ciphertext columns its value is computed from
INDEX_SOURCES: dict[str, tuple[str, ...]] = {
    "phone": ("phone_enc",),
    "surname": ("full_name_enc",),
    "name_building": ("full_name_enc", "address_enc"),
    "building": ("address_enc",),
}


def register() -> None:
    """Declare the citizens' table, its key owners and its blind indexes."""
    registry.register_table(Citizen, lambda cid, owners: Citizen.id == cid,
                            encrypted=tuple(f"{f}_enc" for f in Citizen.PERSONAL_FIELDS),
                            blind_indexes=Citizen.BLIND_INDEX_COLUMNS, subject=True)
    registry.register_key_owner(Citizen.id)
    for name, ciphertext in INDEX_SOURCES.items():
        registry.register_blind_index(name, IndexSource(_indexed(name), ciphertext))
