"""Runs one experiment's plan: target up, load, faults on schedule, recovery always, journal. Called by the CLI and game-days.

The order of a run, and what ``finally`` guarantees whatever happens (error, Ctrl-C, SIGTERM, abort):

1. validate-time work is done already (the experiment is a frozen model, its plan built by
   :func:`chaosml.plan.build_plan`); build the payload pool;
2. construct the target, build every injector (their checks fail here, before anything starts),
   then start the target and wait until it is ready; start the load process;
3. walk ``Plan.steps``: apply and recover injections at their offsets from the load start,
   watching progress and abort conditions;
4. finally: recover every applied injection, run rollbacks, stop the load process, stop the target,
   write the journal. The caller renders the report from disk (:func:`chaosml.report.report_run`).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import IO, Any, cast

from chaosml.errors import (
    EXIT_ABORTED,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INVALID,
    EXIT_RECOVERY_FAILED,
    ChaosmlError,
    InvalidInputError,
    RecoveryError,
    RunAborted,
    TargetError,
)
from chaosml.faults.base import FaultContext, Injector, make_injector
from chaosml.hostload import HostLoadSampler
from chaosml.interrupts import Interrupted, SignalGuard
from chaosml.journal import (
    JOURNAL_FILE,
    SAMPLES_FILE,
    Journal,
    RunResult,
    samples_problem,
)
from chaosml.ledger import Ledger
from chaosml.model.catalog import OPERATORS
from chaosml.model.experiment import Experiment, FaultSpec
from chaosml.monitoring.watch import PROMETHEUS_FILE, RunMonitor
from chaosml.plan import Plan, build_plan, starting_what
from chaosml.procs import RUN_TOKEN_ENV, recording_spawns
from chaosml.progress import Progress
from chaosml.targets.capabilities import PrometheusEndpoint
from chaosml.workload.mapping import MappingError
from chaosml.workload.prepare import (
    Workload,
    prepare_workload,
    probe_mapping,
    request_body,
    response_fields,
    write_payloads,
)

#: How long after the planned load end the load process may take to finish on its own.
LOAD_GRACE_S = 20.0
#: A wait-ready rollback asks the target in slices this long (seconds), so that an interrupt cuts it short.
WAIT_SLICE_S = 0.5
#: SLIs that abort conditions can watch live (from the load process's progress lines).
LIVE_SLIS = {"success_ratio": "success_ratio", "latency_p99_ms": "p99_ms", "throughput_rps": "rps"}

__all__ = ["Progress", "RunResult", "Runner", "make_target", "new_run_id"]

TargetFactory = Callable[[Experiment, Path, Callable[[Any], None]], Any]


def new_run_id(experiment: Experiment, reports_dir: Path) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", experiment.title.lower()).strip("-")[:40] or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    run_id, n = base, 1
    while (reports_dir / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def make_target(
    experiment: Experiment, run_dir: Path, on_event: Callable[[Any], None], *, allow_context: str | None = None
) -> Any:
    """The target adapter for ``experiment.target.platform``, constructed but not started.

    ``allow_context`` is ``chaosml run --allow-context NAME``: it confirms ``allow_any_context`` of a
    kubernetes target for that one context.
    """
    spec = experiment.target
    if spec.platform == "local" and spec.stack == "custom":
        from chaosml.targets.services import ServicesTarget

        return ServicesTarget(
            spec, run_dir / "target", on_event=on_event, served_by_exposed=experiment.response.served_by != "not-exposed"
        )
    if spec.platform == "local":
        from chaosml.targets.local import LocalTarget

        return LocalTarget(
            run_dir=run_dir / "target",
            profile=spec.profile,
            replicas=spec.replicas,
            restart_delay_s=spec.restart_delay,
            dataset=experiment.load.dataset,
            seed=experiment.load.seed,
            on_event=on_event,
            prometheus=mon.prometheus if (mon := experiment.monitoring) is not None and mon.prometheus.local else None,
        )
    if spec.platform == "kubernetes":
        from chaosml.targets.kubernetes import ENTRY_URL_ENV, KubernetesTarget

        return KubernetesTarget(
            spec.kubernetes,
            allow_context=allow_context,
            entry_url=os.environ.get(ENTRY_URL_ENV) or None,
            on_event=on_event,
            run_dir=run_dir / "target",
            seed=experiment.load.seed,
            custom=spec if spec.stack == "custom" else None,
            served_by_exposed=experiment.response.served_by != "not-exposed",
        )
    raise TargetError(f"target platform {spec.platform!r} is not available yet")


class Runner:
    """Runs one experiment once, walking its plan. ``run()`` returns a RunResult; it never leaves a
    fault applied unless it raises RecoveryError, whose message says what is left.

    ``experiment_source`` is the text that was validated into ``experiment`` (kept in the journal
    for humans; readers use the normalised experiment stored beside it). ``plan`` defaults to
    ``build_plan(experiment)``. ``self.result`` holds the outcome also when ``run()`` raises.
    ``signals`` is the SIGINT/SIGTERM guard of the run; by default the runner installs its own for the
    duration of ``run()`` (the CLI passes one it keeps installed while the report is written).
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        experiment_file: str,
        experiment_source: str,
        reports_dir: Path = Path("reports"),
        out: IO[str] | None = None,
        target_factory: TargetFactory | None = None,
        allow_context: str | None = None,
        ledger: Ledger | None = None,
        plan: Plan | None = None,
        signals: SignalGuard | None = None,
    ):
        self.ledger = ledger or Ledger()
        state = self.ledger.read()
        for problem in state.problems:  # said, never skipped in silence; `chaosml rollback` lists them too
            print(f"warning: ledger: {problem}", file=out)
        stale = [e for e in state.entries if e.stale]
        if stale:
            raise RecoveryError(
                f"the rollback ledger ({self.ledger.path}) has {len(stale)} entr{'y' if len(stale) == 1 else 'ies'} "
                f"that no running harness will undo: {'; '.join(f'{e.describe()} ({e.why()})' for e in stale[:5])}. "
                "Run `chaosml rollback` to undo them from their records and clear them (or `chaosml run --rollback-first`)."
            )
        self.experiment = experiment
        self.plan = plan if plan is not None else build_plan(experiment)
        self.reports_dir = reports_dir
        self.run_id = new_run_id(experiment, reports_dir)
        self.run_dir = reports_dir / self.run_id
        # The run dir appears with its journal in it (made in a hidden staging dir, then renamed), so a
        # harness killed at any moment never leaves a run dir that says nothing about its run.
        staging = reports_dir / f".{self.run_id}.{os.urandom(3).hex()}.new"
        try:  # nothing has started: a reports dir that cannot be written is the user's to fix (exit 4)
            staging.mkdir(parents=True)
            self.journal = Journal(staging, self.run_id, experiment, experiment_file, experiment_source)
            staging.rename(self.run_dir)
        except OSError as exc:
            raise InvalidInputError(
                f"reports dir {reports_dir}: cannot write {self.run_dir}: {exc.strerror or exc} "
                "(read-only, full, or not a directory?); give a writable --reports-dir. Nothing was injected."
            ) from None
        self.journal.moved_to(self.run_dir)
        self.progress = Progress(out if out is not None else sys.stderr, experiment.load.duration)
        self.target_factory = target_factory or partial(make_target, allow_context=allow_context)
        self.signals = signals or SignalGuard()
        self._own_signals = signals is None
        self.result: RunResult | None = None
        self.target: Any = None
        self._target_started = False
        self._target_ready = False  # start() returned: a failed start has stopped its processes, nothing to wait for
        self.load_proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._stats: dict[str, Any] = {}
        self._applied: dict[tuple[str, int], Injector] = {}
        self._ledger_ids: dict[tuple[str, int], str] = {}
        self._target_entry: str | None = None
        self._spawns = ExitStack()  # while the target entry is open, every process the run starts is recorded under it
        self._unrecovered: list[str] = []  # injections whose recover reported failure (their entries stay open)
        self.token = f"{self.run_id}-{os.urandom(4).hex()}"
        self._injectors: dict[str, Injector] = {}
        self._abort_since: dict[int, float] = {}
        self._workload: Workload | None = None  # what the load sends (chaosml.workload.prepare)
        self._monitor: RunMonitor | None = None  # experiments with monitoring: (chaosml.monitoring.watch)
        self._host: HostLoadSampler | None = None  # host load while the load runs (chaosml.hostload)

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        self.signals.install()
        try:
            return self._run()
        finally:
            if self._own_signals:
                self.signals.restore()

    def _run(self) -> RunResult:
        status, reason = "completed", None
        error: dict[str, str] | None = None
        recovery_errors: list[str] = []
        try:
            self._prepare_payloads()  # data and template problems: exit 4 before anything starts
        except InvalidInputError as exc:
            self.journal.update(status="invalid", reason=str(exc), ended_at=time.time(), exit_code=EXIT_INVALID)
            self.journal.flush(force=True)
            raise
        except Interrupted as exc:  # nothing started yet: nothing to recover
            self.result = RunResult(self.run_dir, "aborted", EXIT_ABORTED, f"interrupted by {exc} before the target started")
            self.journal.update(status="aborted", reason=self.result.reason, ended_at=time.time(), exit_code=EXIT_ABORTED)
            self.journal.flush(force=True)
            self.progress.message(f"run aborted: {self.result.reason}")
            return self.result
        try:
            try:
                self._build_target()
                self._build_injectors()  # an injector that cannot work on this target stops the run here
                self._start_target()
                self._probe_mapping()
                self._start_load()
                self._drive()
            finally:
                self.signals.finish()  # from here on a signal cuts nothing: recovery, teardown and journal complete
        except Interrupted as exc:
            status, reason = "aborted", f"interrupted by {exc}"
        except RunAborted as exc:
            status, reason = "aborted", str(exc)
        except TargetError as exc:
            status, reason = "failed", f"target error: {exc}"
            error = _error_record(exc)
        except InvalidInputError as exc:  # e.g. ProbeAnswerError: the server's answers are no model output
            if self.journal.data["fault_events"]:  # not before anything was injected: a run failure
                status, reason, error = "failed", f"{type(exc).__name__}: {exc}", _error_record(exc)
            else:
                status, reason = "invalid", f"{exc}; nothing was injected"
        except Exception as exc:  # noqa: BLE001 - recorded (with its traceback), recovered, reported as a run failure
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
            error = _error_record(exc)
        finally:
            recovery_errors = self._recover_all()
            recovery_errors = self._unrecovered + recovery_errors
            self._run_rollbacks()
            self._stop_load()
            if self._monitor is not None:  # before the target stops: a local Prometheus goes with it
                load = self.journal.data.get("load") or {}
                problem = self._monitor.finish(self.run_dir, load.get("started_at"), load.get("ended_at"))
                if problem:
                    self.progress.message(f"monitoring: {problem}")
            self._record_host_load()
            self._stop_target()
        if recovery_errors:
            status, reason = "failed", "; ".join(recovery_errors)
        elif self.journal.write_error and status == "completed":  # e.g. the disk filled up at the very end
            status, reason = "aborted", self._write_error_reason()
        missing = samples_problem(self.run_dir / SAMPLES_FILE, self.journal.data) if self.load_proc is not None else None
        if missing:  # load was sent but samples.csv is gone or empty: said in the console and the journal
            reason = f"{reason}; {missing}" if reason else missing
        if recovery_errors:
            code = EXIT_RECOVERY_FAILED
        elif status == "aborted":
            code = EXIT_ABORTED
        elif status == "invalid":
            code = EXIT_INVALID
        elif status == "failed":
            code = EXIT_INTERNAL  # the run itself broke (load process died, ...); faults were recovered
        else:
            code = EXIT_FAILED  # until the verdicts say otherwise (chaosml.report.report_run settles it)
        self.journal.update(status=status, reason=reason, ended_at=time.time(), exit_code=code, error=error)
        self.journal.flush(force=True)
        self.journal.sync_samples()
        if reason:
            self.progress.message(f"run {status}: {reason}")
        self.result = RunResult(self.run_dir, status, code, reason)
        if recovery_errors:
            raise RecoveryError(
                "could not recover: " + "; ".join(recovery_errors) + f" (journal: {self.run_dir / JOURNAL_FILE})"
            )
        if status == "failed" and reason and reason.startswith("target error"):
            raise TargetError(reason.removeprefix("target error: "))
        return RunResult(self.run_dir, status, code, reason)

    # ------------------------------------------------------------- phases
    def _build_target(self) -> None:
        """The target object, constructed but not started (injectors are built against it first)."""
        self.target = self.target_factory(self.experiment, self.run_dir, self.journal.add_target_event)

    def _build_injectors(self) -> None:
        """One injector per fault, built before the target starts; a fault that cannot work stops the run."""
        exp = self.experiment
        for spec in exp.faults:
            try:
                self._injectors[spec.name] = make_injector(spec, self.target, FaultContext(exp.load.seed, self.run_dir))
            except ChaosmlError:
                raise
            except Exception as exc:  # an injector's own check, said as a target error (nothing started)
                raise TargetError(
                    f"fault {spec.name!r} ({spec.type}) cannot be injected on this target: {type(exc).__name__}: {exc}"
                ) from exc

    def _start_target(self) -> None:
        self.progress.message(f"starting target ({starting_what(self.experiment.target)}) ...")
        # Every process the run starts inherits the token, so `chaosml rollback` can find orphans.
        os.environ[RUN_TOKEN_ENV] = self.token
        with self.signals.critical("opening the target's ledger entry"):
            self._target_entry = self.ledger.open(
                run_id=self.run_id,
                run_dir=self.run_dir,
                kind="target",
                type=self.experiment.target.platform,
                record={"token": self.token, "run_dir": str(self.run_dir.resolve())},
            )
            self._spawns.enter_context(recording_spawns(self.token, partial(self.ledger.spawned, self._target_entry)))
            self._target_started = True
        self.target.start()
        self._target_ready = True
        self.journal.update(target=self.target.describe())
        self.journal.flush()
        mon = self.experiment.monitoring
        if mon is not None:  # poll the alerts from now on (chaosml.monitoring.watch)
            url = mon.prometheus.url or cast(PrometheusEndpoint, self.target).prometheus_url
            if url is None:
                raise TargetError("monitoring.prometheus.local: this target started no Prometheus")
            self._monitor = RunMonitor(url, mon, self.experiment.steady_state.window, self.journal.add_target_event)
            self.journal.update(prometheus_file=PROMETHEUS_FILE)
            self._monitor.start()

    def _prepare_payloads(self) -> None:
        """What the run sends (chaosml.workload.prepare); data and template problems are exit 4."""
        self._workload = prepare_workload(self.experiment, self.journal.data.get("experiment_file") or "experiment")
        if self._workload.file_cohorts is not None:  # which file cohorts existed and their weights (the report says so)
            self.journal.update(file_cohorts=self._workload.file_cohorts)

    def _probe_mapping(self) -> None:
        """A few clean requests once the target is ready: the mapping must fit the server's answers (else exit 3)."""
        if self._workload is None:
            return
        try:
            results = probe_mapping(self.experiment, self._workload, self.target.entry_url)
        except MappingError as exc:
            raise TargetError(f"the server answered unexpectedly before the load (nothing injected): {exc}") from None
        if results is None:
            return
        self.journal.update(probes=results)
        self.progress.message(f"mapping checked with {len(results)} probe request(s): {results[0] if results else ''}")

    def _start_load(self) -> None:
        from chaosml.load.config import LoadConfig, start_load

        load = self.experiment.load
        if self._workload is None:
            self._prepare_payloads()
        assert self._workload is not None
        payloads_file = write_payloads(self.run_dir / "payloads.json", self._workload)
        exp = self.experiment
        custom = exp.target.stack == "custom" or exp.request != type(exp.request)() or exp.response != type(exp.response)()
        config = LoadConfig(
            target_url=self.target.entry_url,
            path=exp.request.path,
            method=exp.request.method,
            headers=dict(exp.request.headers) or None,
            response=response_fields(exp) if custom else None,
            request_body=request_body(exp),
            users=load.users,
            spawn_rate=load.spawn_rate,
            duration_s=load.duration,
            rate_per_user=load.rate_per_user,
            request_timeout_s=load.request_timeout,
            mix=dict(self._workload.mix),
            payloads_file=str(payloads_file),
            samples_file=str(self.run_dir / SAMPLES_FILE),
            seed=load.seed,
            control_file=str(self.run_dir / "load-control.json"),
            stages=None if load.shape is None else [[st.end, st.users, st.spawn_rate] for st in load.shape.stages],
            locustfile=None if load.locustfile is None else str(Path(load.locustfile).resolve()),
        )
        self.progress.message(
            f"driving load: {load.users} users for {load.duration:.0f}s against {self.target.entry_url}"
        )
        self.load_proc = start_load(config, str(self.run_dir / "load-config.json"))
        self._reader = threading.Thread(target=self._read_lines, args=(self.load_proc,), daemon=True)
        self._reader.start()

    def _read_lines(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._lines.put(line)

    def _wait_load_start(self, timeout_s: float = 30.0) -> float:
        """The load start (epoch) as the load process recorded it before its first request, from its first progress line.

        ``time.time() - elapsed_s`` on receipt would be late by the pipe's delay, and a request sent in
        that gap fell before the recorded start (the report counted one request fewer than the console).
        """
        from chaosml.load.config import parse_progress

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.load_proc is not None
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                if self.load_proc.poll() is not None:
                    raise RuntimeError(f"load process exited with code {self.load_proc.returncode} before sending load") from None
                continue
            msg = parse_progress(line)
            if msg and msg.get("type") == "progress":
                self._stats = msg
                started = msg.get("started_at")
                if isinstance(started, (int, float)) and not isinstance(started, bool):
                    return float(started)
                return time.time() - float(msg.get("elapsed_s", 0.0))  # a load process that does not say its start
        raise RuntimeError(f"load process sent no progress within {timeout_s:.0f}s")

    def _drive(self) -> None:
        exp = self.experiment
        t0 = self._wait_load_start()
        self._host = host = HostLoadSampler()
        host.loadgen(self._stats)  # the first progress line, read by _wait_load_start
        self.journal.update_load(started_at=t0)
        self.journal.update(timeline=[
            {"fault": i.fault, "type": i.type, "injection": i.index - 1, "planned_start": t0 + i.start, "planned_end": t0 + i.end}
            for i in self.plan.injections
        ])
        self.journal.flush()
        steps = list(self.plan.steps)  # in the plan's order; each is due at t0 + step.at

        hard_end = t0 + exp.load.duration + LOAD_GRACE_S
        assert self.load_proc is not None
        while True:
            now = time.time()
            while steps and t0 + steps[0].at <= now:
                step = steps.pop(0)
                spec = exp.fault(step.fault)
                if step.action == "apply":
                    self._apply(spec, step.injection, planned=t0 + step.at)
                else:
                    self._recover(spec, step.injection, planned=t0 + step.at)
            self._drain_progress()
            host.sample()
            self.progress.show(self._phase(now - t0), now - t0, self._stats)
            self._check_abort()
            if self.load_proc.poll() is not None:
                break
            if now > hard_end:
                raise RuntimeError(f"load process still running {LOAD_GRACE_S:.0f}s after the planned end")
            wait = 0.1 if not steps else max(0.0, min(0.1, t0 + steps[0].at - time.time()))
            time.sleep(wait)
        self._drain_progress()
        self.journal.update_load(ended_at=time.time(), requests=int(self._stats.get("requests", 0)))
        if self.load_proc.returncode != 0:
            raise RuntimeError(f"load process exited with code {self.load_proc.returncode}")
        if steps and any(s.action == "apply" for s in steps):
            raise RuntimeError("load ended before every fault was injected")
        self.progress.message(f"load finished: {self._stats.get('requests', 0)} requests")

    def _phase(self, elapsed: float) -> str:
        active = sorted(f"{name}#{i + 1}" for (name, i) in self._applied)
        if active:
            return "fault " + ",".join(active)
        if not self.journal.data["fault_events"]:
            return "baseline"
        return "recovery/after"

    def _apply(self, spec: FaultSpec, injection: int, planned: float) -> None:
        with self.signals.critical(f"apply {spec.name} #{injection + 1}"):  # ledger entry and apply: never one without the other
            self._apply_now(spec, injection, planned)

    def _apply_now(self, spec: FaultSpec, injection: int, planned: float) -> None:
        inj = self._injectors[spec.name]
        record = inj.undo_record(injection)
        self._ledger_ids[(spec.name, injection)] = self.ledger.open(
            run_id=self.run_id,
            run_dir=self.run_dir,
            kind="fault",
            type=spec.type,
            record=record,
            fault=spec.name,
            injection=injection,
        )
        self._applied[(spec.name, injection)] = inj
        event = inj.apply(injection)
        event.detail["planned_at"] = planned
        self.journal.add_fault_event(event)
        self.progress.message(
            f"apply   {spec.name} #{injection + 1}/{spec.repeat.count} ({spec.type}): {', '.join(event.targets) or '-'}"
            + (f"; NO EFFECT: {event.no_effect}" if event.no_effect else "")
        )

    def _recover(self, spec: FaultSpec, injection: int, planned: float | None = None) -> None:
        with self.signals.critical(f"recover {spec.name} #{injection + 1}"):  # recover and ledger close: never cut
            self._recover_now(spec, injection, planned)

    def _recover_now(self, spec: FaultSpec, injection: int, planned: float | None) -> None:
        inj = self._applied.pop((spec.name, injection), None)
        if inj is None:
            return
        event = inj.recover(injection)
        if planned is not None:
            event.detail["planned_at"] = planned
        entry = self._ledger_ids.pop((spec.name, injection), None)
        if entry is not None and event.ok:
            self.ledger.close(entry, ok=True, detail="recovered")
        elif not event.ok:  # the fault may still be in place: its entry stays open, for `chaosml rollback`
            detail = json.dumps(event.detail, default=str)[:500]
            if entry is not None:
                self.ledger.recover_failed(entry, detail)
            self._unrecovered.append(
                f"{spec.name} #{injection + 1} ({spec.type}): its recover reported failure ({detail}); it may still be "
                "in place: `chaosml rollback` undoes it from the ledger's record"
            )
        self.journal.add_fault_event(event)
        self.progress.message(f"recover {spec.name} #{injection + 1}/{spec.repeat.count} ({spec.type}): ok={event.ok}")

    def _recover_all(self) -> list[str]:
        errors = []
        for name, injection in list(self._applied):
            spec = self.experiment.fault(name)
            try:
                self._recover(spec, injection)
            except Exception as exc:  # noqa: BLE001 - every injection gets its chance to recover
                self._applied.pop((name, injection), None)
                errors.append(f"{name} #{injection + 1}: {type(exc).__name__}: {exc}")
        return errors

    def _run_rollbacks(self) -> None:
        if not self._target_started:
            return
        for rb in self.experiment.rollbacks:
            started = time.time()
            ok, detail = False, ""
            try:
                if rb.type == "wait-ready":
                    ok, detail = self._wait_ready(float(rb.params.get("timeout", 30.0)))
            except Exception as exc:  # noqa: BLE001 - recorded in the journal
                detail = f"{type(exc).__name__}: {exc}"
            self.journal.add_rollback({"type": rb.type, "t": started, "ok": ok, "detail": detail, "duration_s": time.time() - started})

    def _wait_ready(self, timeout_s: float) -> tuple[bool, str]:
        """The wait-ready rollback: every group ready within ``timeout_s``; a signal (before or during) cuts it short."""
        if self.signals.interrupted:
            return False, "cut short: the run was interrupted"
        if not self._target_ready:  # a failed start stopped every process it started: waiting would only time out
            return False, "skipped: the target did not start (its processes were stopped), no replica to wait for"
        deadline = time.monotonic() + timeout_s
        pending = list(self.target.groups())
        while pending:
            if self.signals.interrupted:
                return False, f"cut short: the run was interrupted (not checked ready: {', '.join(pending)})"
            left = deadline - time.monotonic()
            if left <= 0:
                return False, f"not every replica ready within {timeout_s:.0f}s (not ready: {', '.join(pending)})"
            if self.target.wait_group_ready(pending[0], min(left, WAIT_SLICE_S)):
                pending.pop(0)
        return True, "every replica ready"

    def _drain_progress(self) -> None:
        from chaosml.load.config import parse_progress

        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            msg = parse_progress(line)
            if msg and msg.get("type") in ("progress", "done"):
                self._stats.update(msg)
                if self._host is not None:
                    self._host.loadgen(msg)

    def _record_host_load(self) -> None:
        """The host's load while the load ran (chaosml.hostload), into the journal; nothing when no load ran."""
        if self._host is None:
            return
        self._drain_progress()  # the done record carries the load process's CPU seconds
        host, self._host = self._host.finish(), None
        self.journal.update(host_load=host.to_dict())
        self.progress.message(f"host load: {host.describe()}")

    def _write_error_reason(self) -> str:
        return f"{self.journal.write_error} (is the reports dir full?); every applied fault was recovered"

    def _check_abort(self) -> None:
        if self.journal.write_error:  # the run cannot be recorded: stop it (the finally recovers every fault)
            raise RunAborted(self._write_error_reason())
        reason = getattr(self.target, "abort_reason", None)  # e.g. kubernetes: the kube context changed
        if reason:
            raise RunAborted(f"target: {reason}")
        now = time.time()
        for k, cond in enumerate(self.experiment.abort):
            key = LIVE_SLIS.get(cond.sli)
            value = self._stats.get(key) if key else None
            if value is None or not OPERATORS[cond.op](float(value), cond.target):
                self._abort_since.pop(k, None)
                continue
            since = self._abort_since.setdefault(k, now)
            if now - since >= cond.for_:
                raise RunAborted(f"abort condition held: {cond.sli} {cond.op} {cond.target} for {cond.for_:g}s (now {value:.4g})")

    def _stop_load(self) -> None:
        proc = self.load_proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)  # it ends at the pipe's EOF, now that the process is gone
        if proc.stdout is not None and (self._reader is None or not self._reader.is_alive()):
            proc.stdout.close()

    def _stop_target(self) -> None:
        try:
            if self._target_started:
                self.target.stop()
            if self._target_entry is not None:
                self.ledger.close(self._target_entry, ok=True, detail="target stopped")
        finally:
            self._spawns.close()
            if os.environ.get(RUN_TOKEN_ENV) == self.token:
                del os.environ[RUN_TOKEN_ENV]
            self.journal.flush(force=True)


def _error_record(exc: BaseException) -> dict[str, str]:
    """An error for the journal, with its traceback (``chaosml run --debug`` prints it)."""
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}
