"""The CLI turns bad input into located errors and exit 4, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaosml.cli import main
from chaosml.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]


def test_validate_ships_valid_experiments(capsys) -> None:  # type: ignore[no-untyped-def]
    files = sorted(str(p) for p in (ROOT / "experiments").glob("*.yaml"))
    assert files
    assert main(["validate", *files]) == 0


def test_validate_reports_every_problem_and_exits_4(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "title: bad\n"
        "load:\n"
        "  users: many\n"
        "  duraton: 10s\n"
        "faults:\n"
        "  - name: k\n"
        "    type: pod-kil\n"
        "    at: 1s\n"
        "    duration: 2s\n"
    )
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 3, proc.stderr
    assert any(":4:" in line and "load.users" in line for line in lines)
    assert any(":5:" in line and "duraton" in line and "did you mean" in line for line in lines)
    assert any(":8:" in line and "pod-kill" in line for line in lines)


def test_run_with_invalid_file_injects_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntitle: [unclosed\n")
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "run", str(bad), "--reports-dir", str(reports)], capture_output=True, text=True
    )
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert not reports.exists()


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "validate", str(tmp_path / "nope.yaml")], capture_output=True, text=True
    )
    assert proc.returncode == 4
    assert "nope.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_readme_commands_and_exit_codes_match_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/test" in readme and "bash .ci/test" in ci
    assert "bash .ci/demo" in readme
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme, code


def _chaosml(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaosml.cli", *args], check=False, capture_output=True, text=True, timeout=60,
                          env=env)


def test_usage_errors_exit_4_not_2() -> None:
    # issue 14 item 13: argparse exits 2, which the README reserves for "interrupted; every fault recovered".
    for argv in ((), ("validate",), ("run",), ("nosuchcommand",)):
        proc = _chaosml(*argv)
        assert proc.returncode == 4, (argv, proc.stderr)
        assert "usage:" in proc.stderr and "Traceback" not in proc.stderr
    assert _chaosml("--help").returncode == 0


HIDE_KUBERNETES = """\
import runpy, sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == "kubernetes" or name.startswith("kubernetes."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Hide())
sys.argv = ["chaosml", *sys.argv[1:]]
runpy.run_module("chaosml.cli", run_name="__main__")
"""


def test_cluster_commands_without_the_kubernetes_extra_say_what_to_install(tmp_path: Path) -> None:
    # issue 14 item 13: `cluster status` printed "internal error: ModuleNotFoundError".
    import os

    script = tmp_path / "hide.py"
    script.write_text(HIDE_KUBERNETES)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kind-chaosml\n"
        "clusters: [{name: kind-chaosml, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "contexts: [{name: kind-chaosml, context: {cluster: kind-chaosml, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": "/nonexistent"}
    for sub in ("status", "up"):
        proc = subprocess.run([sys.executable, str(script), "cluster", sub, "--no-build"][: 4 if sub == "status" else 5],
                              check=False, capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 3, proc.stderr
        assert "pip install 'chaosml[kubernetes]'" in proc.stderr, proc.stderr
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_unwritable_reports_dir_is_invalid_input_with_the_path(tmp_path: Path) -> None:
    # issue 14 item 13: a reports dir that cannot be written was "internal error: NotADirectoryError" (exit 3).
    exp = tmp_path / "exp.yaml"
    exp.write_text((ROOT / "tests" / "e2e" / "short.yaml.tmpl").read_text().format(profile="hardened", duration="20s"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = _chaosml("run", str(exp), "--reports-dir", str(blocker / "reports"))
    assert proc.returncode == 4, proc.stderr
    assert f"{blocker / 'reports'}" in proc.stderr and "internal error" not in proc.stderr


def test_report_into_an_unwritable_run_dir_is_invalid_input_with_the_path(tmp_path: Path) -> None:
    # issue 14 item 13: a run dir where the report cannot be written is the user's environment (exit 4, the
    # path named), not "internal error". Root ignores file modes, so the file is blocked by a directory.
    import shutil

    for f in ("journal.json", "samples.csv"):
        shutil.copy(ROOT / "tests" / "compare" / "fixtures" / "naive" / f, tmp_path / f)
    (tmp_path / "analysis.json").mkdir()
    proc = _chaosml("report", str(tmp_path))
    assert proc.returncode == 4, proc.stderr
    assert str(tmp_path / "analysis.json") in proc.stderr and "internal error" not in proc.stderr
