"""Typed run configuration: YAML in, validated models out, one clear message on error.

The same pydantic models validate YAML, feed ``cleancorpus stages`` and render
``configs/default.yaml`` (with each option's description as its comment).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from pipeline import lean_imports

lean_imports.import_pydantic()  # (without asyncio)

from pydantic import BaseModel, ConfigDict, Field, ValidationError  # noqa: E402

from pipeline.stages import BUILTIN_STAGES, StageLookupError, StageOptions, stage_class  # noqa: E402
from pipeline.stages.base import OptionError, yaml_error  # noqa: E402


class ConfigError(Exception):
    """A bad config or usage: the CLI prints the message and exits 2."""


class InputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: list[str] = Field(
        default_factory=list, description="Files or folders to read when the command line names none."
    )
    id_field: str = Field("id", min_length=1, description="JSONL field or Parquet column holding the document id.")
    text_field: str = Field(
        "text", min_length=1, description="JSONL field or Parquet column holding the document text."
    )
    max_doc_chars: int = Field(20_000_000, ge=1, description="Documents longer than this are rejected as too large.")


class OutputConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str = Field("output", description="Output folder (the -o option overrides it).")
    audit: bool = Field(True, description="Write removed.jsonl and rejected.jsonl next to the output.")
    metadata_field: str | None = Field(
        None,
        min_length=1,
        description="If set, JSONL output records get this field with what stages learnt "
        "(language, fragments, encoding).",
    )
    format: Literal["jsonl", "parquet", "txt"] | None = Field(
        None,
        description="Output format; null: the input's (JSONL for WARC, WET and HTML inputs). Another format "
        "than the input's is written to OUTDIR/<input name>.<format>. txt: a .txt or .html input's one document "
        "as it is; the documents of other inputs separated by a line holding only a form feed (\\f; a blank "
        "line separates paragraphs).",
    )


@dataclass(frozen=True)
class StageConfig:
    stage: str  # built-in name or "package.module:Class"
    options: StageOptions

    def dump(self) -> dict[str, Any]:
        return {"stage": self.stage, **self.options.model_dump(mode="json")}


@dataclass(frozen=True)
class RunConfig:
    input: InputConfig = field(default_factory=InputConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    stages: tuple[StageConfig, ...] = ()
    state: str | None = None  # state folder; None: OUTDIR/.cleancorpus

    def dump(self) -> dict[str, Any]:
        return {
            "input": self.input.model_dump(mode="json"),
            "output": self.output.model_dump(mode="json"),
            "stages": [s.dump() for s in self.stages],
            "state": self.state,
        }

    def result_dump(self) -> dict[str, Any]:
        """``dump()`` with the stage options that name files replaced by what of the files changes results
        (their content's hash): what the state hashes, so that an edited pattern file is a config change."""
        dump = self.dump()
        dump["stages"] = [{**d, **s.options.file_digests()} for d, s in zip(dump["stages"], self.stages, strict=True)]
        return dump

    def enabled_stages(self) -> list[StageConfig]:
        return [s for s in self.stages if s.options.enabled]


# ---------------------------------------------------------------- loading


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _loc_path(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _elsewhere(key: str, value: Any, model: type[BaseModel] | None, stage: str | None = None) -> str:
    """For a key no closer name explains: where it belongs (another section, another stage), or that a stage's
    options were nested under a key of their own instead of standing beside `stage:`."""
    if (
        isinstance(value, dict)
        and value
        and model is not None
        and stage is not None
        and set(value) <= set(model.model_fields)
    ):
        return f" (a stage's options go directly in its item, beside 'stage: {stage}', not under '{key}:')"
    for section, other in (("input", InputConfig), ("output", OutputConfig)):
        if key in other.model_fields and other is not model:
            return f" ('{key}' is an option of {section}: write {section}: {{{key}: ...}})"
    owners = [
        name
        for name in BUILTIN_STAGES
        if name != stage and key != "enabled" and key in stage_class(name).Options.model_fields
    ]
    if not owners:
        return ""
    if stage is None:
        return f" ('{key}' is an option of stage {' and '.join(owners)}: set it in that stage's item under stages)"
    return f" ('{key}' is an option of stage {' and '.join(owners)}, not of {stage})"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model a key at ``loc`` belongs to: fields of nested models (also in lists, dicts, optionals)
    are followed; a list index or dict key stays with the model of the container's items."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is not None:
            model = _model_in(field.annotation) or model
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _validation_message(
    where: str, prefix: str, model: type[BaseModel], err: ValidationError, stage: str | None = None
) -> str:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    path = _loc_path(prefix, loc)
    if first["type"] == "extra_forbidden":
        known = list(_model_at(model, loc[:-1]).model_fields)  # a nested model's names for a nested key
        hint = _suggest(str(loc[-1]), known)
        if not hint and len(loc) == 1:
            hint = _elsewhere(str(loc[-1]), first.get("input"), model, stage)
        return f"{where}: {path}: unknown option '{loc[-1]}'{hint}"
    return f"{where}: {path}: {first['msg']} (got {first.get('input')!r})"


def _validate(model: type[BaseModel], data: Any, where: str, prefix: str, stage: str | None = None) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_validation_message(where, prefix, model, err, stage)) from None


def _build_stage(
    item: Any, index: int, where: str, search: tuple[Path, ...] = (), folder: Path | None = None
) -> StageConfig:
    path = f"stages[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: {path}: expected a mapping like {{stage: NAME, ...}}, got {item!r}")
    if "stage" not in item:
        for key in item:  # `stag: dedup`, `Stage: dedup`: the misspelt key, not a missing one
            if _suggest(str(key), ["stage"]):
                raise ConfigError(f"{where}: {path}.{key}: unknown key '{key}'{_suggest(str(key), ['stage'])}")
        raise ConfigError(f"{where}: {path}: missing key 'stage' (one of {', '.join(BUILTIN_STAGES)})")
    name = item["stage"]
    if not isinstance(name, str):
        raise ConfigError(f"{where}: {path}.stage: expected a stage name, got {name!r}")
    try:
        cls = stage_class(name, search)
    except StageLookupError as err:
        if ":" in name:
            raise ConfigError(f"{where}: {path}.stage: cannot load stage {err}") from None
        raise ConfigError(
            f"{where}: {path}.stage: unknown stage '{name}'{_suggest(name, list(BUILTIN_STAGES))}; "
            f"known stages: {', '.join(BUILTIN_STAGES)}, or package.module:Class"
        ) from None
    options = _validate(cls.Options, {k: v for k, v in item.items() if k != "stage"}, where, path, name)
    if folder is not None:
        options = options.with_paths_from(folder)
    try:
        cls(options)  # a stage checks what its model cannot: regexes, pattern packs, rule names
    except OptionError as err:
        raise ConfigError(f"{where}: {path}.{err.key}: {err.message}") from None
    except (ValueError, OSError) as err:
        raise ConfigError(f"{where}: {path}: {err}") from None
    return StageConfig(name, options)


def load_config_data(data: Any, where: str = "config", folder: Path | None = None) -> RunConfig:
    """Validate a parsed YAML mapping; raise ConfigError naming the key path. A user stage's module that is
    not on the import path is looked for in ``folder`` (the config file's), then the current directory."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with keys input, output, stages, state")
    known = ["input", "output", "stages", "state"]
    for key in data:
        if key not in known:
            hint = _suggest(str(key), known) or _elsewhere(str(key), data[key], None)
            raise ConfigError(f"{where}: {key}: unknown key '{key}'{hint}")
    raw_input = data.get("input") or {}
    if isinstance(raw_input, (str, list)):  # `input: corpus/` or `input: [a, b]`
        raw_input = {"paths": [raw_input] if isinstance(raw_input, str) else raw_input}
    raw_output = data.get("output") or {}
    if isinstance(raw_output, str):  # `output: out/`
        raw_output = {"dir": raw_output}
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, (list, type(None))):
        raise ConfigError(f"{where}: stages: expected a list of {{stage: NAME, ...}} items")
    state = data.get("state")
    if state is not None and not isinstance(state, str):
        raise ConfigError(f"{where}: state: expected a folder path, got {state!r}")
    return RunConfig(
        state=state,
        input=_validate(InputConfig, raw_input, where, "input"),
        output=_validate(OutputConfig, raw_output, where, "output"),
        # A config that leaves `stages` out (or empty) runs the default stages, as every other key left out
        # takes its default: one that only sets output.format still cleans. `stages: []` runs none.
        stages=default_config().stages
        if raw_stages is None
        else tuple(
            _build_stage(item, i, where, (*((folder,) if folder is not None else ()), Path.cwd()), folder)
            for i, item in enumerate(raw_stages)
        ),
    )


def config_warnings(config: RunConfig, where: str = "config") -> list[str]:
    """Settings that are valid but do nothing as configured: said by `check` and at the start of a run."""
    warnings = []
    for i, s in enumerate(config.stages):
        if s.options.enabled and getattr(s.options, "action", None) == "tag" and config.output.metadata_field is None:
            warnings.append(
                f"{where}: stages[{i}].action: tag lists the fragments in each document's metadata, which is "
                "written only to output.metadata_field (not set): set it, e.g. output: {metadata_field: meta}, "
                "or the fragments are found and shown nowhere (as with action: keep)"
            )
    if config.output.metadata_field is not None and config.output.format == "txt":
        warnings.append(
            f"{where}: output.metadata_field: txt output holds the text only, so the field "
            f"'{config.output.metadata_field}' is written nowhere (output.format: jsonl or parquet has it)"
        )
    return warnings


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, but a key given twice in one mapping is an error: PyYAML keeps the last one without
    a word, so a second `output:` block (a snippet pasted at the end) dropped every option of the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except (yaml.YAMLError, TypeError):
                continue  # a merge key or an unhashable key: PyYAML's own rules and errors apply
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first at line {first[key]})", key_node.start_mark
                )
            first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: config is not valid UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: {yaml_error(err)}") from None
    return load_config_data(data, str(path), path.parent)


def default_config() -> RunConfig:
    """The built-in defaults: every built-in stage, in order, with default options."""
    return RunConfig(stages=tuple(StageConfig(name, stage_class(name).Options()) for name in BUILTIN_STAGES))


# ---------------------------------------------------------------- rendering


def _yaml_value(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip().removesuffix("\n...")
    )


def _render_model(model: BaseModel, indent: str, first_prefix: str | None = None) -> list[str]:
    lines: list[str] = []
    data = model.model_dump(mode="json")
    for i, (name, info) in enumerate(type(model).model_fields.items()):
        if info.description:
            lines.append(f"{indent}# {info.description}")
        prefix = first_prefix if (i == 0 and first_prefix is not None) else indent
        lines.append(f"{prefix}{name}: {_yaml_value(data[name])}")
    return lines


def render_config_yaml(config: RunConfig) -> str:
    """YAML for a config with every option spelled out and its help as a comment."""
    out = [
        "# cleancorpus configuration: every option with its default value.",
        "# Stages run in the order listed; a stage left out does not run.",
        "",
        "input:",
        *_render_model(config.input, "  "),
        "",
        "output:",
        *_render_model(config.output, "  "),
        "",
        "# Folder of the state kept between runs (processed files, dedup index); null: OUTPUT/.cleancorpus",
        f"state: {_yaml_value(config.state)}",
        "",
        "stages:",
    ]
    for stage in config.stages:
        cls = stage_class(stage.stage)
        summary = (cls.__doc__ or "").strip().splitlines()
        out.append(f"  # --- {stage.stage}: {summary[0] if summary else ''}".rstrip())
        out.append(f"  - stage: {stage.stage}")
        out.extend(_render_model(stage.options, "    "))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
