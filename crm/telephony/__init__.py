"""Telephony: the PBX's call events (Zammad's generic CTI events), the call records built from them,
the callback worklist of abandoned calls, the queue board and the IVR's lookups.

A layer above appeals (pyproject.toml): it reads citizens, calls and appeals through their services."""
