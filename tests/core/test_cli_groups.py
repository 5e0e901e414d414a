"""`crm` is one command group per feature (crm/<feature>/cli.py), registered by the factory."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GROUPS = {"init", "redis", "demo-data", "users", "consent", "audit", "keys", "transcribe", "worker", "status", "qa"}


def test_the_factory_registers_every_feature_group(ctx):
    assert GROUPS <= set(ctx.cli.commands)
    assert {"create", "token"} <= set(ctx.cli.commands["users"].commands)
    assert {"verify", "checkpoint", "keygen", "attest", "export", "scan"} <= set(ctx.cli.commands["audit"].commands)
    assert {"rotate", "resume", "status", "retire", "index", "gc", "complete-erasures"} <= set(
        ctx.cli.commands["keys"].commands)
    assert {"retention"} <= set(ctx.cli.commands["consent"].commands)


def test_the_console_script_lists_them(ctx):
    from flask.cli import ScriptInfo

    from crm.cli import main

    out = ctx.test_cli_runner().invoke(main, ["--help"], obj=ScriptInfo(create_app=lambda: ctx))
    assert out.exit_code == 0, out.output
    for name in GROUPS:
        assert name in out.output


def test_users_create_and_token(runner):
    from crm.users.services import get_by_username

    out = runner("users", "create", "cli_admin", "--role", "admin", "--password-stdin", "--full-name", "Админ",
                 input="correct-horse-battery-1\n")
    assert out.exit_code == 0, out.output
    assert "created cli_admin (admin)" in out.output
    assert get_by_username("cli_admin").role == "admin"
    out = runner("users", "create", "cli_admin", "--role", "admin", "--password-stdin",
                 input="correct-horse-battery-1\n")
    assert out.exit_code == 1
    token = runner("users", "token", "cli_admin")
    assert token.exit_code == 0 and len(token.output.strip()) > 20
    assert runner("users", "token", "nobody").exit_code == 1


def test_consent_retention_runs(runner):
    out = runner("consent", "retention")
    assert out.exit_code == 0, out.output
    assert out.output.startswith("retention run ")


def test_audit_and_keys_groups_answer(runner):
    out = runner("audit", "verify")
    assert out.exit_code == 0, out.output
    assert "chain intact" in out.output
    out = runner("keys", "status")
    assert out.exit_code == 0, out.output
    assert "key-encryption keys:" in out.output


def test_status_and_worker_are_commands(runner):
    assert runner("worker", "--help").exit_code == 0
    out = runner("status")
    assert out.exit_code == 0, out.output
    assert "queues:" in out.output


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT) for p in (ROOT / "crm").rglob("cli.py")))
def test_commands_hold_no_business_logic(path):
    """A command module parses options, calls services and prints: it neither opens the database
    session nor builds queries."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "session" not in attrs and "db" not in imported and "select" not in names and "sqlalchemy" not in {
        n.names[0].name for n in ast.walk(tree) if isinstance(n, ast.Import)}
