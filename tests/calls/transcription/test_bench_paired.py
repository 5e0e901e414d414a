"""bench/transcription.py's paired comparison by file (issue 18: ours beside plain on small sets)."""
from __future__ import annotations

import importlib.util

from tests.speech import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_transcription", ROOT / "bench" / "transcription.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paired_difference_counts_words_and_files():
    bench = _bench()
    ref = "нажмите три для расширенных настроек"
    base = [{"ref": ref, "hyp": ref}, {"ref": "введите пароль", "hyp": "видите пароль"},
            {"ref": "ожидайте соединения", "hyp": "ожидайте соединения"}]
    same = bench.paired_difference(base, base)
    assert (same["diff"], same["lo"], same["hi"], same["words"]) == (0.0, 0.0, 0.0, 0)
    assert (same["better"], same["worse"], same["same"]) == (0, 0, 3)

    mine = [{"ref": ref, "hyp": "нажмите три для расширения настроек"},  # one word more wrong
            {"ref": "введите пароль", "hyp": "введите пароль"},  # one fewer
            {"ref": "ожидайте соединения", "hyp": ""}]  # nothing heard: every word an error
    d = bench.paired_difference(mine, base)
    assert d["words"] == 1 + -1 + 2
    assert (d["better"], d["worse"], d["same"]) == (1, 2, 0)
    assert d["diff"] == 2 / 9
    assert d["lo"] <= d["diff"] <= d["hi"]
    assert d == bench.paired_difference(mine, base)  # seeded: the same interval every run
