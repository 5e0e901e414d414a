"""The layering of issue 12, checked on every `make test`.

- import-linter's contracts (pyproject.toml, [tool.importlinter]) hold: a lower layer never imports
  a higher one, a feature never imports another feature's models;
- imports of our own modules inside functions are rare and documented: each is preceded by a
  ``# deferred: <reason>`` comment (on the line above), and there are at most MAX_DEFERRED of them.
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_DEFERRED = 6


def _inner_imports() -> list[tuple[Path, int, str]]:
    found = []
    for path in sorted((ROOT / "crm").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and not node.level:
                    mod = node.module or ""
                elif isinstance(node, ast.ImportFrom):
                    mod = "crm"  # a relative import is ours
                elif isinstance(node, ast.Import):
                    mod = node.names[0].name
                else:
                    continue
                if mod == "crm" or mod.startswith("crm."):
                    above = " ".join(lines[max(0, node.lineno - 3): node.lineno - 1])
                    found.append((path.relative_to(ROOT), node.lineno, above))
    # an import nested in two functions is seen twice by the walk
    return sorted(set(found))


def test_layers_contract_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is not installed (requirements-dev.txt: import-linter)")
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_imports_inside_functions_are_few_and_documented():
    inner = _inner_imports()
    undocumented = [f"{p}:{n}" for p, n, above in inner if "# deferred:" not in above]
    assert not undocumented, "imports of crm modules inside functions need a '# deferred: <reason>' comment: " + ", ".join(undocumented)
    assert len(inner) <= MAX_DEFERRED, f"{len(inner)} deferred imports (at most {MAX_DEFERRED})"
