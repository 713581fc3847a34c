"""Command line: ``cleancorpus run | check | stages``.

Exit status: 0 success, 1 the run failed, 2 usage or config error.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import click

from pipeline import __version__
from pipeline.config import ConfigError, default_config, load_config, render_config_yaml
from pipeline.stages import BUILTIN_STAGES, stage_class

EXIT_FAILED = 1
EXIT_USAGE = 2


def _fail(message: str, code: int) -> None:
    click.echo(f"cleancorpus: error: {message}", err=True)
    sys.exit(code)


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
    default=1,
    show_default=True,
    help="Worker processes for per-document stages.",
)
@click.option("--limit", type=click.IntRange(0), default=None, help="Process at most N documents.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless something goes wrong.")
def run(
    inputs: tuple[str, ...], config_path: str | None, outdir: str | None, workers: int, limit: int | None, quiet: bool
) -> None:
    """Clean INPUT files or folders (.txt, .jsonl, .jsonl.gz, .jsonl.zst) into the output folder."""
    from pipeline.runner import run as run_pipeline

    try:
        config = load_config(config_path) if config_path else default_config()
    except ConfigError as err:
        _fail(str(err), EXIT_USAGE)
    interactive = not quiet and sys.stderr.isatty()
    progress, on_progress = _progress_display() if interactive else (None, None)
    try:
        if progress is not None:
            progress.start()
        result = run_pipeline(config, list(inputs), outdir, workers=workers, limit=limit, on_progress=on_progress)
    except ConfigError as err:
        _fail(str(err), EXIT_USAGE)
    except KeyboardInterrupt:
        _fail("interrupted; no partial output was committed for the file being written", EXIT_FAILED)
    except Exception as err:
        if os.environ.get("CLEANCORPUS_DEBUG"):
            traceback.print_exc()
        _fail(f"run failed: {type(err).__name__}: {err} (set CLEANCORPUS_DEBUG=1 for a traceback)", EXIT_FAILED)
    finally:
        if progress is not None:
            progress.stop()
    if not quiet:
        r = result.report
        chars = r["characters"]
        share = chars["removed"] / chars["in"] if chars["in"] else 0.0
        click.echo(
            f"cleancorpus: {r['inputs']['files']} files, {result.documents_in} documents: "
            f"{result.documents_out} kept, {result.documents_rejected} rejected; "
            f"{share:.1%} of characters removed; output in {result.outdir} ({r['seconds']:.1f} s)",
            err=True,
        )


def _progress_display() -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("[bold]cleancorpus"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[docs]} docs"),
        transient=True,
    )
    task = progress.add_task("run", total=None, docs=0)

    def update(docs: int, chars: int, total_bytes: int) -> None:
        progress.update(task, completed=chars, total=total_bytes, docs=docs)

    return progress, update


@cli.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False))
def check(config_path: str) -> None:
    """Validate CONFIG and print it resolved (every option with its value)."""
    try:
        config = load_config(config_path)
    except ConfigError as err:
        _fail(str(err), EXIT_USAGE)
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


def main() -> None:
    cli(prog_name="cleancorpus")
