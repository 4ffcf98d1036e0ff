"""What `run` and `once` tell the person (or the log shipper) watching them: the banner, each
cycle's line with the trading state, one closing line; a taken status port; quiet logs.

Each test drives the command line in-process against the embedded simulator.
"""

from __future__ import annotations

import json
import os
import pty
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.audit.writer import read_records
from bot.cli.main import main
from tests.integration.loop_support import write_config


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _config(tmp_path: Path, server: str = "enabled = false") -> Path:
    path = write_config(tmp_path)
    text = path.read_text(encoding="utf-8").replace(
        "[server]\nenabled = false", f"[server]\n{server}"
    )
    path.write_text(text, encoding="utf-8")
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def _audit(tmp_path: Path, event: str) -> list[dict]:
    return [
        r.record for r in read_records(tmp_path / "data" / "audit") if r.record["event"] == event
    ]


def test_a_taken_status_port_falls_back_to_a_free_one_and_the_banner_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], taken_port: int
) -> None:
    config = _config(tmp_path, f"enabled = true\nport = {taken_port}")

    code, out, err = _cli(capsys, "run", "--config", str(config), "--cycles", "1")

    assert code == 0, err
    banner = out[0]
    served = re.search(r"status on http://127\.0\.0\.1:(\d+)", banner)
    assert served is not None and int(served.group(1)) not in (taken_port, 0), banner
    assert f"port {taken_port} was in use" in banner and "REBALANCE_SERVER__PORT" in banner
    assert "Traceback" not in err


def test_a_status_address_that_cannot_be_bound_is_one_line_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, 'enabled = true\nhost = "192.0.2.1"\nport = 8080')  # TEST-NET-1

    code, out, err = _cli(
        capsys, "run", "--config", str(config), "--cycles", "1", "--log-format", "console"
    )

    assert code == 2 and out == []
    assert err.count("\n") == 1 and "server.host" in err and "server.port" in err
    assert "Traceback" not in err


def test_once_serves_no_status_page_and_its_banner_has_no_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], taken_port: int
) -> None:
    config = _config(tmp_path, f"enabled = true\nport = {taken_port}")

    code, out, err = _cli(
        capsys, "once", "--config", str(config), "--log-format", "json", "--log-level", "info"
    )

    assert code == 0, err
    banner = json.loads(out[0])
    assert banner["event"] == "bot_started" and banner["interval_seconds"] is None
    assert banner["status_url"] is None and banner["status_note"] is None
    assert "status_server_started" not in err and "status_port_in_use" not in err
    _, text_out, _ = _cli(capsys, "once", "--config", str(config))
    assert text_out[0].endswith("dry-run, one cycle"), text_out[0]
    assert "cycle every" not in text_out[0] and "status on" not in text_out[0]
    assert not any("stopped" in line or "done after" in line for line in text_out)


def test_a_halted_bot_says_halted_in_its_banner_and_on_every_cycle_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "HALT").write_text("maintenance\n")

    code, out, err = _cli(capsys, "run", "--config", str(config), "--cycles", "3")

    assert code == 0, err
    assert "HALTED" in out[0] and "kill switch" in out[0] and "resume" in out[0]
    cycle_lines = [line for line in out if line.startswith("[")]
    assert len(cycle_lines) == 3
    assert all(re.match(r"^\[\d{8}T\d{9}\] HALTED, ", line) for line in cycle_lines), cycle_lines
    assert _audit(tmp_path, "paper_fill") == []  # and nothing traded, even on paper
    assert out[-1].startswith("rebalance-bot: done after 3 cycles, 0 orders, ")


def test_a_halt_by_a_kill_switch_since_removed_says_so_and_that_resume_is_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    (tmp_path / "data").mkdir()
    switch = tmp_path / "data" / "HALT"
    switch.write_text("maintenance\n")
    code, out, err = _cli(capsys, "run", "--config", str(config), "--cycles", "1")
    assert code == 0, err
    assert (
        f"HALTED (kill switch: file {switch} is present): nothing is sent; remove the kill "
        "switch, then `rebalance-bot resume`" in out[0]
    )
    switch.unlink()  # removing the file does not resume: the banner must not say it is there
    code, out, err = _cli(capsys, "run", "--config", str(config), "--cycles", "1")
    assert code == 0, err
    assert (
        "HALTED (by the kill switch, since removed): nothing is sent until "
        "`rebalance-bot resume`" in out[0]
    ), out[0]
    assert "is present" not in out[0]


def test_the_closing_line_counts_cycles_and_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)

    code, out, err = _cli(capsys, "run", "--config", str(config), "--cycles", "2")

    assert code == 0, err
    fills = len(_audit(tmp_path, "paper_fill"))
    assert fills > 0
    closing = re.match(r"^rebalance-bot: done after 2 cycles, (\d+) orders?, (\d+)(ms|s)", out[-1])
    assert closing is not None, out[-1]
    assert int(closing.group(1)) == fills
    assert sum(1 for line in out if line.startswith("rebalance-bot:")) == 2  # banner, closing


def test_json_log_format_makes_every_decision_line_a_json_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)

    code, out, err = _cli(
        capsys, "run", "--config", str(config), "--cycles", "2", "--log-format", "json"
    )

    assert code == 0, err
    objects = [json.loads(line) for line in out]  # every line, or this raises
    assert [o["event"] for o in objects] == [
        "bot_started", "cycle_finished", "cycle_finished", "bot_stopped",
    ]  # fmt: skip
    first = objects[1]
    ends = {r["cycle_id"]: r for r in _audit(tmp_path, "cycle_end")}
    assert first["outcome"] == ends[first["cycle_id"]]["outcome"] == "traded"
    fills = {(r["symbol"], r["amount"]) for r in _audit(tmp_path, "paper_fill")}
    assert {(f["symbol"], f["filled"]) for f in first["fills"]} == fills  # exact decimals
    assert objects[-1]["orders"] == len(fills) and objects[-1]["cycles"] == 2
    assert all(json.loads(line) for line in err.splitlines())  # the log is JSON as well


def test_text_logs_are_quiet_before_the_banner_and_the_server_is_announced_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "enabled = true\nport = 0")

    code, out, err = _cli(
        capsys, "run", "--config", str(config), "--cycles", "1", "--log-format", "console"
    )
    assert code == 0, err
    assert err == "", err  # what a terminal shows on stderr: nothing but warnings
    assert out[0].startswith("rebalance-bot: portfolio itest, dry-run, cycle every 1s, status on")

    code, _, err = _cli(
        capsys, "run", "--config", str(config), "--cycles", "1", "--log-format", "json"
    )
    assert code == 0, err
    events = [json.loads(line)["event"] for line in err.splitlines()]
    assert events.count("status_server_started") == 1, events


def test_plan_prints_no_simulator_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    for fmt in ("json", "console"):
        code, out, err = _cli(capsys, "plan", "--config", str(config), "--log-format", fmt)
        assert code == 0, err
        assert "simulator_started" not in err and err == ""
        assert any("bitcoin" in line for line in out)


def test_on_an_80_column_terminal_every_line_fits_and_a_pipe_gets_whole_lines(
    tmp_path: Path,
) -> None:
    """`once` on a pseudo-terminal of 80 columns: no line is wider, nothing is lost (the words
    are those of the same run's piped output, which keeps each fact on one line)."""
    config = _config(tmp_path)
    env = {**os.environ, "COLUMNS": "80", "LINES": "24", "NO_COLOR": "1"}
    command = [sys.executable, "-m", "bot", "once", "--config", str(config)]
    main_fd, terminal_fd = pty.openpty()
    with subprocess.Popen(command, stdout=terminal_fd, stderr=subprocess.PIPE, env=env) as run:
        os.close(terminal_fd)
        chunks = []
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal closed: the command has ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    os.close(main_fd)
    on_terminal = b"".join(chunks).decode("utf-8").replace("\r\n", "\n").splitlines()
    assert on_terminal, "the command printed nothing"
    assert max(len(line) for line in on_terminal) <= 80, on_terminal

    again = subprocess.run(
        [*command[:-2], "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    piped = again.stdout.splitlines()
    assert max(len(line) for line in piped) > 80, "piped lines are whole"
    words = " ".join(on_terminal).split()
    assert words[: len(piped[0].split())] == piped[0].split(), "the banner, word for word"
