"""The README's five-minute tour, run exactly as printed, in a fresh copy of the repository.

The commands are read out of README.md's `sh` blocks of the tour (steps 1 to 3), so the test
breaks when the README and the code drift apart. The copy holds what git tracks and a `.venv`
whose `bin/rebalance-bot` is the installed command, as after `make run`'s set-up; no data
directory, no earlier state. Step 1 (`make run`'s command) runs until its first cycle is done
and is stopped with Ctrl-C (SIGINT); every command must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).parent / "rebalance-bot"
pytestmark = pytest.mark.skipif(
    not COMMAND.exists(), reason="the rebalance-bot command is not installed beside this Python"
)


def _tour() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## A five-minute tour")
    return readme[start : readme.index("**4. Go live.**", start)]


def tour_commands() -> list[list[str]]:
    """Every command line of the tour's `sh` blocks, comments left out, as argv lists."""
    blocks = re.findall(r"```sh\n(.*?)```", _tour(), flags=re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                commands.append(argv)
    return commands


def tour_example() -> list[str]:
    """The lines of the first cycle the README shows, whitespace collapsed, `...` left out."""
    block = re.search(r"```\n(rebalance-bot: portfolio .*?)```", _tour(), flags=re.DOTALL)
    assert block is not None, "the tour shows the first cycle's output"
    return [" ".join(line.split()) for line in block.group(1).splitlines()]


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "rebalance-bot"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False, timeout=60
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no file list for a fresh copy")
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    (clone / ".venv" / "bin").mkdir(parents=True)
    (clone / ".venv" / "bin" / "rebalance-bot").symlink_to(COMMAND)
    return clone


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REBALANCE_")}


def _run_until_first_cycle_then_ctrl_c(argv: list[str], cwd: Path) -> list[str]:
    process = subprocess.Popen(
        argv, cwd=cwd, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("    after: "):
                break
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err[-2000:]
    return lines + rest.splitlines()


def test_the_readme_tour_runs_as_printed_in_a_fresh_clone(fresh_clone: Path) -> None:
    commands = tour_commands()
    assert len(commands) >= 8, commands
    assert all(argv[0] == ".venv/bin/rebalance-bot" for argv in commands), commands
    assert not (fresh_clone / "data").exists()

    first, *rest = commands
    assert first[1] == "run"  # `make run`
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "$(BIN)/rebalance-bot run --config $(CONFIG)" in makefile
    assert "CONFIG ?= " + first[first.index("--config") + 1] in makefile
    shown = _run_until_first_cycle_then_ctrl_c(first, fresh_clone)
    printed = [" ".join(line.split()) for line in shown]
    for expected in tour_example():
        if expected in ("...", "^C"):
            continue
        if expected.startswith(("[", "rebalance-bot: ")):  # a cycle id, a port, a duration
            pattern = re.escape(expected)
            pattern = re.sub(r"^\\\[\d{8}T\d{9}\\\]", r"\\[\\d{8}T\\d{9}\\]", pattern)
            pattern = pattern.replace(
                r"127\.0\.0\.1:8080", r"127\.0\.0\.1:\d+(, port 8080 was in use \(.*\))?"
            )
            pattern = re.sub(r"\d+s$", r"[\\dhms ]+", pattern)
            assert any(re.fullmatch(pattern, line) for line in printed), (expected, printed)
        else:
            assert expected in printed, (expected, printed)

    for argv in rest:
        result = subprocess.run(
            argv, cwd=fresh_clone, env=_environment(), capture_output=True, text=True,
            timeout=180, check=False,
        )  # fmt: skip
        assert result.returncode == 0, (argv, result.stderr[-2000:])
        assert "Traceback" not in result.stderr
    assert (fresh_clone / "trades.csv").read_text().count("\n") == 6  # header and 5 fills
    assert (fresh_clone / "report.html").stat().st_size > 10_000
