"""Security design: keyring (KEKs), per-citizen data keys (DEKs), AES-256-GCM ciphertexts bound to
their row, blind indexes, the access log and role checks. Nothing outside this package calls the
cipher."""
