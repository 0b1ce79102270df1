"""The `chaosml` command: parses arguments, calls the library, maps exceptions to exit codes."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from chaosml import __version__
from chaosml.errors import (
    EXIT_ABORTED,
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INVALID,
    EXIT_OK,
    ChaosmlError,
    ExperimentError,
    InvalidInputError,
)
from chaosml.interrupts import Interrupted  # stdlib only

if TYPE_CHECKING:
    from chaosml.runner import Runner


def _cmd_validate(args: argparse.Namespace) -> int:
    from chaosml.analysis.delivery import ramp_warning
    from chaosml.gameday import load_gameday
    from chaosml.loader import GameDayFileError, load_experiment
    from chaosml.plan import build_plan, short_search_warnings

    issues = []
    for f in args.files:
        try:
            experiment = load_experiment(f)
        except GameDayFileError:
            try:
                gameday = load_gameday(f)  # validated as what it is, with its experiments
            except ExperimentError as exc:
                issues.extend(exc.issues)
                continue
            print(f"{f}: ok (a game-day of {len(gameday.experiments)} experiment(s); run it with chaosml gameday run {f})")
            continue
        except ExperimentError as exc:
            issues.extend(exc.issues)
            continue
        print(f"{f}: ok")
        # the warnings `plan` prints: valid, but most of the run ramps up / a hypothesis its search cannot fail
        for warning in [w for w in (ramp_warning(experiment.load),) if w] + short_search_warnings(build_plan(experiment)):
            print(f"{f}: {warning}", file=sys.stderr)
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
    plan = build_plan(experiment)
    text = render_plan(plan)
    if experiment.target.platform == "kubernetes" and not getattr(args, "offline", False):
        text = text.rstrip("\n").removesuffix("dry run: nothing was injected").rstrip("\n")
        text += "\n\n" + "\n".join(_plan_on_cluster(plan, experiment, args)) + "\n\ndry run: nothing was injected\n"
    print(text, end="")
    return EXIT_OK


def _plan_on_cluster(plan: object, experiment: object, args: argparse.Namespace) -> list[str]:
    """Resolved pods and blast radius on the reachable cluster; a refused context raises (exit 3)."""
    from chaosml.errors import TargetError
    from chaosml.plan import resolve_on_cluster
    from chaosml.targets.kubernetes import ContextNotAllowedError, KubernetesTarget

    spec = experiment.target  # type: ignore[attr-defined]
    target = KubernetesTarget(spec.kubernetes, allow_context=args.allow_context, custom=spec if spec.stack == "custom" else None)
    try:
        target.resolve()
        return resolve_on_cluster(plan, target)  # type: ignore[arg-type]
    except ContextNotAllowedError:
        raise
    except TargetError as exc:
        where = f"context {target.context}, namespace {target.namespace}: " if target.context else ""
        return [f"cluster: {where}nothing resolved ({exc}); `chaosml plan --offline` skips this"]
    finally:
        target.stop()


def _cmd_run(args: argparse.Namespace) -> int:
    from chaosml.interrupts import SignalGuard
    from chaosml.loader import load_experiment_text, read_experiment_text
    from chaosml.runner import Runner

    path = Path(args.file)
    text = read_experiment_text(path)  # read once: the text validated is the text journaled
    experiment = load_experiment_text(text, str(path))
    if args.rollback_first:
        _rollback(dry_run=False, include_live=False)
    signals = SignalGuard()  # installed by the run, kept while the report is written: Ctrl-C cuts neither short
    runner = Runner(
        experiment,
        experiment_file=str(path),
        experiment_source=text,
        reports_dir=Path(args.reports_dir),
        allow_context=args.allow_context or None,
        signals=signals,
    )
    try:
        return _run_and_report(runner, args.debug)
    finally:
        signals.release()


def _run_and_report(runner: Runner, debug: bool) -> int:
    from chaosml.errors import RecoveryError, TargetError
    from chaosml.report import report_run
    from chaosml.report.summary import failing_line

    try:
        result = runner.run()
    except (RecoveryError, TargetError):
        if runner.result is not None:
            report_run(runner.result)  # what was measured is still reported
        _print_run_error(runner.run_dir, debug)
        raise
    _print_run_error(result.run_dir, debug)
    result = report_run(result)
    report = result.run_dir / "report.md"
    print(f"run {result.status}: {result.run_dir}")
    analysis = None
    if report.exists():
        print(f"report: {report} and {result.run_dir / 'report.html'}")
        analysis = _print_verdicts(result.run_dir)
    # The last line of a failed run names what did not pass (the lines above have the figures).
    failing = failing_line(analysis) if analysis is not None and result.exit_code == EXIT_FAILED else ""
    print(f"exit {result.exit_code}: {failing or EXIT_CODES[result.exit_code]}")
    return result.exit_code


def _print_run_error(run_dir: Path, debug: bool) -> None:
    """With --debug: the traceback of the internal error that ended the run, as its journal keeps it."""
    from chaosml.journal import load

    if not debug:
        return
    error = load(run_dir).error
    if error is not None:
        print(error.traceback, end="", file=sys.stderr)


def _print_verdicts(run_dir: Path) -> dict[str, Any] | None:
    """One line per verdict (and per fault that took no effect); returns the analysis read, None without one."""
    import json

    path = run_dir / "analysis.json"
    if not path.exists():
        return None
    analysis: dict[str, Any] = json.loads(path.read_text())
    for fault, why in (analysis.get("no_effect") or {}).items():
        print(f"  NO EFFECT    fault {fault}: {why}; every verdict scoped to it is inconclusive")
    for v in analysis.get("verdicts", []):
        measured = v.get("measured")
        shown = "n/a" if measured is None else f"{measured:.4g}"
        print(
            f"  {v['verdict'].upper():<12} {v['name']:<28} {v['sli']} = {shown} "
            f"({v['op']} {v['target']:g}; n={v.get('samples')}) {v.get('scope', '')}"
        )
    return analysis


def _rollback(dry_run: bool, include_live: bool) -> int:
    from chaosml.errors import RecoveryError
    from chaosml.ledger import Ledger
    from chaosml.rollback import rollback

    ledger = Ledger()
    report = rollback(ledger, include_live=include_live, dry_run=dry_run)
    for line in report.undone:
        print(f"undone: {line}")
    for line in report.skipped:
        print(f"skipped: {line}")
    for line in report.problems:
        print(f"chaosml: ledger: {line}", file=sys.stderr)
    if report.problems:
        print("chaosml: ledger: every readable entry was handled; a line above that held an open entry may have left "
              "something behind: check what it names", file=sys.stderr)
    for line in report.warnings:
        print(f"chaosml: warning: {line}", file=sys.stderr)
    if report.failed:
        raise RecoveryError("could not undo:\n  " + "\n  ".join(report.failed) + f"\n(ledger: {ledger.path})")
    if not report.undone:
        print(f"nothing to roll back (ledger: {ledger.path})")
    return EXIT_OK


def _cmd_rollback(args: argparse.Namespace) -> int:
    return _rollback(dry_run=args.dry_run, include_live=args.include_live)


def _cmd_report(args: argparse.Namespace) -> int:
    from chaosml.journal import JOURNAL_FILE
    from chaosml.journal import load as load_journal
    from chaosml.report import render_report
    from chaosml.report.render import settled_exit_code

    run_dir = Path(args.run_dir)
    if not (run_dir / JOURNAL_FILE).exists():
        raise InvalidInputError(f"{run_dir}: no {JOURNAL_FILE} here; give a run directory under reports/")
    try:
        analysis = render_report(run_dir)
    except OSError as exc:  # read-only, full, or blocked: the user's environment, not a chaosml bug
        where = exc.filename2 or exc.filename or run_dir
        raise InvalidInputError(f"cannot render the report of {run_dir} there: {exc.strerror or exc}: {where}") from None
    if analysis.get("samples_problem"):
        print(f"chaosml: {analysis['samples_problem']}", file=sys.stderr)
    print(f"report: {run_dir / 'report.md'} and {run_dir / 'report.html'}")
    _print_verdicts(run_dir)
    record = load_journal(run_dir)  # the run's exit code policy, as `chaosml run` settles it
    code = settled_exit_code(record.status, record.exit_code, bool(analysis.get("passed")))
    print(f"exit {code}: {EXIT_CODES.get(code, 'unknown')}")
    return code


def _cmd_compare(args: argparse.Namespace) -> int:
    from chaosml.compare import (
        FailPolicy,
        Settings,
        compare_runs,
        failing_rows,
        parse_min_change,
        render_terminal,
        write_outputs,
    )
    from chaosml.errors import EXIT_FAILED

    baseline = list(args.baseline or [])
    candidate = list(args.candidate or [])
    positional = list(args.runs or [])
    if positional and not baseline and not candidate and len(positional) == 2:
        baseline, candidate = [positional[0]], [positional[1]]
    elif positional and not baseline:
        baseline = positional
    elif positional:
        raise InvalidInputError("give runs either as BASELINE CANDIDATE or with --baseline/--candidate, not both")
    if not baseline or not candidate:
        raise InvalidInputError("compare needs baseline and candidate runs: chaosml compare A B, or BASELINE... --candidate CANDIDATE...")
    if not 0.5 <= args.confidence < 1.0:
        raise InvalidInputError(f"--confidence {args.confidence}: must be in [0.5, 1)")
    if not 100 <= args.resamples <= 100_000:
        raise InvalidInputError(f"--resamples {args.resamples}: must be in [100, 100000]")
    policies = [FailPolicy.parse(p) for p in (args.fail_on or ["any"])]
    settings = Settings(
        resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
        min_samples=args.min_samples,
        min_injections=args.min_injections,
        min_change=parse_min_change(args.min_change or []),
    )
    comparison = compare_runs(baseline, candidate, settings)
    failing = failing_rows(comparison, policies, count_unreliable=args.count_unreliable)
    code = EXIT_FAILED if failing else EXIT_OK
    print(render_terminal(comparison, failing, show_all=args.all))
    if args.out:
        files = write_outputs(comparison, args.out, failing, code)
        print(f"wrote {files['markdown']}, {files['html']}, {files['json']}, {files['junit']}")
    print(f"exit {code}: " + ("a regression was found" if failing else "no regression under the --fail-on policy"))
    return code


def _cmd_gameday_run(args: argparse.Namespace) -> int:
    import datetime as dt

    from chaosml.gameday import blackout_reason, load_gameday, run_gameday

    gameday = load_gameday(args.file)
    if args.respect_blackouts and gameday.schedule is not None:
        why = blackout_reason(gameday.schedule, dt.datetime.now(dt.UTC))
        if why:
            print(f"game-day {gameday.name}: inside blackout {why}; nothing was run")
            return EXIT_OK
    result = run_gameday(gameday, Path(args.reports_dir))
    print(f"game-day {gameday.name}: {result.report_dir}")
    for o in result.outcomes:
        c = (o.analysis or {}).get("counts") or {}
        passed = f"{c.get('pass', 0)}/{sum(c.values())} verdicts passed" if c else "no verdicts"
        print(f"  {o.status.upper():<10} {o.entry.source:<40} exit {o.exit_code if o.exit_code is not None else '-'}  {passed}")
    score = result.score.get("score")
    print(f"resilience score: {'n/a' if score is None else f'{score:.1f}/100'} (Litmus-style: {result.score.get('litmus_score')})")
    print(f"report: {result.files['markdown']} and {result.files['html']}")
    print(f"exit {result.exit_code}: {EXIT_CODES[result.exit_code]}")
    return result.exit_code


def _cmd_gameday_schedule(args: argparse.Namespace) -> int:
    import datetime as dt

    from chaosml.gameday import load_gameday, render_cronjob, run_loop
    from chaosml.gameday.schedule import SystemClock, ThreadRun

    gameday = load_gameday(args.file)
    if gameday.schedule is None:
        raise InvalidInputError(f"{args.file}: no schedule: add schedule: {{cron: ...}} to the game-day file")
    if "kubernetes" in gameday.platforms:
        if gameday.platforms != {"kubernetes"}:
            raise InvalidInputError(f"{args.file}: mixes kubernetes and local experiments; a schedule runs one kind")
        text = render_cronjob(
            gameday,
            image=args.image or DEFAULT_CRONJOB_IMAGE,
            file_in_image=args.file_in_image or Path(args.file).as_posix(),
            api_version=args.api_version or "batch/v1",
            namespace=args.namespace,
            warn=lambda m: print(f"chaosml: warning: {m}", file=sys.stderr),
        )
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"wrote {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return EXIT_OK
    cronjob_only = [o for o, v in (("--image", args.image), ("--api-version", args.api_version), ("--namespace", args.namespace),
                                   ("--file-in-image", args.file_in_image), ("--out", args.out)) if v is not None]
    if cronjob_only:
        raise InvalidInputError(
            f"{args.file}: {', '.join(cronjob_only)} only apply to a game-day of kubernetes experiments, whose schedule is "
            f"written as a CronJob manifest; this one's experiments run on {', '.join(sorted(gameday.platforms))}, so "
            "`gameday schedule` runs it here as a foreground cron loop (bounded by --max-runs/--until)"
        )
    until = None
    if args.until:
        try:
            until = dt.datetime.fromisoformat(args.until)
        except ValueError:
            raise InvalidInputError(f"--until {args.until!r}: expected an ISO date-time like 2026-12-01T06:00") from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
    reports = Path(args.reports_dir)

    def start(_t: dt.datetime) -> ThreadRun:
        from chaosml.gameday import run_gameday

        return ThreadRun(lambda: run_gameday(load_gameday(args.file), reports).exit_code)

    result = run_loop(
        gameday.schedule,
        start,
        clock=SystemClock(),
        log=lambda m: print(f"[{dt.datetime.now(dt.UTC).strftime('%H:%M:%S')}] {m}", flush=True),
        max_runs=args.max_runs,
        until=until,
        preview=args.preview,
    )
    print(f"{len(result.started)} run(s) started, {len(result.skipped)} fire time(s) skipped")
    return result.exit_code


def _cmd_history(args: argparse.Namespace) -> int:
    from chaosml.history import list_runs, plot_history, render_table

    reports = Path(args.reports_dir)
    if not reports.is_dir():
        raise InvalidInputError(f"{reports}: no such reports directory")
    runs = list_runs(reports, release=args.release)
    if args.limit:
        runs = runs[-args.limit :]
    if not runs:
        print(f"no runs under {reports}" + (f" for release {args.release!r}" if args.release else ""))
        return EXIT_OK
    print(render_table(runs))
    if args.plot:
        print(f"plot: {plot_history(runs, Path(args.plot))}")
    return EXIT_OK


DEFAULT_CRONJOB_IMAGE = "chaosml:latest"

ALLOW_CONTEXT_HELP = (
    "kubernetes: confirm a kube context outside allowed_contexts (the experiment must also say "
    "allow_any_context: true); must name the context exactly"
)


def _cmd_cluster(args: argparse.Namespace) -> int:
    from chaosml import cluster

    return cluster.command(args.cluster_command, args)


def _cmd_init(args: argparse.Namespace) -> int:
    from chaosml.resources import starter_text, write_bundle

    if args.resources:
        dest = Path(args.path or ".")
        try:
            written = write_bundle(dest, overwrite=args.force)
        except FileExistsError as exc:
            raise InvalidInputError(f"{exc}: not overwritten (--force overwrites)") from None
        print(f"wrote {len(written)} files under {dest}: manifests/, kind-config.yaml, experiments/")
        print(f"  chaosml cluster up --manifests {dest / 'manifests'} --kind-config {dest / 'kind-config.yaml'}")
        return EXIT_OK
    path = Path(args.path or "experiment.yaml")
    if path.is_dir():
        path = path / f"{args.kind}.yaml"
    if path.exists() and not args.force:
        raise InvalidInputError(f"{path} exists: not overwritten (--force overwrites)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_text(args.kind, str(path)), encoding="utf-8")
    print(f"wrote {path} (a {args.kind} starter): edit it, then chaosml validate {path} && chaosml plan {path} && chaosml run {path}")
    return EXIT_OK


def _cmd_proxy(args: argparse.Namespace) -> int:
    from chaosml.proxy.__main__ import run

    return run(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from chaosml.bench import run_from_args

    return run_from_args(args)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which chaosml means as "interrupted": exit 4 (invalid input)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    p.add_argument("--allow-context", metavar="NAME", help=ALLOW_CONTEXT_HELP)
    p.add_argument("--offline", action="store_true", help="kubernetes: do not contact the cluster (no resolved pods)")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser(
        "init", help="write a commented starter experiment that validates as written (or, with --resources, chaosml's manifests)",
        description="Starters: reference (chaosml's own stack, runs as is), local-command (your server started by chaosml), "
                    "v2 (a V2/Open Inference Protocol server with http, grpc and metrics ports), kubernetes (your Deployment). "
                    "--resources writes manifests/, kind-config.yaml and the example experiments for editing.",
    )
    from chaosml.resources import STARTER_KINDS  # stdlib-only imports

    p.add_argument("path", nargs="?", metavar="PATH",
                   help="the experiment file (default experiment.yaml; a directory: <kind>.yaml in it); with --resources: the directory")
    p.add_argument("--kind", choices=STARTER_KINDS, default="reference", help="which starter (default reference)")
    p.add_argument("--resources", action="store_true", help="write manifests/, kind-config.yaml and experiments/ under PATH (default .)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("run", help="run an experiment and write reports/<run-id>/")
    p.add_argument("file")
    p.add_argument("--reports-dir", default="reports", help="where run directories go (default: reports)")
    p.add_argument("--rollback-first", action="store_true", help="undo what a crashed run left injected, then run")
    p.add_argument("--allow-context", metavar="NAME", help=ALLOW_CONTEXT_HELP)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("rollback", help="undo whatever a crashed or killed run left injected (from the ledger)")
    p.add_argument("--dry-run", action="store_true", help="say what would be undone; change nothing")
    p.add_argument(
        "--include-live", action="store_true", help="also undo entries of runs whose harness is still alive"
    )
    p.set_defaults(func=_cmd_rollback)

    p = sub.add_parser(
        "compare",
        help="compare releases: runs of a baseline against runs of a candidate; exit 1 on a regression",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""Re-analyse runs from their journal.json + samples.csv and compare every verdict, every fault
(MTTR, TTD, ready time) and every phase x cohort SLI. Several runs per side are pooled.

  chaosml compare reports/<naive-run> reports/<hardened-run>
  chaosml compare --baseline r1 r2 --candidate r3 r4 --out compare/

A row is improved/regressed only when the bootstrap interval of (candidate - baseline) excludes 0
AND |delta| exceeds the practical threshold max(abs, rel x |baseline|) (see --min-change); too
little data is inconclusive. A pass -> fail verdict flip is always a regression. Runs under very
different host load (load average per core more than 2x AND more than 0.5 apart) have their latency
rows marked "unreliable (host load)" instead of improved/regressed (see --count-unreliable).""",
        epilog="""--fail-on POLICY (repeatable; exit 1 when any policy is met):
  any                      any regressed row (default)
  flip                     only a hypothesis/SLO verdict that flipped pass -> fail
  delta:METRIC=THRESHOLD   a regressed METRIC row whose |delta| >= THRESHOLD (absolute, in the
                           metric's unit: 0.02 = 2 points of a ratio, 250 ms, 2 s), or
                           THRESHOLD% relative to the baseline; e.g. delta:mttr_s=2, delta:latency_p99_ms=25%
  none                     report only, exit 0
--min-change METRIC=VALUE[%] (repeatable) sets the practical threshold: VALUE absolute, VALUE% relative
  (defaults: ratios 0.01 abs; latencies 10 ms or 20%; mttr_s/ttd_s/ready_s 0.5 s or 20%).""",
    )
    p.add_argument("runs", nargs="*", metavar="RUN", help="run directories (or journal.json): BASELINE CANDIDATE, or baseline runs")
    p.add_argument("--baseline", nargs="+", metavar="RUN", help="baseline run directories")
    p.add_argument("--candidate", nargs="+", metavar="RUN", help="candidate run directories")
    p.add_argument("--out", metavar="DIR", help="write compare.md, compare.html, compare.json, junit.xml and plots here")
    p.add_argument("--fail-on", action="append", metavar="POLICY", help="any (default) | flip | delta:METRIC=THRESHOLD | none")
    p.add_argument("--min-change", action="append", metavar="METRIC=VALUE[%]", help="practical threshold of a metric")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval confidence (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--min-samples", type=int, default=20, help="fewer requests on a side: inconclusive (default 20)")
    p.add_argument("--min-injections", type=int, default=2, help="fewer injections on a side: inconclusive (default 2)")
    p.add_argument("--all", action="store_true", help="show every phase x cohort row in the terminal")
    p.add_argument("--count-unreliable", action="store_true",
                   help="latency deltas between runs under very different host load (load average per core > 2x and > 0.5 apart) "
                        "count under --fail-on as what they were judged (default: marked 'unreliable (host load)', never a regression)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("gameday", help="game-days: run a suite of experiments, or schedule it (CronJob or local loop)")
    gsub = p.add_subparsers(dest="gameday_command", required=True)
    g = gsub.add_parser("run", help="run every experiment of a game-day file; one report in reports/gameday-<ts>-<name>/")
    g.add_argument("file")
    g.add_argument("--reports-dir", default="reports", help="where the game-day report dir goes (default: reports)")
    g.add_argument("--respect-blackouts", action="store_true", help="exit 0 without running when now is inside a blackout")
    g.set_defaults(func=_cmd_gameday_run)
    g = gsub.add_parser(
        "schedule",
        help="kubernetes: print a CronJob manifest; local: a foreground cron loop (bounded by --max-runs/--until)",
        description="A game-day whose experiments all run on kubernetes is written out as a CronJob manifest "
                    "(--image, --api-version, --namespace, --file-in-image, --out); one whose experiments run on "
                    "the local target runs here as a foreground cron loop (--max-runs, --until, --preview, --reports-dir).",
    )
    g.add_argument("file")
    g.add_argument("--image", help=f"kubernetes game-days only: container image of the CronJob (default {DEFAULT_CRONJOB_IMAGE})")
    g.add_argument("--api-version", help="kubernetes game-days only: batch/v1 (default), or batch/v1beta1 for Kubernetes < 1.21")
    g.add_argument("--namespace", help="kubernetes game-days only: CronJob namespace (default: the experiments' namespace)")
    g.add_argument("--file-in-image", help="kubernetes game-days only: path of the game-day file inside the image (default: FILE as given)")
    g.add_argument("--out", help="kubernetes game-days only: write the CronJob manifest here instead of stdout")
    g.add_argument("--max-runs", type=int, help="local loop: stop after starting this many runs")
    g.add_argument("--until", help="local loop: stop at the first fire time after this ISO date-time (UTC unless it says)")
    g.add_argument("--preview", type=int, default=5, help="local loop: how many next fire times to log first (default 5)")
    g.add_argument("--reports-dir", default="reports", help="local loop: where game-day reports go")
    g.set_defaults(func=_cmd_gameday_schedule)

    p = sub.add_parser("history", help="list past runs under a reports dir; --plot FILE writes a trend PNG")
    p.add_argument("--reports-dir", default="reports", help="where to look (default: reports)")
    p.add_argument("--release", help="only runs of this release label")
    p.add_argument("--limit", type=int, help="only the last N runs")
    p.add_argument("--plot", metavar="FILE", help="write a PNG trend of MTTR and key SLIs over the runs")
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser("cluster", help="kind cluster with the reference stack for the kubernetes target: up | down | status")
    csub = p.add_subparsers(dest="cluster_command", required=True)
    c = csub.add_parser("up", help="create the kind cluster, build and load the image, apply manifests/, wait, seed")
    c.add_argument("--name", default="chaosml", help="kind cluster name (context kind-NAME; default chaosml)")
    c.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every Deployment (default 300)")
    c.add_argument("--no-build", action="store_true", help="do not build the image (it must be loaded already)")
    c.add_argument("--manifests", metavar="DIR", help="apply your own manifests from DIR instead of chaosml's (see chaosml init --resources)")
    c.add_argument("--kind-config", metavar="FILE", help="create the cluster from this kind config instead of chaosml's")
    c.set_defaults(func=_cmd_cluster)
    c = csub.add_parser("down", help="delete the kind cluster")
    c.add_argument("--name", default="chaosml")
    c.set_defaults(func=_cmd_cluster)
    c = csub.add_parser("status", help="nodes, deployments and ready counts of the chaosml namespace")
    c.add_argument("--name", default="chaosml")
    c.set_defaults(func=_cmd_cluster)

    p = sub.add_parser("bench", help="benchmark the harness itself (load, proxy, timing, analysis, e2e, scale-out)")
    from chaosml.bench import build_parser as add_bench_arguments  # stdlib-only imports

    add_bench_arguments(p)
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser(
        "proxy", help="run the fault proxy (Toxiproxy 2.x REST API) until Ctrl-C; same as python -m chaosml.proxy",
        description="TCP fault proxy serving the Toxiproxy 2.x REST API.",
    )
    from chaosml.proxy.__main__ import add_arguments as add_proxy_arguments  # stdlib-only imports

    add_proxy_arguments(p)
    p.set_defaults(func=_cmd_proxy)

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
    except (KeyboardInterrupt, Interrupted):
        print("chaosml: interrupted", file=sys.stderr)
        return EXIT_ABORTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"chaosml: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
