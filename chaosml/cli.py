"""The `chaosml` command: parses arguments, calls the library, maps exceptions to exit codes."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from chaosml import __version__
from chaosml.errors import (
    EXIT_ABORTED,
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INVALID,
    EXIT_OK,
    ChaosmlError,
    ExperimentError,
    InvalidInputError,
)


def _cmd_validate(args: argparse.Namespace) -> int:
    from chaosml.loader import load_experiment

    issues = []
    for f in args.files:
        try:
            load_experiment(f)
        except ExperimentError as exc:
            issues.extend(exc.issues)
            continue
        print(f"{f}: ok")
    if issues:
        for issue in issues:
            print(issue, file=sys.stderr)
        print(f"{len(issues)} problem(s) found", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _cmd_plan(args: argparse.Namespace) -> int:
    from chaosml.loader import load_experiment
    from chaosml.plan import build_plan, render_plan

    experiment = load_experiment(args.file)
    print(render_plan(build_plan(experiment)))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from chaosml.loader import load_experiment
    from chaosml.runner import Runner

    path = Path(args.file)
    experiment = load_experiment(path)
    runner = Runner(
        experiment,
        experiment_file=str(path),
        experiment_source=path.read_text(encoding="utf-8"),
        reports_dir=Path(args.reports_dir),
    )
    result = runner.run()
    report = result.run_dir / "report.md"
    print(f"run {result.status}: {result.run_dir}")
    if report.exists():
        print(f"report: {report} and {result.run_dir / 'report.html'}")
        _print_verdicts(result.run_dir)
    print(f"exit {result.exit_code}: {EXIT_CODES[result.exit_code]}")
    return result.exit_code


def _print_verdicts(run_dir: Path) -> None:
    import json

    path = run_dir / "analysis.json"
    if not path.exists():
        return
    analysis = json.loads(path.read_text())
    for v in analysis.get("verdicts", []):
        measured = v.get("measured")
        shown = "n/a" if measured is None else f"{measured:.4g}"
        print(
            f"  {v['verdict'].upper():<12} {v['name']:<28} {v['sli']} = {shown} "
            f"({v['op']} {v['target']:g}; n={v.get('samples')}) {v.get('scope', '')}"
        )


def _cmd_report(args: argparse.Namespace) -> int:
    from chaosml.report import render_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "journal.json").exists():
        raise InvalidInputError(f"{run_dir}: no journal.json here; give a run directory under reports/")
    render_report(run_dir)
    print(f"report: {run_dir / 'report.md'} and {run_dir / 'report.html'}")
    _print_verdicts(run_dir)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaosml",
        description="Chaos experiments for ML serving stacks.",
        epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"chaosml {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check experiment files; print every problem as file:line:col: field: message")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("plan", help="dry run: print the resolved timeline, targets and blast radius; injects nothing")
    p.add_argument("file")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("run", help="run an experiment and write reports/<run-id>/")
    p.add_argument("file")
    p.add_argument("--reports-dir", default="reports", help="where run directories go (default: reports)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("report", help="re-render a run's report from its journal and samples")
    p.add_argument("run_dir")
    p.set_defaults(func=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ExperimentError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(f"{len(exc.issues)} problem(s) found; nothing was run", file=sys.stderr)
        return exc.exit_code
    except ChaosmlError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"chaosml: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("chaosml: interrupted", file=sys.stderr)
        return EXIT_ABORTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"chaosml: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
