"""The personal-data registry (crm.security.registry): every encrypted column is declared by its
feature, and the application refuses to start when one is not."""
from __future__ import annotations

import pytest

from crm import create_app
from crm.qa import personal_data as qa_data
from crm.qa.models import Evaluation
from crm.security import registry
from crm.security.fields import encrypted_tables


def test_every_encrypted_column_is_declared_by_its_feature(ctx):
    declared = {name: sorted(t.encrypted) for name, t in registry.TABLES.items() if t.encrypted}
    assert declared == encrypted_tables()
    assert registry.subject_table().name == "citizens"
    assert {"citizens", "calls"} <= set(registry.KEY_OWNERS)
    assert set(registry.FILES) == {"recordings"}


def test_the_app_refuses_to_start_when_an_encrypted_column_is_undeclared(app_config, monkeypatch):
    monkeypatch.setattr(registry, "TABLES", {})
    monkeypatch.setattr(qa_data, "register", lambda: None)
    with pytest.raises(RuntimeError, match=r"refusing to start: .*evaluations\.comment_enc"):
        create_app({**app_config, "WTF_CSRF_ENABLED": False})


def test_a_declared_column_the_model_lacks_is_refused(ctx):
    with pytest.raises(registry.RegistryError, match="evaluations.no_such_enc"):
        registry.register_table(Evaluation, lambda cid, owners: Evaluation.owner_id.in_(owners),
                                encrypted=("no_such_enc",))


def test_without_a_subject_table_the_check_fails(monkeypatch):
    monkeypatch.setattr(registry, "TABLES", {})
    with pytest.raises(registry.RegistryError, match="no subject table"):
        registry.check_complete({})
