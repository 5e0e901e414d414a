"""Buildings register (issue 14, point 2): the houses a hotline serves, each with a normalised
address key (:func:`crm.buildings.address.normalize_address`), an optional ФИАС/ГАР code and its
numbers of entrances and apartments; imported from CSV (``crm buildings import``) and offered to
the operator by autocomplete (``GET /api/v1/buildings?q=``). No personal data: an address alone
names a house, not a citizen. Imports no feature."""
