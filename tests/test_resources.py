"""Package data (issue 18 items 4 and 10): `chaosml init` starters validate as written; a wheel ships manifests, kind config and experiments."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chaosml.cli import main
from chaosml.cluster import STACK_MANIFESTS, cluster_files
from chaosml.errors import InvalidInputError
from chaosml.resources import STARTER_KINDS, bundle_files

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@pytest.mark.parametrize("kind", STARTER_KINDS)
def test_init_writes_a_starter_that_validates_as_written(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--kind", kind, f"{kind}.yaml"]) == 0
    text = (tmp_path / f"{kind}.yaml").read_text()
    assert text.startswith("# A starter experiment") and f"chaosml run {kind}.yaml" in text
    assert main(["validate", f"{kind}.yaml"]) == 0
    assert main(["plan", f"{kind}.yaml", *(["--offline"] if kind == "kubernetes" else [])]) == 0
    capsys.readouterr()
    assert main(["init", "--kind", kind, f"{kind}.yaml"]) == 4  # never overwritten without --force
    assert f"{kind}.yaml exists: not overwritten (--force overwrites)" in capsys.readouterr().err


def test_init_resources_then_cluster_files_from_the_user_dir(tmp_path: Path, capsys) -> None:
    assert main(["init", "--resources", str(tmp_path / "mine")]) == 0
    mine = tmp_path / "mine"
    assert (mine / "manifests" / "Dockerfile").is_file() and (mine / "experiments" / "gamedays" / "weekly.yaml").is_file()
    (mine / "manifests" / "zz-extra.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: chaosml}\n")
    files = cluster_files(mine / "manifests", mine / "kind-config.yaml")
    assert [p.name for p in files.manifests] == [*STACK_MANIFESTS, "zz-extra.yml"]  # the cron template is never applied
    assert files.kind_config == mine / "kind-config.yaml"
    with pytest.raises(InvalidInputError, match="--manifests .*/nope: no such directory"):
        cluster_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no \\*.yaml manifests in it"):
        cluster_files(tmp_path / "empty")


@pytest.mark.slow
def test_installed_from_a_wheel_outside_the_checkout(tmp_path: Path) -> None:
    src = tmp_path / "src"  # build from a copy: the checkout gets no build/ or egg-info
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv*", "reports", "build", "*.egg-info", "__pycache__",
                                                             ".*_cache", "tests", "benchmarks"))
    wheels = tmp_path / "wheels"
    subprocess.run([PYTHON, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)], check=True, timeout=300,
                   capture_output=True)
    (wheel,) = wheels.glob("chaosml-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    vpy = venv / "bin" / "python"
    site = Path(subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    deps = Path(subprocess.run([PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz-deps.pth").write_text(f"{deps}\n")  # the dependencies, not chaosml (its editable finder is not run)
    subprocess.run([PYTHON, "-m", "pip", "--python", str(vpy), "install", "--no-deps", "-q", str(wheel)], check=True, timeout=300,
                   capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHAOSML_KIND_CONFIG")}
    script = textwrap.dedent("""
        import chaosml, json
        from chaosml.cluster import cluster_files
        from chaosml.resources import checkout_root
        from chaosml.targets.kubernetes.kindconfig import default_kind_config
        from chaosml.gameday.schedule import TEMPLATE
        f = cluster_files()
        print(json.dumps({"module": chaosml.__file__, "checkout": str(checkout_root()), "manifests": [str(p) for p in f.manifests],
                          "kind_config": str(f.kind_config), "dockerfile": str(f.dockerfile), "default_kind": str(default_kind_config()),
                          "cron": str(TEMPLATE), "build_checkout": str(f.checkout)}))
    """)
    out = subprocess.run([str(vpy), "-c", script], cwd=work, env=env, check=True, capture_output=True, text=True, timeout=120).stdout

    got = json.loads(out)
    assert got["module"].startswith(str(site)) and got["checkout"] == "None" and got["build_checkout"] == "None"
    bundled = site / "chaosml" / "resources" / "bundled"
    assert got["manifests"] == [str(bundled / "manifests" / n) for n in STACK_MANIFESTS]
    top, copies = bundle_files(ROOT), bundle_files(bundled)  # the build hook (chaosml.resources.buildhook) copied every bundled file
    assert "manifests/stack.yaml" in top and "kind-config.yaml" in top and "experiments/quickstart.yaml" in top
    assert {rel: p.read_bytes() for rel, p in copies.items()} == {rel: p.read_bytes() for rel, p in top.items()}
    assert all(Path(p).is_file() for p in got["manifests"])
    assert got["kind_config"] == got["default_kind"] == str(bundled / "kind-config.yaml")
    assert got["dockerfile"] == str(bundled / "manifests" / "Dockerfile") and Path(got["dockerfile"]).is_file()
    assert got["cron"] == str(bundled / "manifests" / "gameday-cronjob.yaml") and Path(got["cron"]).is_file()
    chaosml_bin = venv / "bin" / "chaosml"
    for args in (["init", "--kind", "v2", "exp.yaml"], ["validate", "exp.yaml"], ["init", "--resources", "res"],
                 ["validate", "res/experiments/quickstart.yaml"]):
        proc = subprocess.run([str(chaosml_bin), *args], cwd=work, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    assert (work / "res" / "manifests" / "stack.yaml").read_bytes() == (ROOT / "manifests" / "stack.yaml").read_bytes()


def test_the_build_hook_loads_where_chaosml_is_not_importable(tmp_path: Path) -> None:
    """setuptools loads the cmdclass file by its path; in a clean build environment (the image's `pip install .`)
    no chaosml is importable, and the hook must still find the checkout it builds (it imports chaosml.resources)."""
    deps = subprocess.run([PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    script = textwrap.dedent(f"""
        import importlib.util, sys
        sys.path.append({deps!r})  # setuptools, without the .pth files (no editable chaosml finder)
        spec = importlib.util.spec_from_file_location("buildhook", {str(ROOT / "chaosml" / "resources" / "buildhook.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(sys.modules["chaosml"].__file__, module.BuildWithBundle.__name__)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([PYTHON, "-S", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(ROOT / "chaosml" / "__init__.py"), "BuildWithBundle"]
