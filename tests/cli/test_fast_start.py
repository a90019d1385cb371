"""``attribute`` starts fast: one subcommand imported, no pydantic or rich unless needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_attribution.cli import COMMANDS, main, named_command
from crm_attribution.settings.shipped import shipped_attribution
from crm_attribution.settings.typed import AttributionSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
PATHS = str(ROOT / "crm_attribution" / "examples" / "paths.csv")


def test_shipped_attribution_is_what_load_settings_gives() -> None:
    shipped = shipped_attribution(environ={})
    assert shipped is not None
    validated = load_settings(environ={}).attribution
    assert set(AttributionSettings.model_fields) == set(vars(shipped))
    for name in AttributionSettings.model_fields:
        mine, theirs = getattr(shipped, name), getattr(validated, name)
        assert mine == theirs and type(mine) is type(theirs), name
    assert shipped.timeout_days == validated.timeout_days


@pytest.mark.parametrize(
    ("config_file", "environ"),
    [
        ("my.toml", {}),
        (None, {"CRM_CONFIG_FILE": "my.toml"}),
        (None, {"CRM_ATTRIBUTION__MARKOV_ORDER": "2"}),
        (None, {"CRM_WORKER__STORE": "memory://"}),
        (None, {"CRM_NOSUCH__SETTING": "1"}),  # load_settings must reject it
    ],
)
def test_anything_that_may_override_goes_through_load_settings(
    config_file: str | None, environ: dict[str, str]
) -> None:
    assert shipped_attribution(config_file, environ) is None


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"KAFKA_BOOTSTRAP_SERVERS": "broker:9092"},  # only ever sets kafka.bootstrap_servers
        {"CRM_CONFIG_FILE": ""},  # empty: no file, as load_settings reads it
        {"CRM_SOMETHING": "x"},  # not a CRM_<SECTION>__<NAME> name: load_settings ignores it
    ],
)
def test_the_shipped_defaults_when_nothing_overrides(environ: dict[str, str]) -> None:
    assert shipped_attribution(None, environ) is not None
    load_settings(environ=environ)  # and load_settings agrees that nothing is wrong


def test_env_override_still_applies(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def markov(*extra: str) -> object:
        assert main(["attribute", PATHS, "--models", "markov", *extra]) == 0
        return json.loads(capsys.readouterr().out)["models"]["markov"]

    first_order, second_order = markov(), markov("--order", "2")
    assert first_order != second_order
    monkeypatch.setenv("CRM_ATTRIBUTION__MARKOV_ORDER", "2")
    assert markov() == second_order


def test_bad_env_override_is_a_human_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_ATTRIBUTION__MARKOV_ORDER", "0")
    assert main(["attribute", PATHS, "--models", "markov"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "attribution.markov_order" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["attribute", "x.csv"], "attribute"),
        (["--config", "c.toml", "report", "x"], "report"),
        (["--config=c.toml", "attribute"], "attribute"),
        (["--help", "attribute"], None),
        (["--conf", "c.toml", "attribute"], None),
        (["atribute", "x.csv"], None),
        ([], None),
    ],
)
def test_named_command(argv: list[str], command: str | None) -> None:
    assert named_command(argv) == command


def test_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("attribute", "report", "generate"))
    assert set(COMMANDS) >= {"attribute", "report", "generate"}


def test_typo_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["atribute", PATHS])
    assert "invalid choice: 'atribute'" in capsys.readouterr().err


def test_attribute_imports_no_pydantic_rich_or_other_commands() -> None:
    code = (
        "import sys\n"
        "from crm_attribution.cli import main\n"
        f"main(['attribute', {PATHS!r}, '--models', 'markov,linear', '--format', 'json'])\n"
        "heavy = ('pydantic', 'rich', 'networkx', 'scipy', 'pandas', 'faust', 'concurrent')\n"
        "found = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy})\n"
        "found += [m for m in sys.modules if m.startswith('crm_attribution.commands.')\n"
        "          and m.rsplit('.', 1)[1] not in ('attribute', 'common', 'input_report')]\n"
        "found += [m for m in ('pyarrow.compute', 'logging') if m in sys.modules]\n"
        "print('HEAVY', ','.join(found), file=sys.stderr)\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CRM_") and k not in ("FORCE_COLOR", "TTY_COMPATIBLE")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert json.loads(out.stdout)["models"].keys() == {"markov", "linear"}
    assert "HEAVY \n" in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("environ", "isatty", "expected"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"TTY_COMPATIBLE": "0"}, True, False),
        ({"TTY_COMPATIBLE": "1"}, False, True),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": ""}, False, True),  # rich then decides (and says no)
    ],
)
def test_stderr_may_be_terminal_follows_rich(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], isatty: bool, expected: bool
) -> None:
    from rich.console import Console

    from crm_attribution.commands import input_report

    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: isatty, raising=False)
    assert input_report.stderr_may_be_terminal() is expected
    if not expected:
        # Whenever the cheap check says no, rich says no too.
        assert not Console(stderr=True).is_terminal


def test_progress_bar_on_a_terminal_and_off_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_attribution.commands.input_report import StderrConsole, progress_bar

    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    with progress_bar(StderrConsole(), "reading") as update:
        update(5, 10)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    err = StderrConsole()
    assert err.is_terminal
    with progress_bar(err, "reading") as update:
        update(5, 10)


def run_program(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "crm_attribution", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def test_quick_exit_still_delivers_everything(tmp_path: Path) -> None:
    # attribute ends its process with os._exit once its output is flushed: nothing may be lost.
    src = tmp_path / "p.csv"
    rows = "".join(f"c{i % 7}>c{i % 5},{i % 3},{i}.5,1\n" for i in range(3000))
    src.write_text(
        "path,total_conversions,total_conversion_value,total_null\n" + rows + "x,-1,0,0\n"
    )
    report = tmp_path / "invalid.jsonl"
    models = ["--models", "markov,linear"]
    done = run_program(
        "attribute", str(src), *models, "--invalid-report", str(report), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["models"].keys() == {"markov", "linear"}
    assert "1 invalid records skipped" in done.stderr and "line 3002" in done.stderr
    assert [json.loads(line)["line"] for line in report.read_text().splitlines()] == [3002]
    csv_out = run_program(
        "attribute", str(src), "--models", "linear", "--format", "csv", cwd=tmp_path
    )
    assert csv_out.returncode == 0 and len(csv_out.stdout.splitlines()) == 1 + 7
    failed = run_program("attribute", str(src), "--models", "linear", "--strict", cwd=tmp_path)
    assert failed.returncode == 2 and "line 3002" in failed.stderr and failed.stdout == ""


def test_errors_stay_human_when_run_as_a_module(tmp_path: Path) -> None:
    for module in ("crm_attribution", "crm_attribution.cli"):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [sys.executable, "-m", module, "attribute", str(tmp_path / "missing.csv")],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 2, (module, done.stderr)
        assert "does not exist" in done.stderr and "Traceback" not in done.stderr
