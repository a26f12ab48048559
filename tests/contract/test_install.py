"""Installs are reproducible: every pin of pyproject.toml is in the lockfile the installer uses,
with hashes, and the Dockerfile, ./dev and pre-commit install or run exactly those files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _locked(name: str) -> dict[str, str]:
    """Package → version of one lockfile; fails on a requirement that carries no hash."""
    text = (ROOT / "requirements" / f"{name}.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    locked: dict[str, str] = {}
    for entry in entries:
        match = PIN.match(entry)
        assert match, f"not a pinned requirement in {name}.lock: {entry.splitlines()[0]}"
        assert "--hash=sha256:" in entry, f"{match.group(1)} has no hash in {name}.lock"
        locked[_canonical(match.group(1))] = match.group(2)
    return locked


def _canonical(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        match = PIN.match(requirement)
        assert match, f"pyproject.toml must pin exactly: {requirement}"
        pins[_canonical(match.group(1))] = match.group(2)
    return pins


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize(("lock", "requirements"), [
    ("runtime", PROJECT["dependencies"]),
    ("dev", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
])
def test_every_pin_of_pyproject_is_locked_at_the_same_version_with_hashes(
        lock: str, requirements: list[str]) -> None:
    locked = _locked(lock)
    for package, version in _pins(requirements).items():
        assert locked.get(package) == version, f"{package}=={version} is {locked.get(package)} in {lock}.lock"


def test_the_runtime_lock_carries_no_test_tool() -> None:
    locked = _locked("runtime")
    for tool in _pins(PROJECT["optional-dependencies"]["dev"]):
        assert tool not in locked


def test_the_image_and_dev_install_only_the_locked_files() -> None:
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    dev = (ROOT / "dev").read_text()
    for text, lock in ((dockerfile, "runtime"), (dev, "dev")):
        installs = re.findall(r"pip install[^\n]*", text)
        assert installs, "no pip install found"
        for line in installs:
            assert "--require-hashes" in line or "--no-deps" in line, f"installs unlocked versions: {line}"
        assert f"--require-hashes -r requirements/{lock}.lock" in text
        assert "--require-hashes -r requirements/build.lock" in text


def test_pre_commit_runs_the_checks_of_the_test_command() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    dev = (ROOT / "dev").read_text()
    for hook in hooks:
        assert hook["entry"].replace(".venv/bin/", "") in dev.replace(".venv/bin/", ""), hook["id"]
