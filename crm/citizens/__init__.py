"""Data subjects: encrypted personal data, search by blind index."""
