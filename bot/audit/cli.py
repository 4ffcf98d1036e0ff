"""`rebalance-bot audit …`: read, search, summarize, verify, export and chart the audit log.

Every action streams the log in chain order and keeps aggregates, never the whole log. Output
is a rich table or tree on a terminal, plain text when piped, and JSON with `--json`. Bad input
(no log directory, a bad date, an unknown cycle, several portfolios and none chosen) is one line
on stderr and exit code 2; `verify` exits 1 when the chain is broken.

Each portfolio has its own log (`<data_dir>/audit/<portfolio>/`). `--config` and `--data-dir`
work as for every other command (the config's portfolio in its data directory, or the data
directory's only portfolio); `--dir` takes a portfolio's directory, or an audit directory
holding one portfolio (or a log of the old shared layout); with several, `--portfolio` chooses.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from bot.audit.export import FUNDING_COLUMNS, RowWriter, funding_row, opened, trade_row
from bot.audit.layout import audit_root
from bot.audit.reader import (
    ORDER_EVENTS,
    FundingTracker,
    Period,
    ReadStats,
    RecordFilter,
    Summarizer,
    TradeTracker,
    end_of,
    follow,
    last_records,
    line_of,
    records_backwards,
    scan,
    select_files,
)
from bot.audit.render import STYLE, cycle_tree, summary_table
from bot.audit.writer import EventType, audit_files, canonical, open_file, portfolio_logs, verify
from bot.core.errors import BotError, UsageError
from bot.core.ids import is_cycle_id
from bot.portfolios import load_portfolio

PROGRESS_MIN_BYTES = 16 * 1024 * 1024  # a shorter read finishes before a bar would help
EXIT_BROKEN = 1

Run = Callable[[argparse.Namespace], int]


# -- the command line --------------------------------------------------------------------------


DEFAULT_CONFIG = Path("config/paper.toml")
_PERIOD_HELP = "one row per day, or per ISO week (Monday to Sunday) (default: day)"


def _where(parser: argparse.ArgumentParser) -> None:
    """Which log: the same --config and --data-dir as every other command, or --dir."""
    group = parser.add_argument_group(
        "which log",
        "A portfolio's log is <data_dir>/audit/<portfolio>/. Give the config (its portfolio and "
        "data_dir) and/or the data directory, as for every other command; or --dir.",
    )
    group.add_argument(
        "--config", type=Path, metavar="FILE",
        help=f"the portfolio's config file: its name and data_dir (default: {DEFAULT_CONFIG} "
        "when neither --data-dir nor --dir is given)",
    )  # fmt: skip
    group.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="the data directory holding audit/ (default: the config's data_dir); alone, it "
        "reads its only portfolio or the one --portfolio names",
    )  # fmt: skip
    group.add_argument(
        "--dir", type=Path, metavar="DIR",
        help="instead of --config/--data-dir: a portfolio's log directory, or an audit/ "
        "directory (a log of the old shared layout too)",
    )  # fmt: skip
    group.add_argument(
        "--portfolio", metavar="NAME",
        help="the portfolio whose log to read (default: the config's, or the only one; a "
        "config of several portfolios needs it); in a log of the old shared layout, only its "
        "records",
    )  # fmt: skip


def _window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", metavar="TIME",
        help="only records from this UTC date (2026-03-01) or ISO-8601 time on",
    )  # fmt: skip
    parser.add_argument(
        "--until", metavar="TIME",
        help="only records before this UTC time; a date alone includes that whole day",
    )  # fmt: skip


def _live_only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--live-only", action="store_true",
        help="leave out dry-run (paper) fills: only what was traded for real",
    )  # fmt: skip


def _action(actions: Any, name: str, help_text: str, description: str) -> Any:
    parser = actions.add_parser(name, help=help_text, description=description)
    _where(parser)
    return parser


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="read, verify, summarize, export and chart the audit log",
        description=(
            "Read the audit log: every decision and order the bot made, hash-chained, one log "
            "per portfolio under <data_dir>/audit/<portfolio>/. Every action takes --config "
            "and --data-dir like the other commands (or --dir); a live config's trading keys "
            "are not needed. Times are UTC; `rebalance-bot audit ACTION --help` explains each "
            "action."
        ),
    )
    actions = parser.add_subparsers(dest="audit_action", metavar="ACTION", required=True)

    tail = _action(
        actions, "tail", "the last records, one line each (-f: keep following)",
        "Print the last records, oldest first, one line each: time, sequence number, cycle, "
        "event and what it says. With -f, keep printing records as they are written (across "
        "midnight's new file) until Ctrl-C.",
    )  # fmt: skip
    tail.add_argument(
        "-n", "--lines", type=int, default=10, metavar="N", help="how many records (default 10)"
    )
    tail.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new records as they come"
    )
    tail.add_argument("--json", action="store_true", help="each record as the JSON line it is")
    tail.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)
    tail.set_defaults(run=_guard(run_tail))

    show = _action(
        actions, "show", "the whole story of one cycle, as a tree",
        "Print every record of one cycle as a tree: snapshot, prices, drift, trigger, plan, "
        "risk verdict, orders and fills, with a table where a record holds one.",
    )  # fmt: skip
    show.add_argument(
        "cycle", metavar="CYCLE",
        help="a cycle id as `run` prints it (YYYYMMDDTHHMMSSmmm), or 'last'",
    )  # fmt: skip
    show.add_argument("--json", action="store_true", help="the cycle's records as JSON")
    show.set_defaults(run=_guard(run_show))

    find = _action(
        actions, "find", "records matching filters",
        "Print the records that match every filter given (event types, instrument, order id, "
        "time window), one line each.",
    )  # fmt: skip
    _window(find)
    find.add_argument(
        "--event", action="append", default=[], metavar="TYPE",
        help="event type, e.g. paper_fill or risk_verdict (repeat, or comma-separated)",
    )  # fmt: skip
    find.add_argument(
        "--instrument", metavar="SYMBOL", help="unified symbol (BTC/USDT, BTC/USDT:USDT) or asset"
    )
    find.add_argument("--order-id", metavar="ID", help="exchange order id or client order id")
    find.add_argument("--json", action="store_true", help="each record as the JSON line it is")
    find.set_defaults(run=_guard(run_find))

    summary = _action(
        actions, "summary",
        "rebalances, orders, turnover, fees, skips, risk blocks and errors per period",
        "Per day or week, and in total: cycles, rebalances, orders, fills, turnover, fees "
        "(summed in the quote currency, each conversion shown), dry-run fills, cycles the "
        "trigger skipped although a sleeve was out of band, plans the risk engine blocked, "
        "orders the exchange rejected, and errors.",
    )  # fmt: skip
    _window(summary)
    summary.add_argument(
        "--by", choices=[p.value for p in Period], default=Period.DAY.value, help=_PERIOD_HELP
    )
    _live_only(summary)
    summary.add_argument(
        "--json", action="store_true", help="the figures as JSON, with exact decimals"
    )
    summary.set_defaults(run=_guard(run_summary))

    check = _action(
        actions, "verify", "check the hash chain and schema; exit 1 naming the first bad record",
        "Check every record's hash chain and schema from the first: exit 0 when the log is "
        "intact, 1 naming the first record that was altered, removed or inserted.",
    )  # fmt: skip
    check.add_argument(
        "--anchor", metavar="SEQ:HASH",
        help="a record's seq and hash noted earlier (as verify prints them): it must still be "
        "there unchanged, which also catches records cut from the end",
    )  # fmt: skip
    check.add_argument("--json", action="store_true", help="the result as JSON")
    check.set_defaults(run=_guard(run_verify))

    export = _action(
        actions, "export", "trades and fees as CSV (default) or JSON, for tax tools",
        "Every fill as one row (date, pair, side, amount, price, fee and its currency, order "
        "ids, dry-run flag, account, market, notional, cycle, portfolio), the decimals exactly "
        "as recorded, for tax and accounting tools.",
    )  # fmt: skip
    _window(export)
    export.add_argument("--csv", action="store_true", help="CSV with a header row (the default)")
    export.add_argument("--json", action="store_true", help="a JSON array of the same rows")
    export.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    _live_only(export)
    export.add_argument("--instrument", metavar="SYMBOL", help="only this symbol or asset")
    export.add_argument(
        "--funding",
        action="store_true",
        help="funding payments instead of fills (date, pair, amount, asset, funding id, "
        "account, cycle, portfolio; amount signed: + received, - paid)",
    )
    export.set_defaults(run=_guard(run_export))

    report = _action(
        actions, "report", "an HTML page (and PNGs) of allocation, drift, NAV, turnover and fees",
        "Write one self-contained HTML page (charts embedded, nothing fetched): allocation vs "
        "target, drift and bands, NAV, turnover and fees per period, the summary table and the "
        "latest rebalances.",
    )  # fmt: skip
    _window(report)
    report.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="the HTML file to write"
    )
    report.add_argument(
        "--png", type=Path, metavar="DIR", help="also write each chart as a PNG into DIR"
    )
    report.add_argument(
        "--by", choices=[p.value for p in Period], default=Period.DAY.value,
        help="bars and table rows per day or per ISO week (default: day)",
    )  # fmt: skip
    _live_only(report)
    report.add_argument(
        "--title", default="Rebalance audit report",
        help="the page's heading and title (default: %(default)s)",
    )  # fmt: skip
    report.add_argument(
        "--json", action="store_true",
        help="print the paths written as JSON instead of a sentence",
    )  # fmt: skip
    report.set_defaults(run=_guard(run_report))


def _guard(run: Run) -> Run:
    """Operating-system failures become one line; a closed pipe (`| head`) ends quietly."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise BotError(f"{where}{exc.strerror or exc}") from None

    return guarded


def _directory(args: argparse.Namespace, *, waiting: bool = False) -> Path:
    """The directory of the one log the command reads; `waiting` (tail -f) accepts a named
    portfolio whose log does not exist yet."""
    portfolio: str | None = args.portfolio
    config_path: Path | None = args.config
    if args.dir is not None:
        if config_path is not None or args.data_dir is not None:
            raise UsageError("--dir names the log itself: give it alone, or --config/--data-dir")
        root: Path = args.dir
    elif config_path is None and args.data_dir is not None:
        root = audit_root(args.data_dir)
    else:
        # Reading the log needs its directory and the portfolio's name, never trading keys.
        config = load_portfolio(
            config_path or _default_config(),
            name=portfolio,
            data_dir=args.data_dir,
            need_keys=False,
        )
        root = audit_root(config.data_dir)
        portfolio = portfolio or config.portfolio
    if not root.is_dir() and not (waiting and portfolio is not None):
        raise UsageError(f"{root}: no such directory (no audit log there)")
    return _choose_log(root, portfolio, waiting=waiting)


def _default_config() -> Path:
    if not DEFAULT_CONFIG.is_file():
        raise UsageError(
            f"which audit log? no {DEFAULT_CONFIG} here: give --config FILE, --data-dir DIR "
            "or --dir DIR"
        )
    return DEFAULT_CONFIG


def _choose_log(root: Path, portfolio: str | None, *, waiting: bool) -> Path:
    if portfolio is not None and audit_files(root / portfolio):
        return root / portfolio
    if audit_files(root):
        return root  # one log: a portfolio's directory, or the old shared layout
    logs = portfolio_logs(root)
    names = ", ".join(logs)
    if portfolio is not None:
        if waiting:
            return root / portfolio
        raise UsageError(
            f"{root}: no audit log of portfolio {portfolio!r} "
            + (f"(there are logs of: {names})" if logs else "(no audit files in it)")
        )
    if len(logs) > 1:
        raise UsageError(
            f"{root} holds the audit logs of {len(logs)} portfolios ({names}): "
            "choose one with --portfolio NAME"
        )
    if not logs:
        if waiting:
            return root
        raise UsageError(f"{root}: no audit files (audit-YYYY-MM-DD.jsonl) in it")
    return next(iter(logs.values()))


def _files(directory: Path, wanted: RecordFilter | None = None) -> list[Path]:
    if not audit_files(directory):
        raise UsageError(f"{directory}: no audit files (audit-YYYY-MM-DD.jsonl) in it")
    return select_files(directory, wanted)


def _filter(args: argparse.Namespace, **more: Any) -> RecordFilter:
    return RecordFilter.build(since=args.since, until=args.until, portfolio=args.portfolio, **more)


# -- output helpers ----------------------------------------------------------------------------


def _console(stream: IO[str] | None = None) -> Console:
    stream = stream or sys.stdout
    tty = stream.isatty()
    # Piped output: no colour, and wide enough that tables are not squeezed to 80 columns.
    return Console(file=stream, highlight=False, width=None if tty else 200, no_color=not tty)


def _show(renderable: RenderableType) -> None:
    """Print at the renderable's natural width even on a narrow terminal: a wide table that
    the terminal wraps still shows every figure, one squeezed to fit would cut or fold them."""
    console = _console()
    unbounded = console.options.update_width(10_000)
    console.width = max(console.width, Measurement.get(console, unbounded, renderable).maximum)
    console.print(renderable)


def _warn(stats: ReadStats) -> None:
    warning = stats.warning()
    if warning is not None:
        print(f"rebalance-bot: warning: {warning}", file=sys.stderr)


@contextmanager
def _progress(files: Sequence[Path], what: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for long reads, only when stderr is a terminal."""
    total = sum(p.stat().st_size for p in files)
    if total < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    columns = (
        TextColumn(what), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.advance(task, done)


def _json_out(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


class _Lines:
    """Record lines: styled on a terminal, plain when piped, the raw record with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = _console() if sys.stdout.isatty() and not as_json else None
        self.count = 0

    def write(self, record: Mapping[str, Any]) -> None:
        self.count += 1
        if self.as_json:
            sys.stdout.write(canonical(record).decode() + "\n")
        elif self.console is not None:
            style = STYLE.get(str(record.get("event")), "")
            if record.get("event") == EventType.RISK_VERDICT and not record.get("approved"):
                style = "bold yellow"
            self.console.print(Text(line_of(record), style=style), soft_wrap=True)
        else:
            sys.stdout.write(line_of(record) + "\n")

    def flush(self) -> None:
        sys.stdout.flush()


# -- tail, find --------------------------------------------------------------------------------


def run_tail(args: argparse.Namespace) -> int:
    if args.lines < 0:
        raise UsageError(f"-n must be 0 or more, not {args.lines}")
    directory = _directory(args, waiting=args.follow)
    files = audit_files(directory)
    if not files and not args.follow:
        raise UsageError(f"{directory}: no audit files (audit-YYYY-MM-DD.jsonl) in it")
    out = _Lines(args.json)
    for record in last_records(files, args.lines):
        out.write(record)
    out.flush()
    if args.follow:
        for record in follow(directory, end_of(files), lambda: time.sleep(args.interval)):
            out.write(record)
            out.flush()
    return 0


def run_find(args: argparse.Namespace) -> int:
    directory = _directory(args)
    wanted = _filter(args, events=args.event, instrument=args.instrument, order_id=args.order_id)
    files = _files(directory, wanted)
    out = _Lines(args.json)
    stats = ReadStats()
    with _progress(files, "find") as on_bytes:
        for record in scan(files, stats=stats, on_bytes=on_bytes):
            if wanted.matches(record):
                out.write(record)
    _warn(stats)
    if out.count == 0 and not args.json:
        print("rebalance-bot: no matching records", file=sys.stderr)
    return 0


# -- show --------------------------------------------------------------------------------------


def _last_cycle(files: list[Path], portfolio: str | None) -> str:
    for record in records_backwards(files):
        cycle = record.get("cycle_id")
        if isinstance(cycle, str) and cycle and portfolio in (None, record.get("portfolio")):
            return cycle
    raise UsageError("the log has no cycle yet")


def run_show(args: argparse.Namespace) -> int:
    directory = _directory(args)
    cycle: str = args.cycle
    if cycle == "last":
        cycle = _last_cycle(_files(directory), args.portfolio)
    elif not is_cycle_id(cycle):
        raise UsageError(f"not a cycle id: {cycle!r} (expected YYYYMMDDTHHMMSSmmm or 'last')")
    wanted = RecordFilter(cycle_id=cycle, portfolio=args.portfolio)
    files = _files(directory, wanted)
    stats = ReadStats()
    with _progress(files, f"cycle {cycle}") as on_bytes:
        records = [r for r in scan(files, stats=stats, on_bytes=on_bytes) if wanted.matches(r)]
    _warn(stats)
    if not records:
        raise UsageError(f"no records of cycle {cycle} in {directory}")
    if args.json:
        _json_out({"cycle_id": cycle, "records": records})
    else:
        _show(cycle_tree(cycle, records))
    return 0


# -- summary -----------------------------------------------------------------------------------


def run_summary(args: argparse.Namespace) -> int:
    directory = _directory(args)
    wanted = _filter(args)
    files = _files(directory, wanted)
    summarizer = Summarizer(Period(args.by))
    stats = ReadStats()
    with _progress(files, "summary") as on_bytes:
        records = scan(files, stats=stats, on_bytes=on_bytes)
        for record in records if wanted.everything else filter(wanted.matches, records):
            summarizer.add(record)
    _warn(stats)
    periods = summarizer.periods()
    total = summarizer.total()
    if args.json:
        _json_out(
            {
                "by": args.by,
                "live_only": args.live_only,
                "periods": [p.to_json(live_only=args.live_only) for p in periods],
                "total": total.to_json(live_only=args.live_only),
            }
        )
        return 0
    _show(summary_table(periods, total, by=args.by, live_only=args.live_only))
    return 0


# -- verify ------------------------------------------------------------------------------------


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    digest = digest.lower()
    if not (seq.isdigit() and int(seq) >= 1 and len(digest) >= 12):
        raise UsageError(
            f"--anchor wants SEQ:HASH (a seq and at least 12 hex digits), not {text!r}"
        )
    if any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(f"--anchor: {digest!r} is not a hex hash")
    return int(seq), digest


def _record_at(files: Sequence[Path], seq: int) -> Mapping[str, Any]:
    """The record with this seq in a verified log: the seq-th line, counted across the files."""
    remaining = seq
    for path in files:
        with open_file(path) as f:
            for raw in f:
                remaining -= 1
                if remaining == 0:
                    record: dict[str, Any] = json.loads(raw)
                    return record
    raise UsageError(f"no record with seq {seq}")


def run_verify(args: argparse.Namespace) -> int:
    directory = _directory(args)
    anchor = _anchor(args.anchor) if args.anchor else None
    files = _files(directory)
    with _progress(files, "verify") as on_bytes:
        count, problem = verify(directory, on_bytes)
    torn = sorted(p.name for p in directory.glob("audit-*.torn"))
    result: dict[str, Any] = {"ok": problem is None, "records": count, "problem": None}
    message: str
    if problem is not None:
        seq = problem.seq if problem.seq is not None else "?"
        result["problem"] = {
            "file": str(problem.file), "line": problem.line, "seq": problem.seq,
            "expected_seq": count + 1, "message": problem.message,
        }  # fmt: skip
        where = f"seq {seq}" if problem.seq == count + 1 else f"seq {seq} where {count + 1} was due"
        before = f"the {count} record(s) before it are intact" if count else "it is the first"
        message = (
            f"audit verify FAILED at {problem.file}:{problem.line} ({where}): {problem.message}; "
            f"{before}"
        )
    else:
        head = last_records(files, 1)
        head_hash = str(head[0].get("hash")) if head else ""
        result["head"] = {"seq": count, "hash": head_hash}
        message = f"audit log intact: {count} record(s), seq 1 to {count}, head {count}:{head_hash}"
        if anchor is not None:
            seq, digest = anchor
            result["anchor"] = {"seq": seq, "hash": digest}
            if seq > count:
                result["ok"] = False
                message = (
                    f"audit verify FAILED: the log ends at seq {count} but the anchor is seq "
                    f"{seq}: records were removed from the end"
                )
            else:
                found = str(_record_at(files, seq).get("hash", ""))
                if not found.startswith(digest):
                    result["ok"] = False
                    message = (
                        f"audit verify FAILED: seq {seq} has hash {found}, not the anchored "
                        f"{digest}: the history up to it was rewritten"
                    )
                else:
                    message += f"; anchor seq {seq} matches"
    result["torn_fragments"] = torn
    if args.json:
        _json_out(result)
    else:
        stream = sys.stdout if result["ok"] else sys.stderr
        print(message, file=stream)
        if torn:
            print(
                f"note: {len(torn)} torn line(s) were moved aside at start-up "
                f"(see the `recovered` records): {', '.join(torn)}",
                file=stream,
            )
    return 0 if result["ok"] else EXIT_BROKEN


# -- export ------------------------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    if args.csv and args.json:
        raise UsageError("export: choose one of --csv and --json")
    if args.funding:
        return _export_funding(args)
    directory = _directory(args)
    wanted = _filter(
        args,
        events=sorted(ORDER_EVENTS),
        instrument=args.instrument,
    )
    files = _files(directory, wanted)
    if args.out is not None and not args.out.parent.is_dir():
        raise UsageError(f"{args.out.parent}: no such directory for --out")
    tracker = TradeTracker()
    stats = ReadStats()
    with opened(args.out) as stream, _progress(files, "export") as on_bytes:
        writer = RowWriter(stream, as_json=args.json)
        for record in scan(files, stats=stats, on_bytes=on_bytes):
            if not wanted.matches(record):
                continue
            trade = tracker.trade(record)
            if trade is not None and not (args.live_only and trade.dry_run):
                writer.write(trade_row(trade))
        writer.close()
    _warn(stats)
    if args.out is not None:  # the file holds the rows; stderr says how many
        print(f"wrote {writer.count} trade(s) to {args.out}", file=sys.stderr)
    return 0


def _export_funding(args: argparse.Namespace) -> int:
    directory = _directory(args)
    wanted = _filter(args, events=[EventType.FUNDING.value], instrument=args.instrument)
    files = _files(directory, wanted)
    if args.out is not None and not args.out.parent.is_dir():
        raise UsageError(f"{args.out.parent}: no such directory for --out")
    tracker = FundingTracker()
    stats = ReadStats()
    with opened(args.out) as stream, _progress(files, "export") as on_bytes:
        writer = RowWriter(stream, as_json=args.json, columns=FUNDING_COLUMNS)
        for record in scan(files, stats=stats, on_bytes=on_bytes):
            payment = tracker.payment(record) if wanted.matches(record) else None
            if payment is not None and not (args.live_only and payment.dry_run):
                writer.write(funding_row(payment))
        writer.close()
    _warn(stats)
    if args.out is not None:
        print(f"wrote {writer.count} funding payment(s) to {args.out}", file=sys.stderr)
    return 0


# -- report ------------------------------------------------------------------------------------


def run_report(args: argparse.Namespace) -> int:
    from bot.audit.report import ReportData, render  # noqa: PLC0415 - matplotlib loads slowly

    directory = _directory(args)
    wanted = _filter(args)
    if not args.out.parent.is_dir():
        raise UsageError(f"{args.out.parent}: no such directory for --out")
    if args.png is not None and args.png.exists() and not args.png.is_dir():
        raise UsageError(f"{args.png}: exists and is not a directory (--png wants a directory)")
    files = _files(directory, wanted)
    data = ReportData(Period(args.by))
    stats = ReadStats()
    with _progress(files, "report") as on_bytes:
        for record in scan(files, stats=stats, on_bytes=on_bytes):
            if wanted.matches(record):
                data.add(record)
    _warn(stats)
    written = render(data, args.out, png_dir=args.png, title=args.title, live_only=args.live_only)
    if args.json:
        _json_out({"html": str(written[0]), "png": [str(p) for p in written[1:]]})
    else:
        pngs = f" and {len(written) - 1} PNG(s) in {args.png}" if args.png is not None else ""
        print(f"wrote {written[0]}{pngs} from {data.records} record(s)")
    return 0
