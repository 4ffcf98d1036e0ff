"""The developer's tooling: `make test` provisions the browser of the status page's test."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "ensure-chromium"


def _tool(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def _run(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_make_test_and_ci_provision_chromium_through_one_script() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    lines = recipe.group(1).splitlines()
    assert ".ci/ensure-chromium" in lines[0] and "pytest" in lines[-1]
    assert "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_an_installed_browser_is_left_alone(tmp_path: Path) -> None:
    _tool(tmp_path, "chromium", "exit 0")
    _tool(tmp_path, "apt-get", f"echo called >> {tmp_path}/apt.log")

    result = _run(tmp_path)

    assert result.returncode == 0 and result.stdout == ""
    assert not (tmp_path / "apt.log").exists()


def test_root_with_apt_installs_debian_chromium(tmp_path: Path) -> None:
    _tool(tmp_path, "id", "echo 0")
    _tool(tmp_path, "apt-get", f'echo "$*" >> {tmp_path}/apt.log')

    result = _run(tmp_path)

    assert result.returncode == 0
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0].startswith("update")
    assert "install" in calls[1] and calls[1].split()[-1] == "chromium"


def test_without_root_it_warns_and_never_fails_the_build(tmp_path: Path) -> None:
    _tool(tmp_path, "id", "echo 1000")
    _tool(tmp_path, "apt-get", f"echo called >> {tmp_path}/apt.log")

    result = _run(tmp_path)

    assert result.returncode == 0
    assert "WARNING" in result.stdout and "browser test will skip" in result.stdout
    assert not (tmp_path / "apt.log").exists()
