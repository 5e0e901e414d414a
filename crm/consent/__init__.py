"""Consent and data-subject rights (152-ФЗ): purposes, legal bases, consent events, withdrawal."""
