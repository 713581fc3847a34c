"""Config: defaults in sync with configs/default.yaml, clear errors with key paths and suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO

from pipeline.cli import cli
from pipeline.config import ConfigError, default_config, load_config, load_config_data, render_config_yaml


def _error(data: object) -> str:
    with pytest.raises(ConfigError) as err:
        load_config_data(data, "my.yaml")
    return str(err.value)


def test_default_yaml_spells_out_exactly_the_builtin_defaults() -> None:
    path = REPO / "configs" / "default.yaml"
    assert load_config(path).dump() == default_config().dump()
    # and it is the rendered text, so every option carries its help comment
    assert path.read_text(encoding="utf-8") == render_config_yaml(default_config())
    for stage in default_config().stages:
        assert stage.options.enabled


def test_every_option_has_a_comment_in_default_yaml() -> None:
    text = (REPO / "configs" / "default.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if ":" in stripped and not stripped.startswith(("#", "- stage:")) and not stripped.endswith(":"):
            assert lines[i - 1].strip().startswith("#"), f"no comment above {stripped!r}"


def test_unknown_stage_names_path_and_suggests() -> None:
    msg = _error({"stages": [{"stage": "encoding"}, {"stage": "dedupe"}]})
    assert msg.startswith("my.yaml: stages[1].stage: unknown stage 'dedupe'")
    assert "did you mean 'dedup'" in msg


def test_a_misspelt_stage_key_or_class_is_named_with_the_closest_name() -> None:
    # `stag: dedup` said only "missing key 'stage'"; a user class one letter off gave no hint
    assert _error({"stages": [{"stage": "encoding"}, {"stag": "dedup"}]}) == (
        "my.yaml: stages[1].stag: unknown key 'stag' (did you mean 'stage'?)"
    )
    assert "missing key 'stage'" in _error({"stages": [{"threshold": 0.5}]})
    msg = _error({"stages": [{"stage": "example_stage:MinWord"}]})
    assert msg.startswith("my.yaml: stages[0].stage: cannot load stage example_stage:MinWord")
    assert "did you mean example_stage:MinWords?" in msg


def test_a_misspelt_key_in_a_nested_options_model_suggests_the_closest_name() -> None:
    # the suggestion came from the stage's own options only: nested keys got none
    bounds = {"stage": "example_stage:WordBounds", "bounds": {"min_word": 3}}
    assert _error({"stages": [bounds]}) == (
        "my.yaml: stages[0].bounds.min_word: unknown option 'min_word' (did you mean 'min_words'?)"
    )
    per_language = {"stage": "example_stage:WordBounds", "per_language": {"de": {"max_wrods": 9}}}
    assert _error({"stages": [per_language]}).endswith(
        "stages[0].per_language.de.max_wrods: unknown option 'max_wrods' (did you mean 'max_words'?)"
    )


def test_no_unicode_normalization_is_written_alike_in_encoding_and_normalize() -> None:
    # encoding took only null and normalize only 'none': switching both off took two spellings
    for value in (None, "none"):
        stages = [{"stage": "encoding", "normalization": value}, {"stage": "normalize", "unicode_form": value}]
        encoding, normalize = load_config_data({"stages": stages}).stages
        assert encoding.options.normalization is None and normalize.options.unicode_form == "none"


def test_unknown_option_names_path_and_suggests() -> None:
    msg = _error({"stages": [{"stage": "encoding"}, {"stage": "normalize"}, {"stage": "dedup", "treshold": 0.9}]})
    assert msg == "my.yaml: stages[2].treshold: unknown option 'treshold' (did you mean 'threshold'?)"


def test_wrong_type_and_range() -> None:
    assert "stages[0].threshold" in _error({"stages": [{"stage": "dedup", "threshold": "high"}]})
    assert "stages[0].num_perm" in _error({"stages": [{"stage": "dedup", "num_perm": 2}]})
    assert "output.audit" in _error({"output": {"audit": "maybe"}})


def test_empty_field_names_are_refused() -> None:
    # an empty metadata_field silently wrote no metadata; an empty field name is a typo, not a choice
    assert "output.metadata_field: String should have at least 1 character" in _error(
        {"output": {"metadata_field": ""}}
    )
    assert "input.text_field" in _error({"input": {"text_field": ""}})
    assert "input.id_field" in _error({"input": {"id_field": ""}})


def test_unknown_top_level_key_suggests() -> None:
    assert "did you mean 'stages'" in _error({"stage": []})
    assert "unknown option 'text_feld' (did you mean 'text_field'?)" in _error({"input": {"text_feld": "body"}})


def test_an_option_in_the_wrong_place_names_where_it_belongs() -> None:
    # misplaced rather than misspelt: no close name, so the message said only "unknown option 'action'"
    assert _error({"format": "txt"}) == (
        "my.yaml: format: unknown key 'format' ('format' is an option of output: write output: {format: ...})"
    )
    assert "'format' is an option of output" in _error({"input": {"format": "txt"}})
    assert "'threshold' is an option of stage dedup: set it in that stage's item under stages" in _error(
        {"threshold": 0.5}
    )
    # an option under the previous stage's item (one indentation level off)
    msg = _error({"stages": [{"stage": "language"}, {"stage": "dedup", "action": "tag"}]})
    assert (
        msg
        == "my.yaml: stages[1].action: unknown option 'action' ('action' is an option of stage language, not of dedup)"
    )
    # options nested under a key of their own
    for key in ("options", "dedup"):
        msg = _error({"stages": [{"stage": "dedup", key: {"threshold": 0.5}}]})
        assert msg.endswith(f"(a stage's options go directly in its item, beside 'stage: dedup', not under '{key}:')")
    assert _error({"stages": [{"stage": "dedup", "colour": 1}]}) == "my.yaml: stages[0].colour: unknown option 'colour'"


def test_shorthands_for_input_and_output() -> None:
    config = load_config_data({"input": "corpus/", "output": "out/"})
    assert config.input.paths == ["corpus/"] and config.output.dir == "out/"


def test_a_config_without_stages_runs_the_default_stages() -> None:
    """Left out or empty, `stages` takes its default like every other key (a config that only sets the
    output format still cleans); an explicit empty list runs none."""
    defaults = default_config().stages
    assert load_config_data({"output": {"format": "jsonl"}}).stages == defaults
    assert load_config_data({"stages": None}).stages == defaults
    assert load_config_data(None).stages == defaults
    assert load_config_data({"stages": []}).stages == ()


def test_disabled_stage_is_kept_but_not_run() -> None:
    config = load_config_data({"stages": [{"stage": "normalize", "enabled": False}, {"stage": "encoding"}]})
    assert [s.stage for s in config.enabled_stages()] == ["encoding"]


def test_user_stage_by_import_path() -> None:
    config = load_config_data({"stages": [{"stage": "example_stage:MinWords", "min_words": 3}]})
    assert config.stages[0].options.min_words == 3
    assert "cannot load stage" in _error({"stages": [{"stage": "nosuch.module:Thing"}]})


def test_invalid_yaml_is_one_line_with_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - stage: encoding\n   bad: [\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value).startswith(f"{bad}: invalid YAML at line")


def test_a_key_given_twice_is_an_error_not_the_last_one_silently(tmp_path: Path) -> None:
    # PyYAML keeps the last: an `output:` block pasted at the end dropped `format: txt` of the first
    config = tmp_path / "twice.yaml"
    config.write_text("output: {format: txt}\nstages:\n  - stage: dedup\noutput: {audit: false}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert str(err.value) == f"{config}: invalid YAML at line 4, column 1: key 'output' given twice (first at line 1)"
    config.write_text("stages:\n  - stage: dedup\n    threshold: 0.9\n    threshold: 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 4, column 5: key 'threshold' given twice \(first at line 3\)"):
        load_config(config)
    config.write_text("stages:\n  - stage: dedup\n    threshold: 0.9\n  - stage: dedup\n", encoding="utf-8")
    assert [s.stage for s in load_config(config).stages] == ["dedup", "dedup"]  # one key per mapping


def test_check_prints_resolved_config_and_exits_2_on_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("stages:\n  - stage: dedup\n    threshold: 0.9\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(good)])
    assert result.exit_code == 0
    resolved = yaml.safe_load(result.output)
    assert resolved["stages"][0]["threshold"] == 0.9 and resolved["stages"][0]["ngram"] == 5
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - stage: langauge\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(bad)])
    assert result.exit_code == 2
    assert "stages[0].stage: unknown stage 'langauge' (did you mean 'language'?)" in result.output
    assert "Traceback" not in result.output


def test_stages_command_lists_every_option() -> None:
    result = CliRunner().invoke(cli, ["stages"])
    assert result.exit_code == 0
    for stage in default_config().stages:
        assert f"{stage.stage}: " in result.output
        for name in type(stage.options).model_fields:
            assert f"  {name} (" in result.output


def test_stage_checks_beyond_the_model_are_config_errors() -> None:
    msg = _error({"stages": [{"stage": "boilerplate", "disable_rules": ["share", "coment-form"]}]})
    # named by its key path, as a misspelt option is
    assert msg == "my.yaml: stages[0].disable_rules[1]: unknown rule 'coment-form' (did you mean 'comment-form'?)"
    assert "bad regex" in _error({"stages": [{"stage": "boilerplate", "patterns": {"x": ["(unclosed"]}}]})


def test_a_user_stage_beside_the_config_or_in_the_current_directory_is_found_by_the_command_too(
    tmp_path: Path,
) -> None:
    # `python -m pipeline` has the current directory on the import path, the `cleancorpus` command does not
    # (python -P here: nothing prepended): both find a stage module beside the config or in the current folder.
    import os
    import subprocess
    import sys

    code = (REPO / "tests" / "example_stage.py").read_text(encoding="utf-8")
    (tmp_path / "confdir").mkdir()
    (tmp_path / "confdir" / "stage_beside_config.py").write_text(code, encoding="utf-8")
    (tmp_path / "confdir" / "c.yaml").write_text(
        "stages:\n  - stage: normalize\n  - stage: stage_beside_config:MinWords\n    min_words: 3\n"
    )
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "stage_in_cwd.py").write_text(code, encoding="utf-8")
    (tmp_path / "cwd" / "c.yaml").write_text("stages:\n  - stage: stage_in_cwd:MinWords\n    min_words: 3\n")
    (tmp_path / "cwd" / "broken.yaml").write_text("stages:\n  - stage: no_such_stage_module:MinWords\n")
    (tmp_path / "in.jsonl").write_text('{"id": "a", "text": "Too short"}\n{"id": "b", "text": "Long enough here."}\n')
    env = dict(os.environ, PYTHONPATH=str(REPO))
    command = [sys.executable, "-P", "-c", "from pipeline.cli import main; main()"]

    def cleancorpus(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *args], cwd=tmp_path / "cwd", env=env, capture_output=True, text=True, timeout=120
        )

    for config in ("../confdir/c.yaml", "c.yaml"):
        result = cleancorpus("check", config)
        assert result.returncode == 0, result.stderr  # (before: No module named 'stage_beside_config')
    result = cleancorpus("check", "broken.yaml")
    assert result.returncode == 2
    assert "cannot import no_such_stage_module: No module named 'no_such_stage_module'" in result.stderr
    # Worker processes (forked or spawned) find it as well.
    result = cleancorpus("run", "../in.jsonl", "-c", "../confdir/c.yaml", "-o", "../out", "--workers", "2", "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "in.jsonl").read_text() == '{"id":"b","text":"Long enough here."}\n'


def test_a_pattern_file_beside_the_config_is_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cleancorpus run -c /srv/cleaning/cleaning.yaml` from another folder: the pack beside the config was
    # looked for in the current directory only ("cannot read pattern file pack.yaml")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "pack.yaml").write_text("rules:\n  sponsor:\n    lines: [sponsored content]\n")
    config = tmp_path / "conf" / "c.yaml"
    config.write_text("stages:\n  - stage: boilerplate\n    pattern_files: [pack.yaml]\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (stage,) = load_config(config).stages
    assert stage.options.pattern_files == [str(tmp_path / "conf" / "pack.yaml")]
    # the current directory's file first, as before
    (tmp_path / "elsewhere" / "pack.yaml").write_text("rules:\n  sponsor:\n    lines: [sponsored by]\n")
    assert load_config(config).stages[0].options.pattern_files == ["pack.yaml"]
    # named by content in the config hash: the same pack reached by another path is no config change
    from pipeline.state import config_hash

    monkeypatch.chdir(tmp_path / "conf")
    here = config_hash(load_config(config).result_dump())
    monkeypatch.chdir(tmp_path)
    assert config_hash(load_config(config).result_dump()) == here
    missing = tmp_path / "conf" / "missing.yaml"
    missing.write_text("stages:\n  - stage: boilerplate\n    pattern_files: [nowhere.yaml]\n")
    with pytest.raises(ConfigError, match="cannot read pattern file nowhere.yaml"):
        load_config(missing)


def test_language_tagging_without_a_metadata_field_is_warned_about(tmp_path: Path) -> None:
    # action: tag lists fragments in the document's metadata, written only to output.metadata_field: the
    # README's example config set tag without it, and the fragments were found and shown nowhere
    config = tmp_path / "c.yaml"
    config.write_text("stages:\n  - stage: normalize\n  - stage: language\n    action: tag\n")
    result = CliRunner().invoke(cli, ["check", str(config)])
    assert result.exit_code == 0
    assert f"cleancorpus: warning: {config}: stages[1].action: tag lists the fragments" in result.stderr
    assert "output.metadata_field (not set)" in result.stderr and "warning" not in result.stdout
    config.write_text("output: {metadata_field: meta}\nstages:\n  - stage: language\n    action: tag\n")
    assert "warning" not in CliRunner().invoke(cli, ["check", str(config)]).stderr
    config.write_text("output: {format: txt, metadata_field: meta}\n")
    assert (
        "output.metadata_field: txt output holds the text only"
        in CliRunner().invoke(cli, ["check", str(config)]).stderr
    )
