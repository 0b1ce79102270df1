"""The benchmark suite: does the harness distort what it measures? ``python -m benchmarks`` or ``chaosml bench``.

Sections (``--only NAME``, repeatable): ``load`` (load driver, recording on vs off), ``proxy``
(fault proxy overhead and toxic accuracy), ``wrk`` (the proxy vs direct nginx under wrk, its API
under churn, toxics under load; skipped without wrk and nginx), ``timing`` (apply jitter; ready/MTTR
vs the supervisor), ``mttr`` (MTTR vs an outside probe for restart delays 1, 3, 10 s), ``analysis``
(render_report at 100k/1M/5M samples), ``e2e`` (quickstart wall time, ``chaosml report``),
``scaleout`` (locust master + 2 workers, merged samples). Every figure is measured in
this run; comparisons are interleaved A, B, A, B and reported as medians; the load average and CPU
count are recorded before and after every section. Prints one table and writes
``<out-dir>/<timestamp>.json``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Figure, SectionResult, machine_context
from chaosml.bench import build_parser

SECTIONS: tuple[str, ...] = ("load", "proxy", "wrk", "timing", "mttr", "analysis", "e2e", "scaleout")
#: Figures every run must produce (quick or full); the smoke test checks them.
REQUIRED: dict[str, tuple[str, ...]] = {
    "load": ("rps_recording_on", "rps_recording_off", "recording_overhead_ratio", "cpu_per_request_on",
             "cpu_per_request_off", "cpu_overhead_ratio"),
    "proxy": ("proxy_added_latency_p50", "proxy_added_latency_p99", "throughput_direct", "throughput_proxied",
              "bulk_direct", "bulk_proxied", "latency_toxic_error", "bandwidth_toxic_error"),
    "wrk": ("keepalive_ratio", "new_connection_ratio", "bulk_ratio", "c200_ratio", "added_latency_p50",
            "api_p50_under_churn", "latency_toxic_added_under_load", "latency_toxic_error_under_load",
            "bandwidth_toxic_error_under_load"),
    "timing": ("apply_jitter_p50", "apply_jitter_max", "ready_s_error_delay_1s", "mttr_error_delay_1s"),
    "mttr": ("mttr_error_delay_1s",),
    "analysis": ("analyze_render_time_100k", "analyze_render_peak_rss_100k", "time_growth_exponent"),
    "e2e": ("quickstart_wall_time", "report_rerender_time"),
    "scaleout": ("rps_master_2_workers", "merged_sample_rows", "records_consistent"),
}


def _runner(name: str) -> Callable[[bool, Path], SectionResult]:
    if name == "load":
        from benchmarks import load

        return load.run
    if name == "proxy":
        from benchmarks import proxy

        return lambda quick, _workdir: proxy.run(quick)
    if name == "wrk":
        from benchmarks import wrk

        return wrk.run
    if name == "timing":
        from benchmarks import timing

        return timing.run
    if name == "mttr":
        from benchmarks import mttr_truth

        return mttr_truth.run
    if name == "analysis":
        from benchmarks import analysis

        return analysis.run
    if name == "e2e":
        from benchmarks import e2e

        return e2e.run
    if name == "scaleout":
        from benchmarks import scaleout

        return scaleout.run
    raise ValueError(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")


def run_section(name: str, quick: bool, workdir: Path) -> SectionResult:
    before = machine_context()
    t0 = time.monotonic()
    try:
        result = _runner(name)(quick, workdir)
    except Exception as exc:  # noqa: BLE001 - reported as the section's error; the other sections still run
        result = SectionResult(name, name)
        result.error = f"{type(exc).__name__}: {exc}"
        result.details["traceback"] = traceback.format_exc()
    result.context = {"before": before, "after": machine_context(), "duration_s": round(time.monotonic() - t0, 3)}
    present = {f.name for f in result.figures}
    for missing in () if result.skipped else REQUIRED.get(name, ()):
        if missing not in present:
            result.add(missing, None, "", note="NOT MEASURED: " + (result.error or "figure missing"))
    return result


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value)}"
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:.0f}"


def render_table(sections: Sequence[SectionResult]) -> str:
    rows = [("section", "figure", "value", "unit", "target", "met")]
    for s in sections:
        if s.skipped:
            rows.append((s.name, "(skipped)", "", "", "-", s.skipped))
        for f in s.figures:
            met = "-" if f.met is None else ("yes" if f.met else "NO")
            if f.value is None:
                met = "MISSING"
            rows.append((s.name, f.name, _fmt(f.value), f.unit, f.target_text, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(c.rjust(widths[i]) if i == 2 else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_context(sections: Sequence[SectionResult]) -> str:
    out = []
    for s in sections:
        c = s.context
        out.append(
            f"{s.name:<9} {c['duration_s']:7.1f} s  loadavg(1m) before {c['before']['loadavg'][0]:.2f}, "
            f"after {c['after']['loadavg'][0]:.2f} on {c['before']['cpu_count']} CPUs"
            + (f"  ERROR: {s.error}" if s.error else "")
            + (f"  {s.skipped}" if s.skipped else "")
        )
    return "\n".join(out)


def misses(sections: Sequence[SectionResult]) -> list[Figure]:
    return [f for s in sections for f in s.figures if f.met is False or f.value is None]


def run_suite(*, quick: bool, only: Sequence[str] | None, out_dir: Path, keep_workdir: bool = False,
              out: Any = None) -> tuple[dict[str, Any], Path]:
    out = sys.stdout if out is None else out
    names = list(only) if only else list(SECTIONS)
    for n in names:
        if n not in SECTIONS:
            raise ValueError(f"unknown section {n!r}; known: {', '.join(SECTIONS)}")
    workdir = Path(tempfile.mkdtemp(prefix="chaosml-bench-"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    started = time.time()
    t0 = time.monotonic()
    results: list[SectionResult] = []
    try:
        for n in names:
            print(f"[bench] {n} ...", file=out, flush=True)
            r = run_section(n, quick, workdir)
            results.append(r)
            print(f"[bench] {n}: {len(r.figures)} figures in {r.context['duration_s']:.1f} s"
                  + (f"; ERROR {r.error}" if r.error else ""), file=out, flush=True)
    finally:
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - t0
    doc = {
        "schema": "chaosml.bench/1",
        "started_at": started,
        "finished_at": time.time(),
        "wall_s": round(total, 3),
        "mode": "quick" if quick else "full",
        "sections_run": names,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "sections": [r.to_dict() for r in results],
        "missed": [f.to_dict() for f in misses(results)],
        "workdir": str(workdir) if keep_workdir else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}{'-quick' if quick else ''}.json"
    path.write_text(json.dumps(doc, indent=1, default=str, allow_nan=False) + "\n")
    print(file=out)
    print(render_table(results), file=out)
    print(file=out)
    print(render_context(results), file=out)
    missed = misses(results)
    if missed:
        print("\nmissed targets / missing figures:", file=out)
        for f in missed:
            print(f"  {f.section}.{f.name} = {_fmt(f.value)} {f.unit} (target {f.target_text}): {f.note}", file=out)
    print(f"\n{sum(len(r.figures) for r in results)} figures in {total:.0f} s; written to {path}", file=out)
    return doc, path


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    only = [s.strip() for item in (args.only or []) for s in item.split(",") if s.strip()] or None
    doc, _ = run_suite(quick=args.quick, only=only, out_dir=Path(args.out_dir), keep_workdir=args.keep_workdir)
    return 3 if any(s["error"] for s in doc["sections"]) else 0
