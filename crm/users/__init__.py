"""Staff accounts, roles, sign-in, API tokens."""
