"""Command line: ``cleancorpus run | check | stages``.

Exit status: 0 success, 1 the run failed, 2 usage or config error (also a damaged state database, or an
output or state folder that cannot be written).
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import shlex
import signal
import sqlite3
import sys
import threading
import time
import traceback
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Union, get_args, get_origin

import click
import orjson

from pipeline import __version__, re_cache

if TYPE_CHECKING:
    from pipeline.config import RunConfig

# The config models (pydantic, PyYAML, the stage registry: ~50 ms) are imported by the commands that read a
# config, not for `--help` or a usage error.

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_QUARANTINED = 3
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run is busy; try again later
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a Unix tool whose output pipe was closed
EXIT_TERMINATED = 143  # 128 + SIGTERM: what a shell reports for a process ended by it


class Terminated(KeyboardInterrupt):
    """SIGTERM (cron's `timeout`, systemd stopping the job) during a run. Left to its default, it killed the
    process on the spot: no log line, the `.partial` outputs and temporary files (the stdin spool) left
    behind. Raised in the main thread, it ends the run as an interrupt does, cleanly."""


def _catch_sigterm(stop: threading.Event) -> Any:
    """Turn SIGTERM into Terminated in this (main) thread, and set ``stop`` first: where Python drops the
    exception a handler raises (code called back from C: a ``__del__``, a kernel's callback), the runner still
    stops at its next batch (``runner.StopRequested``). Returns the handler it replaces, to restore (None: not
    installed, off the main thread). Workers forked later go back to the default (executors._start_worker)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    stop.clear()

    def terminate(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not break the clean-up of the first
        stop.set()
        raise Terminated

    return signal.signal(signal.SIGTERM, terminate)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"cleancorpus: error: {message}", err=True)
    sys.exit(code)


def _exit_if_damaged(
    err: Exception, db: Path, config_path: str | None, outdir: str | None, log: logging.Logger | None = None
) -> None:
    """Exit 2, saying how to start afresh, if ``err`` tells of a damaged state database ``db``: StateCorrupt
    (found when it was opened) or SQLite's corruption errors (found past its header); else return. ``log``:
    the run's log, which records it."""
    from pipeline.state import StateCorrupt, is_damage

    if isinstance(err, sqlite3.DatabaseError) and is_damage(err):
        err = StateCorrupt(db, str(err))
    if not isinstance(err, StateCorrupt):
        return
    if log is not None:
        log.error("%s", err)
    options = "".join(f" {flag} {shlex.quote(value)}" for flag, value in (("-c", config_path), ("-o", outdir)) if value)
    _fail(
        f"{err}; `cleancorpus state reset{options}` or `cleancorpus run ... --rebuild` sets it aside and starts afresh",
        EXIT_USAGE,
    )


def _config_or_exit(config_path: str | None, log: logging.Logger | None = None) -> RunConfig:
    """The config file's, or the built-in defaults; a bad config ends the command with exit 2."""
    from pipeline.config import ConfigError, default_config, load_config

    try:
        return load_config(config_path) if config_path else default_config()
    except ConfigError as err:
        if log is not None:
            log.error("config error: %s", err)
        _fail(str(err), EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cleancorpus")
def cli() -> None:
    """Clean and deduplicate scraped text corpora (encoding, boilerplate, language, dedup, normalize)."""


@cli.command()
@click.argument("inputs", nargs=-1, metavar="[INPUT ...]")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML config (default: built-in defaults, every stage on).",
)
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(file_okay=False),
    help="Output folder (default: the config's output.dir, 'output').",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=None,
    help="Processes for per-document stages (default 1): N - 1 workers and the run's own process, which runs "
    "batches too while it waits for theirs; with --executor ray and no --ray-address: the CPUs of the local Ray "
    "(default all).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where per-document stages run: local processes (--workers) or Ray tasks (pip install 'cleancorpus[ray]').",
)
@click.option(
    "--ray-address",
    default=None,
    help="With --executor ray: the Ray cluster to join (HEAD:6379, ray://HEAD:10001 or 'auto'); none starts a "
    "local Ray. An address that does not answer within 10 s ends the run (exit 2).",
)
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=None,
    help="Process at most N documents (a trial run: the state is not updated).",
)
@click.option("--rebuild", is_flag=True, help="Forget the state of earlier runs and process every input again.")
@click.option("--strict", is_flag=True, help="Exit 1 if any input was quarantined (default: exit 3).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless something goes wrong.")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Append a log of the run to this file.")
@click.option("--log-json", is_flag=True, help="Write the log file as JSON lines (needs --log-file).")
def run(
    inputs: tuple[str, ...],
    config_path: str | None,
    outdir: str | None,
    workers: int | None,
    executor: str,
    ray_address: str | None,
    limit: int | None,
    rebuild: bool,
    strict: bool,
    quiet: bool,
    log_file: str | None,
    log_json: bool,
) -> None:
    """Clean INPUT files or folders (.txt, .jsonl[.gz|.zst], .parquet, .warc[.gz], .warc.wet[.gz],
    .html[.gz]) into the output folder; INPUT '-' reads JSONL from stdin and writes it to stdout.

    Only files that are new or changed since the last run on the same output folder are processed,
    and dedup sees everything kept by earlier runs. Exit status: 0 success, 1 failed, 2 usage or
    config error (or a damaged state database: --rebuild sets it aside), 3 success but some input
    was quarantined (see rejected.jsonl), 75 another run holds the lock, 141 stdout (INPUT '-') was
    closed by its reader, 143 ended by SIGTERM (nothing unfinished kept).
    """
    from pipeline.config import ConfigError, config_warnings
    from pipeline.io import StdoutClosed
    from pipeline.runner import StopRequested, state_folder, stop_requested
    from pipeline.runner import run as run_pipeline
    from pipeline.state import DB_NAME, Inaccessible, StateCorrupt, StateLocked, run_lock, set_aside_if_damaged

    if log_json and not log_file:  # it would be ignored: there is no log without a log file
        _fail("--log-json sets the format of the log file: add --log-file FILE", EXIT_USAGE)
    if ray_address is not None and executor != "ray":  # it would be ignored: the run would happen here instead
        _fail(f"--ray-address {ray_address} needs --executor ray (add it to run on that cluster)", EXIT_USAGE)
    if ray_address is not None:  # a malformed one now; whether the cluster answers, when the run starts Ray
        from pipeline.ray_executor import RayAddressError, check_address_form

        try:
            check_address_form(ray_address)
        except RayAddressError as err:
            _fail(str(err), EXIT_USAGE)
    log = setup_logging(log_file, log_json)
    if quiet and executor == "ray":
        _quiet_ray()
    config = _config_or_exit(config_path, log)
    # Each means the run does not do what the config says (an option that does nothing as set): a --quiet (cron)
    # run prints them too, one line each, every run until the config is fixed; hidden, a cron owner never knew.
    for warning in config_warnings(config, config_path or "config"):
        log.warning("%s", warning)
        click.echo(f"cleancorpus: warning: {warning}", err=True)
    folder = state_folder(config, Path(outdir or config.output.dir))
    # main() paused the collector for the imports; what they and the config made lives until exit. Frozen
    # first, it is not walked by the first collection after enable() (one pass over all of it: ~35 ms a run).
    gc.freeze()
    gc.enable()  # (the run pauses it again while it sets up)
    interactive = not quiet and sys.stderr.isatty()
    progress, on_progress = _progress_display() if interactive else (None, None)
    shown_workers = workers if workers is not None else "the Ray CPUs" if executor == "ray" else 1
    log.info(
        "run started: inputs=%s config=%s executor=%s workers=%s",
        list(inputs),
        config_path or "defaults",
        executor,
        shown_workers,
    )
    previous_sigterm = _catch_sigterm(stop_requested)
    try:
        if rebuild and folder.is_dir():
            # The runner cannot open a damaged database to reset it: set it aside first (under the lock, so
            # not from under a running run), and the run makes a new one.
            with run_lock(folder):
                aside = set_aside_if_damaged(folder)
            if aside is not None:
                log.warning("damaged state database %s set aside as %s", folder / DB_NAME, aside)
                click.echo(
                    f"cleancorpus: the damaged state database {folder / DB_NAME} was set aside as {aside}", err=True
                )
        if progress is not None:
            progress.start()
        result = run_pipeline(
            config,
            list(inputs),
            outdir,
            workers=workers,
            limit=limit,
            on_progress=on_progress,
            rebuild=rebuild,
            executor=executor,
            ray_address=ray_address,
        )
    except StateLocked as err:
        log.error("%s", err)
        _fail(f"{err}; not starting (exit {EXIT_LOCKED})", EXIT_LOCKED)
    except ConfigError as err:
        log.error("config error: %s", err)
        _fail(str(err), EXIT_USAGE)
    except StateCorrupt as err:
        _exit_if_damaged(err, folder / DB_NAME, config_path, outdir, log)
    except Inaccessible as err:
        log.error("%s", err)
        _fail(str(err), EXIT_USAGE)
    except StdoutClosed:
        # `cleancorpus run - ... | head`: the reader has what it wanted. Quiet, as a Unix tool ended by SIGPIPE
        # (nothing was recorded: stdin is processed again next time); stdout goes nowhere, so that the
        # interpreter's last flush does not complain either.
        log.warning("stdout was closed by its reader before the run finished; nothing recorded")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        sys.exit(EXIT_PIPE_CLOSED)
    except (Terminated, StopRequested) as err:
        log.error("terminated (SIGTERM)")
        _fail(f"terminated (SIGTERM); {_what_is_left(err)}", EXIT_TERMINATED)
    except KeyboardInterrupt as err:
        log.error("interrupted")
        _fail(f"interrupted; {_what_is_left(err)}", EXIT_FAILED)
    except Exception as err:
        if stop_requested.is_set():  # SIGTERM's exception wrapped on its way (a kernel's callback: SystemError)
            log.error("terminated (SIGTERM): %s: %s", type(err).__name__, err)
            _fail(f"terminated (SIGTERM); {_what_is_left(err)}", EXIT_TERMINATED)
        _exit_if_damaged(err, folder / DB_NAME, config_path, outdir, log)  # damage found past the database's header
        log.exception("run failed")
        if os.environ.get("CLEANCORPUS_DEBUG"):
            traceback.print_exc()
        _fail(_failure(err, folder / DB_NAME), EXIT_FAILED)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        if progress is not None:
            progress.stop()
    for warning in result.report.get("warnings", []):  # (logged by the run) what a cron job's owner must see
        click.echo(f"cleancorpus: warning: {warning}", err=True)
    summary = _summary(result.report, result.outdir)
    log.info("%s", summary, extra={"report": {k: result.report[k] for k in ("inputs", "documents", "characters")}})
    if not quiet:
        click.echo(f"cleancorpus: {summary}", err=True)
    if result.quarantined:
        quarantined = _count(result.quarantined, "document")
        log.warning("%s quarantined, see %s", quarantined, result.outdir / "rejected.jsonl")
        if strict:
            _fail(f"{quarantined} quarantined (--strict)", EXIT_FAILED)
        sys.exit(EXIT_QUARANTINED)


# A file system that stops taking writes: full, over quota, a file over the size limit, read-only, an I/O error.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def _what_is_left(err: BaseException) -> str:
    """What a failed or stopped run leaves for the next one. The runner marks a failure that came after every
    file was committed (``unfinished``: the audit files, report.json), where "files not finished were not
    committed" was true but there were none."""
    unfinished = getattr(err, "unfinished", None)
    if unfinished:
        return f"every file was committed; {unfinished}"
    return "files not finished were not committed and will be processed next time"


def _failure(err: Exception, database: Path) -> str:
    """The line for a failed run: a full disk names the file and says what happens next, rather than only
    "OSError: [Errno 28] No space left on device"."""
    if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS and err.filename:
        return f"run failed: cannot write {err.filename}: {err.strerror}; {_what_is_left(err)}"
    if type(err).__name__ == "BrokenProcessPool":  # (concurrent.futures, not imported for this)
        return (
            f"run failed: a worker process died (killed: out of memory? see `dmesg`); {_what_is_left(err)} "
            "(fewer --workers need less memory)"
        )
    if isinstance(err, sqlite3.OperationalError) and "disk is full" in str(err):
        return f"run failed: cannot write the state database {database}: {err}; {_what_is_left(err)}"
    if getattr(err, "unfinished", None):
        return (
            f"run failed: {type(err).__name__}: {err}; {_what_is_left(err)} (set CLEANCORPUS_DEBUG=1 for a traceback)"
        )
    return f"run failed: {type(err).__name__}: {err} (set CLEANCORPUS_DEBUG=1 for a traceback)"


def _quiet_ray() -> None:
    """Show only Ray's errors: its start-up notices (e.g. that token authentication is enabled) are
    warnings on stderr, which a quiet (cron) run must not print. Failures still end the run as errors."""
    try:
        import ray  # noqa: F401 - importing it configures its logger (level INFO), so it comes first
    except ImportError:
        return  # the run says how to install it
    ray_log = logging.getLogger("ray")
    ray_log.setLevel(logging.ERROR)
    # ray.init(address=...) sets the level back to INFO; the filters on its handlers stay
    for handler in ray_log.handlers:
        handler.addFilter(lambda record: record.levelno >= logging.ERROR)


def _count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``: a nightly cron run over one new file said "1 files"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _summary(report: dict[str, Any], outdir: Any) -> str:
    inputs, docs, chars = report["inputs"], report["documents"], report["characters"]
    share = chars["removed"] / chars["in"] if chars["in"] else 0.0
    files = _count(inputs["files"], "file")
    to_do = inputs["files"] - inputs["unchanged_skipped"]
    if inputs.get("limit") is not None and inputs["processed"] < to_do:  # a trial that stopped early
        new = "new or changed " if inputs["unchanged_skipped"] else ""
        files = f"{inputs['processed']} of {to_do} {new}files read (--limit {inputs['limit']})"
    elif inputs["unchanged_skipped"]:
        files = f"{inputs['processed']} new or changed of {files}"
    if inputs.get("skipped"):  # a folder of .ndjson or .json files read nothing and said only "0 files"
        first = inputs["skipped"][0]
        files += f" ({len(inputs['skipped'])} skipped, e.g. {first['path']}: {first['reason']})"
    quarantined = f" ({docs['quarantined']} quarantined)" if docs["quarantined"] else ""
    return (
        f"{files}, {_count(docs['in'], 'document')}: {docs['out']} kept, {docs['rejected']} rejected{quarantined}; "
        f"{share:.1%} of characters removed; output in {outdir} ({report['seconds']:.1f} s)"
    )


def _progress_display(console: Any = None) -> tuple[Any, Any]:
    """A live display on stderr for interactive runs: file i/n, documents, MB/s, ETA, and a line of
    per-stage counts. Returns (progress, on_progress callback for the runner)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class StageProgress(Progress):
        stage_line = Text("")

        def get_renderables(self) -> Any:
            yield self.make_tasks_table(self.tasks)
            if self.stage_line:
                yield self.stage_line

    progress = StageProgress(
        TextColumn("[bold]cleancorpus"),
        TextColumn("file {task.fields[file]}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[docs]} docs"),
        console=console or Console(stderr=True),  # stdout may be a pipe; the display belongs on the terminal
        transient=True,
        # Refreshed by update() below, not by a thread of its own: with a second thread the workers could not
        # be forked (executors.start_method) and each would be spawned, importing and loading everything again
        # (40 MB at --workers 2: ~1.2 s more CPU, ~13 %).
        auto_refresh=False,
    )
    task = progress.add_task("run", total=None, docs="0", file="-")
    # Bytes read are estimated: sizes of the files finished plus the characters read from the current
    # one (capped at its size), as the runner reports documents and characters, not file offsets.
    done_before: list[int] = []
    current = {"file": -1, "chars_at_start": 0, "last_chars": 0}
    refreshed = [0.0]  # when update() last redrew the display

    def update(docs: int, chars: int, total_bytes: int, details: dict[str, Any] | None = None) -> None:
        details = details or {}
        files = details.get("files") or []
        index = details.get("file", -1)
        if files and len(done_before) != len(files) + 1:
            done_before[:] = [0]
            for f in files:
                done_before.append(done_before[-1] + f.size)
        if index != current["file"]:
            current.update(file=index, chars_at_start=current["last_chars"])
        current["last_chars"] = chars
        if files and 0 <= index < len(files):
            in_file = min(chars - current["chars_at_start"], files[index].size)
            completed = done_before[index] + max(in_file, 0)
            file_text = f"{index + 1}/{len(files)}"
        else:
            completed, file_text = min(chars, total_bytes), "-"
        progress.update(task, completed=completed, total=total_bytes, docs=f"{docs:,}", file=file_text)
        stages = details.get("stages") or {}
        parts: list[str] = []
        for st in stages.values():
            removed = st.characters_in - st.characters_out
            share = f"{removed / st.characters_in:.1%}" if st.characters_in else "0%"
            parts.append(
                f"{st.stage} −{share}" + (f" {st.documents_rejected:,} rejected" if st.documents_rejected else "")
            )
        progress.stage_line = Text("  " + " · ".join(parts), style="dim") if parts else Text("")
        now = time.monotonic()
        if now - refreshed[0] >= _PROGRESS_REFRESH_SECONDS:
            refreshed[0] = now
            progress.refresh()

    return progress, update


_PROGRESS_REFRESH_SECONDS = 0.1  # (rich's own auto-refresh: 10 per second)


@cli.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
def check(config_path: str) -> None:
    """Validate CONFIG and print it resolved (every option with its value); settings that do nothing as
    configured are warned about on stderr (exit 0)."""
    from pipeline.config import config_warnings, render_config_yaml

    config = _config_or_exit(config_path)
    for warning in config_warnings(config, config_path):
        click.echo(f"cleancorpus: warning: {warning}", err=True)
    click.echo(render_config_yaml(config), nl=False)


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(_type_name(a) for a in args)}]"
    return "null" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


@cli.command()
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the default config as YAML (configs/default.yaml).")
def stages(as_yaml: bool) -> None:
    """List every stage with its options, types, defaults and help."""
    from pipeline.config import default_config, render_config_yaml
    from pipeline.stages import BUILTIN_STAGES, stage_class

    if as_yaml:
        click.echo(render_config_yaml(default_config()), nl=False)
        return
    for name in BUILTIN_STAGES:
        cls = stage_class(name)
        click.echo(f"{name}: {(cls.__doc__ or '').strip().splitlines()[0]}")
        defaults = cls.Options().model_dump(mode="json")
        for field_name, field in cls.Options.model_fields.items():
            click.echo(f"  {field_name} ({_type_name(field.annotation)}, default {defaults[field_name]!r})")
            if field.description:
                click.echo(f"      {field.description}")
        click.echo("")
    click.echo("Your own stage: `stage: package.module:ClassName` (a class with an Options model and process(doc)).")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for key in ("report", "document", "source", "reason"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(log_file: str | None, as_json: bool) -> logging.Logger:
    """The 'cleancorpus' logger: silent unless a log file is given (cron output stays quiet)."""
    log = logging.getLogger("cleancorpus")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.INFO)
    if log_file:
        try:
            handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as err:  # a missing or unwritable folder: the command line's fault, as a directory is
            _fail(f"cannot open the log file {log_file}: {err.strerror or err}", EXIT_USAGE)
        handler.setFormatter(
            _JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
        )
    else:
        handler = logging.NullHandler()
    log.addHandler(handler)
    return log


@cli.group()
def state() -> None:
    """Show or clear the state kept between runs (processed files, dedup index)."""


def _runs_config(config_path: str | None, outdir: str | None) -> RunConfig:
    """The config of the runs on an output folder: the one given, else what the last run recorded in its
    report.json (where its state is, how its inputs were read, its output format; not its stages), else the
    defaults. Without it, `explain` after a run with input.text_field: body said the input was not found."""
    from pipeline.config import ConfigError, default_config, load_config_data

    if config_path:
        return _config_or_exit(config_path)
    report = Path(outdir or default_config().output.dir) / "report.json"
    try:
        ran = json.loads(report.read_bytes())
        recorded = ran["config"]
        kept = {k: recorded[k] for k in ("input", "output", "state") if k in recorded}
        if isinstance(kept.get("state"), str) and isinstance(ran.get("cwd"), str):
            # a relative `state:` is relative to the directory the run was started in, not to this command's
            kept["state"] = os.path.join(ran["cwd"], kept["state"])
        # and its extract stage: an HTML page's "before" is the text it made (what removed.jsonl's offsets index)
        extract = [s for s in recorded.get("stages", []) if isinstance(s, dict) and s.get("stage") == "extract"]
        return load_config_data({"stages": extract, **kept}, str(report))
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return default_config()


def _state_folder(config_path: str | None, outdir: str | None) -> Path:
    from pipeline.runner import state_folder

    config = _runs_config(config_path, outdir)
    return state_folder(config, Path(outdir or config.output.dir))


_state_options = [
    click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        help="YAML config of the runs (default: the config the last run recorded in OUTDIR/report.json).",
    ),
    click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), help="Output folder of the runs."),
]


def _with_state_options(fn: Any) -> Any:
    for option in reversed(_state_options):
        fn = option(fn)
    return fn


@state.command("info")
@_with_state_options
def state_info(config_path: str | None, outdir: str | None) -> None:
    """What the state holds: files processed, documents, config hash, dedup index size."""
    from pipeline.state import DB_NAME, Inaccessible, StateCorrupt, StateStore, lock_holder

    folder = _state_folder(config_path, outdir)
    if not (folder / DB_NAME).exists():
        click.echo(f"no state in {folder} (no run has finished a file there yet)")
        return
    try:
        store = StateStore.for_reading(folder)
        try:
            info = store.info()
        finally:
            store.close()
    except Inaccessible as err:
        _fail(str(err), EXIT_USAGE)
    except (StateCorrupt, sqlite3.DatabaseError) as err:
        _exit_if_damaged(err, folder / DB_NAME, config_path, outdir)
        raise
    if not info["files"]:
        holder = lock_holder(folder)
        if holder is not None:  # (the first run of a new output folder, under way: it said "a --limit trial")
            click.echo(f"no file recorded in {folder} yet: a run ({holder}) is under way")
        else:
            click.echo(f"no state in {folder} (no file recorded: a --limit trial run records nothing)")
        return
    for key, value in info.items():
        if key == "stage_rows":  # what each stage keeps for later runs, e.g. "dedup_index: 3 files, 2.1 MB"
            for stage, (files, size) in sorted(value.items()):
                name = stage.partition(":")[2]
                label = "dedup_index" if name == "dedup" else f"{name}_state"
                click.echo(f"{label}: {files} file{'s' * (files != 1)}, {_megabytes(size)}")
        elif key == "bytes":
            click.echo(f"bytes: {value} ({_megabytes(value)} of state database)")
        else:
            click.echo(f"{key}: {value}")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@state.command("reset")
@_with_state_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def state_reset(config_path: str | None, outdir: str | None, yes: bool) -> None:
    """Forget every processed file and the dedup index (the next run processes everything). A damaged
    state database is kept beside, as state.sqlite.corrupt-TIME. The outputs stay as they are (to change
    output.format, run with --rebuild: it removes the outputs of the old format)."""
    from pipeline.state import Inaccessible, StateLocked, check_writable, clear_state, run_lock

    folder = _state_folder(config_path, outdir)
    if not folder.exists():
        click.echo(f"no state in {folder}")
        return
    if not yes:
        try:
            confirmed = click.confirm(f"Forget the state in {folder}?", default=False)
        except click.Abort:  # no answer (end of input, Ctrl-C): no
            click.echo("")
            confirmed = False
        if not confirmed:  # not a failure: nothing was asked to be done
            click.echo(f"nothing reset: the state in {folder} is as it was")
            return
    try:
        check_writable(folder, "state folder")  # before anything is removed
        with run_lock(folder):  # without opening the database, which may be damaged
            aside = clear_state(folder)
    except StateLocked as err:
        _fail(f"{err}; not resetting", EXIT_LOCKED)
    except Inaccessible as err:
        _fail(f"{err}; not resetting", EXIT_USAGE)
    kept = f"; the damaged state database was kept as {aside}" if aside is not None else ""
    click.echo(f"state in {folder} cleared{kept}")


@cli.command()
@click.argument("doc_id", metavar="ID")
@click.option(
    "--source",
    metavar="FILE",
    help="Only the document of this input file (its path relative to the input folder, as the audit records "
    "name it; - for standard input). Reads only this input file.",
)
@click.option(
    "--line", type=click.IntRange(min=1), metavar="N", help="Only the document of this JSONL line (Parquet row)."
)
@_with_state_options
def explain(doc_id: str, source: str | None, line: int | None, config_path: str | None, outdir: str | None) -> None:
    """Show document ID before and after, with each removed span marked by stage and rule.

    A document is its id, its input file and, in JSONL or Parquet, its line. Ids are often shared
    (per-file numbering, a record id in two archives): then each document with the id is shown in
    turn, under its own heading and verdict (KEPT or REJECTED), or with more than 10 the command lists
    them and exits 2; --source and --line pick one. Without --source every input file of the state is
    read. Exits 2 if the run had output.audit: false (what was removed or rejected is unknown).
    """
    from pipeline.explain import ExplainError, explain_document
    from pipeline.runner import state_folder
    from pipeline.state import DB_NAME, Inaccessible, StateCorrupt

    config = _runs_config(config_path, outdir)
    folder = Path(outdir or config.output.dir)
    if not folder.is_dir():  # a mistyped -o said "no document ... (looked in removed.jsonl, ...)"
        _fail(f"no output folder {folder}: name the folder of the run with -o", EXIT_USAGE)
    try:
        text = explain_document(
            config, Path(outdir or config.output.dir), doc_id, sys.stdout.isatty(), source=source, line=line
        )
    except (ExplainError, Inaccessible) as err:
        _fail(str(err), EXIT_USAGE)
    except (StateCorrupt, sqlite3.DatabaseError) as err:
        _exit_if_damaged(err, state_folder(config, Path(outdir or config.output.dir)) / DB_NAME, config_path, outdir)
        raise
    click.echo(text)


def main() -> None:
    # A command imports numba, pydantic and the stages' tables: millions of objects that live until exit.
    # Without automatic collections they are not walked on the way (a run turns them back on once it has
    # set up), and frozen at exit the interpreter's last collection skips them: ~0.5 s of a short run here.
    gc.disable()
    by_the_program = _called_by_the_program(sys._getframe(1))
    if by_the_program:  # (not in another program's process: a test run's own patterns are not the command's)
        _one_blas_thread()
        re_cache.install()  # the regular expressions an earlier process compiled (~35 ms of a run)
    try:
        try:
            cli(prog_name="cleancorpus")
        except OSError as err:
            if err.errno not in _WRITE_ERRNOS:
                raise
            sys.exit(_output_failed(err))
    except SystemExit as done:
        gc.freeze()
        code = done.code
        if code in (0, None) and sys.stdout is not None:
            try:  # (what is still buffered: its error would otherwise come at exit, as a traceback)
                sys.stdout.flush()
            except OSError as err:
                if err.errno not in _WRITE_ERRNOS:
                    raise
                code = _output_failed(err)
        if isinstance(code, int | None) and by_the_program:
            _exit_process(code or 0)  # (the program itself: `python -m pipeline`, the command)
        if code != done.code:
            raise SystemExit(code) from None
        raise
    finally:
        gc.freeze()


def _output_failed(err: OSError) -> int:
    """A command's output that cannot be written (`cleancorpus stages > /dev/full`, a full disk under a
    redirect): one line, not a traceback, and exit 1. What is still buffered for stdout is dropped, so that
    the interpreter does not fail again on it at exit. (A run reports its own files' write errors.)"""
    where = err.filename or "the output"
    click.echo(f"cleancorpus: cannot write {where}: {err.strerror}", err=True)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_FAILED


# What OpenBLAS (numpy's linear algebra) reads for its thread count, in its order.
_BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def _one_blas_thread() -> None:
    """Have OpenBLAS start no threads of its own, unless the user set its thread count. At numpy's import it
    starts one per core, and each spins waiting for work for a while: ~0.07 s of CPU per process (on a 2-core
    machine, the other core's, which the stages' workers share) and ~0.03 s of the import's wall. The stages'
    matrix products are small (dedup's ``lsh_params``: same results with one thread) and the run's parallelism
    is its worker processes, which inherit the setting."""
    if "numpy" not in sys.modules and not any(os.environ.get(name) for name in _BLAS_THREAD_VARIABLES):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def _called_by_the_program(caller: Any) -> bool:
    """Whether ``main()`` was called by the program's own top level, with nothing to do after it: the code of
    a ``__main__`` module run by the interpreter (`python -m pipeline`, the command's launcher, `python -c`),
    outside any ``try`` or ``with`` block. Not so for IPython and Jupyter (a cell's code runs in ``__main__``
    too, called by the shell, which catches SystemExit: ending the process killed the kernel), nor for a
    script of the user's that catches SystemExit around it (it never got it)."""
    if caller.f_globals.get("__name__") != "__main__":
        return False
    below = caller.f_back  # (None: the interpreter ran the script; runpy: `python -m`)
    if below is not None and below.f_globals.get("__name__") != "runpy":
        return False
    import dis

    exception_table = getattr(dis, "_parse_exception_table", None)  # (Python 3.11+: try/with blocks)
    if exception_table is None:
        return False
    return not any(entry.start <= caller.f_lasti < entry.end for entry in exception_table(caller.f_code))


def _exit_process(code: int) -> None:
    """End the process as the interpreter would, less tearing it down: wait for its threads and run the
    exit handlers (pools, temporary files, logging: `atexit`), flush the standard streams, then exit with
    ``code`` at once. Taking apart what the imports built (numba's types and compiled code, the stages'
    tables: module by module, object by object) costs every command ~0.04 s of CPU and nothing else: each
    file, database and pool is closed by the command or by those handlers. Returns (to exit the usual
    way) if a stream cannot be flushed (a closed pipe: reported as the interpreter reports it)."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None:  # not CPython's threading: the interpreter's own way
        return
    shutdown()
    import atexit

    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code)
