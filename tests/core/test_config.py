"""Configuration is declared once (crm.config.Defaults) and every CRM_* setting can come from the
environment, typed."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from crm import config

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"^CRM_[A-Z0-9_]+$")


def _literals() -> dict[str, list[str]]:
    """Every string literal that looks like a setting name, in the code and the templates: {name: [where]}."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "crm").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
                found.setdefault(node.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    for path in sorted((ROOT / "crm" / "templates").rglob("*.html")):
        for name in re.findall(r"config\[['\"](CRM_[A-Z0-9_]+)['\"]\]|config\.(CRM_[A-Z0-9_]+)", path.read_text()):
            found.setdefault(name[0] or name[1], []).append(str(path.relative_to(ROOT)))
    return found


def test_every_setting_read_anywhere_is_declared():
    declared = config.declared()
    undeclared = {k: v for k, v in _literals().items()
                  if k not in declared and not any(k == e or (e.endswith("_") and k.startswith(e)) for e in config.ENV_ONLY)}
    assert not undeclared, f"declare these in crm.config.Defaults: {undeclared}"


def test_no_default_is_repeated_at_the_point_of_use():
    """Settings are read as config["CRM_X"], never config.get("CRM_X", default) or config.get("CRM_X") or default."""
    offenders = []
    for path in sorted((ROOT / "crm").rglob("*.py")):
        if path.name == "config.py" and path.parent.name == "crm":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"(config|cfg)\.get\(\s*['\"]CRM_", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_declared_setting_has_a_usable_type():
    for key, kind in config.declared().items():
        if not key.startswith("CRM_"):
            continue
        assert kind in (bool, int, float, str, tuple, list, dict), (key, kind)


def test_the_environment_overrides_settings_typed(app_config, monkeypatch):
    from crm import create_app

    env = {"CRM_AUDIT_CHECKPOINT_EVERY_S": "600", "CRM_SLA_SOON_FRACTION": "0.5",
           "CRM_AUDIT_EARLY_LOCK_RELEASE": "false", "CRM_AUDIT_WORKING_DAYS": "1,2,3,4,5",
           "CRM_CHANNEL_ROLES": '["citizen", "operator"]', "CRM_QA_CHECKS": '{"silence": {"max_s": 15}}',
           "CRM_PUBLIC_URL": "https://crm.example", "CRM_BLIND_INDEX_BITS": "", "CRM_RECONCILE_EVERY_S": "120"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app({k: v for k, v in app_config.items() if k not in env})
    cfg = app.config
    assert cfg["CRM_AUDIT_CHECKPOINT_EVERY_S"] == 600 and cfg["CRM_SLA_SOON_FRACTION"] == 0.5
    assert cfg["CRM_AUDIT_EARLY_LOCK_RELEASE"] is False and cfg["CRM_AUDIT_WORKING_DAYS"] == (1, 2, 3, 4, 5)
    assert cfg["CRM_CHANNEL_ROLES"] == ("citizen", "operator") and cfg["CRM_QA_CHECKS"] == {"silence": {"max_s": 15}}
    assert cfg["CRM_PUBLIC_URL"] == "https://crm.example" and cfg["CRM_RECONCILE_EVERY_S"] == 120
    assert cfg["CRM_BLIND_INDEX_BITS"] is None  # an empty value is ignored


def test_a_value_of_the_wrong_type_names_the_key():
    with pytest.raises(ValueError, match="CRM_AUDIT_CHECKPOINT_EVERY_S"):
        config.from_environment({"CRM_AUDIT_CHECKPOINT_EVERY_S": "often"})
    with pytest.raises(ValueError, match="CRM_AUDIT_EARLY_LOCK_RELEASE"):
        config.from_environment({"CRM_AUDIT_EARLY_LOCK_RELEASE": "perhaps"})
    with pytest.raises(ValueError, match="CRM_QA_CHECKS"):
        config.from_environment({"CRM_QA_CHECKS": "[1, 2]"})


def test_environment_only_names_are_not_settings():
    assert config.from_environment({"CRM_KEK_ACTIVE": "k1", "CRM_INSTANCE_PATH": "/x"}) == {}
    assert config.from_environment({"CRM_SECRET_KEY": "s", "DATABASE_URL": "sqlite://"}) == {
        "SECRET_KEY": "s", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
