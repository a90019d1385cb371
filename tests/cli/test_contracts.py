"""What producers and installers rely on: the event schema, the README's Events section, the
version, the licence, type hints, dependencies, and every option's default in --help."""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from attribution.events import EVENT_TYPES, InvalidRecord, event_json_schema, parse_record
from crm_attribution.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = ("attribution", "stream", "crm_attribution")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- schema


def readme_events() -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """Event type -> (its README section, the JSON examples in it)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Events\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for part in section.split("\n### `")[1:]:
        name = part.split("`", 1)[0]
        blocks = re.findall(r"```json\n(.*?)```", part, flags=re.S)
        examples = [json.loads(line) for block in blocks for line in block.splitlines() if line]
        out[name] = (part, examples)
    return out


def test_the_readme_describes_every_event_type_with_its_fields_and_an_example() -> None:
    sections = readme_events()
    assert sorted(sections) == sorted(EVENT_TYPES)
    validator = jsonschema.Draft202012Validator(event_json_schema())
    for kind, (text, examples) in sections.items():
        fields = event_json_schema(kind)["properties"]
        for name in fields:
            if name != "type":
                assert f"| `{name}` |" in text, f"README's {kind} table lacks {name}"
        assert examples, f"README shows no {kind} example"
        for example in examples:
            assert example["type"] == kind
            assert parse_record(example).type == kind
            validator.validate(example)


def test_schema_command_writes_the_schema_of_every_type(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert sorted(schema["$defs"]) == sorted(t.capitalize() for t in EVENT_TYPES)
    target = tmp_path / "purchase.json"
    code, _, err = run(capsys, "schema", "--type", "purchase", "-o", str(target))
    assert code == 0 and "wrote" in err
    purchase = json.loads(target.read_text())
    assert purchase["required"] == ["type", "event_id", "ts", "customer_id", "order_id", "amount"]
    assert purchase["properties"]["amount"]["minimum"] == 0


GOOD = {"type": "purchase", "event_id": "p", "ts": "2026-01-05T10:00:00Z", "customer_id": "c",
        "order_id": "o", "amount": 5}  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"amount": -1},
        {"order_id": ""},
        {"ts": "yesterday"},
        {"ts": True},
        {"customer_id": None},
        {"customer_id": "x" * 257},
        {"type": "sale"},
    ],
)
def test_records_the_schema_rejects_are_rejected_by_the_validator_too(
    change: dict[str, Any],
) -> None:
    record = {**GOOD, **change}
    schema = event_json_schema()
    assert not jsonschema.Draft202012Validator(schema).is_valid(record), record
    with pytest.raises(InvalidRecord):
        parse_record(record)


@pytest.mark.parametrize("ts", ["2026-01-05T10:00:00+01:00", 1767571200000, "1767571200000"])
def test_every_time_form_the_validator_takes_is_in_the_schema(ts: Any) -> None:
    record = {**GOOD, "ts": ts}
    parse_record(record)
    jsonschema.Draft202012Validator(event_json_schema()).validate(record)


# ----------------------------------------------------------------------------- package


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    out, _ = capsys.readouterr()
    assert stop.value.code == 0
    assert out.strip() == f"crm-attribution {PYPROJECT['project']['version']}"


def test_the_licence_file_is_the_mit_licence_the_metadata_names() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


@pytest.mark.slow
def test_the_wheel_ships_py_typed_the_licence_and_the_defaults(tmp_path: Path) -> None:
    # Built from a copy of what the sdist holds: an in-tree build leaves build/ behind, whose
    # stale modules a later build would ship.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        # Build isolation: the build back-end pyproject.toml asks for, not the venv's.
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("crm_attribution-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    assert "crm_attribution/settings/defaults.toml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)[-8:]
    # No generic top-level name (PyPI's `config`, a project's own config.py) comes with us.
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == set(PACKAGES), top_level


def test_a_folder_with_its_own_config_module_does_not_shadow_our_settings(tmp_path: Path) -> None:
    (tmp_path / "config.py").write_text("raise SystemExit('the user config.py was imported')\n")
    (tmp_path / "config").mkdir()  # a config/ folder (a namespace package) as well
    done = subprocess.run(
        [sys.executable, "-m", "crm_attribution", "attribute", str(ROOT / "crm_attribution"
         / "examples" / "paths.csv")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the user config.py" not in done.stdout + done.stderr


def test_config_holds_the_documented_defaults_the_package_reads() -> None:
    """config/defaults.toml (where the docs point) is the file the settings package ships."""
    from crm_attribution.settings.typed import DEFAULTS_FILE

    documented = ROOT / "config" / "defaults.toml"
    assert documented.read_bytes() == DEFAULTS_FILE.read_bytes()
    assert DEFAULTS_FILE.is_relative_to(ROOT / "crm_attribution")


# Distribution name -> the module it installs, where they differ.
IMPORT_NAMES = {
    "faust-streaming": "faust",
    "kafka-python": "kafka",
    "prometheus-client": "prometheus_client",
    "pyyaml": "yaml",
    "psycopg": "psycopg",
    "playwright": "playwright",
    "ChannelAttribution": "ChannelAttribution",
    "pytest-timeout": None,  # a pytest plug-in: used through --timeout, never imported
}


def _distribution(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0]


def _imported(folders: list[Path]) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found


def test_every_dependency_is_imported_by_the_packages() -> None:
    imported = _imported([ROOT / p for p in PACKAGES])
    unused = []
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = _distribution(requirement)
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if module not in imported:
            unused.append(name)
    assert unused == [], f"dependencies nothing in {PACKAGES} imports: {unused}"


def test_every_test_dependency_is_used_by_the_tests() -> None:
    imported = _imported([ROOT / "tests"])
    unused = []
    for requirement in PYPROJECT["project"]["optional-dependencies"]["test"]:
        name = _distribution(requirement)
        if name == "crm-attribution":
            continue
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if module is not None and module not in imported:
            unused.append(name)
    assert unused == []


def test_the_check_sees_an_unused_dependency(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import numpy\nfrom polars import col\n")
    assert _imported([tmp_path]) == {"numpy", "polars"}


# ----------------------------------------------------------------------------- --help


def _options(parser: argparse.ArgumentParser, name: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child_name, child in action.choices.items():
                out.extend(_options(child, f"{name} {child_name}".strip()))
        elif action.option_strings:
            out.append((name, action))
    return out


def _help_of(parser: argparse.ArgumentParser, words: list[str]) -> str:
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser.format_help()


def test_every_option_of_every_command_says_its_default_in_help() -> None:
    parser = build_parser()
    assert set(COMMANDS) <= {name.split()[0] for name, _ in _options(parser, "") if name}
    missing = []
    for name, action in _options(parser, ""):
        if action.dest in ("help", "version") or action.required:
            continue
        if action.default is None or action.default is False:
            # No value to show: the help must say what happens without the option.
            said = "default" in (action.help or "") or "instead of" in (action.help or "")
            if not said and not isinstance(action, argparse._StoreTrueAction):
                missing.append(f"{name} {action.option_strings[-1]}")
            continue
        text = " ".join(_help_of(parser, name.split() if name else []).split())
        if f"default: {action.default}" not in text and f"{action.default} (default)" not in text:
            missing.append(f"{name} {action.option_strings[-1]} (default {action.default!r})")
    assert missing == []


# ----------------------------------------------------------------------------- faults


def test_attribute_fails_on_an_empty_log_like_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for command in ("attribute", "report"):
        argv = [command, str(empty)] + (["--events"] if command == "attribute" else [])
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "", command
        assert f"{empty} holds no valid event: nothing to {command}" in err


def test_attribute_on_an_all_invalid_log_lists_the_reasons_and_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "bad.jsonl"
    log.write_text('{"type": "purchase"}\nnot json\n')
    report = tmp_path / "invalid.jsonl"
    code, out, err = run(capsys, "attribute", str(log), "--events", "--invalid-report", str(report))
    assert code == 2 and out == "" and "Traceback" not in err
    assert "holds no valid event (2 invalid records): nothing to attribute" in err
    assert "line 1: missing field 'event_id'" in err
    assert [json.loads(line)["line"] for line in report.read_text().splitlines()] == [1, 2]


def test_attribute_fails_on_a_path_file_without_paths(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    paths = tmp_path / "paths.csv"
    paths.write_text("path,total_conversions,total_conversion_value,total_null\n")
    code, out, err = run(capsys, "attribute", str(paths))
    assert code == 2 and out == "" and "holds no valid path: nothing to attribute" in err


@pytest.mark.slow
def test_worker_with_an_unreachable_broker_says_so_in_one_line(tmp_path: Path) -> None:
    from tests.integration.stream_harness import free_port

    program = Path(sys.executable).with_name("crm-attribution")
    done = subprocess.run(
        [str(program), "worker", "--bootstrap", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Kafka at 127.0.0.1:"), lines
    assert "broker start" in lines[0]


def test_a_consumer_of_customer_events_refuses_money_events_with_the_reason() -> None:
    from attribution.events import parse_event

    for kind, (_, examples) in readme_events().items():
        if kind in ("refund", "rate"):
            with pytest.raises(InvalidRecord, match=f"{kind} events are applied by the batch"):
                parse_event(examples[0])
        else:
            assert parse_event(examples[0]).type == kind
