"""The `carseg` command line itself: a fast `--help`, `--version`, usage errors, and README flags that exist."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from carseg_hf.cli import COMMANDS, build_parser, main
from carseg_hf.training import build_parser as build_train_parser
from carseg_hf.training.option_fields import default_dataloader_workers

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("transformers", "torch", "gradio", "datasets", "huggingface_hub", "accelerate")


def _python(code: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in COMMANDS]])
def test_help_imports_no_heavy_library(argv):
    result = _python(f"""
        import sys
        from carseg_hf.cli import main
        try:
            main({argv!r})
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        print(sorted(name for name in {HEAVY!r} if name in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"  # what makes `carseg --help` answer in well under 1 s


@pytest.mark.parametrize(
    "code",
    [
        "import carseg_hf\nfrom transformers import AutoConfig, AutoModelForSemanticSegmentation",
        "from transformers import AutoConfig, AutoModelForSemanticSegmentation\nimport carseg_hf",
        # transformers is first imported by a carseg module, half-way through carseg's own imports
        "from carseg_hf.inference import Segmenter\nfrom transformers import AutoConfig\n"
        "from transformers import AutoModelForSemanticSegmentation",
    ],
)
def test_import_carseg_hf_registers_the_auto_classes_in_any_order(code, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "carseg", "encoder_channels": [4, 8]}))
    result = _python(
        code
        + f"\nconfig = AutoConfig.from_pretrained({str(tmp_path)!r})"
        + "\nprint(type(AutoModelForSemanticSegmentation.from_config(config)).__name__)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "CarSegForSemanticSegmentation"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"carseg {importlib.metadata.version('carseg-hf')}"


@pytest.mark.parametrize("command", ["predict", "evaluate", "push"])
def test_an_unknown_option_prints_the_sub_command_usage(command, capsys):
    argv = {"predict": ["x.jpg"], "evaluate": ["--data", "d"], "push": ["folder", "--repo-id", "o/n"]}[command]
    with pytest.raises(SystemExit) as exit:
        main([command, *argv, "--bogus"])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert (
        error.startswith(f"usage: carseg {command} ")
        and f"carseg {command}: error: unrecognized arguments: --bogus" in error
    )


def test_train_help_describes_every_option_with_its_default():
    parser = build_train_parser()
    undocumented = [a.option_strings[0] for a in parser._actions if a.option_strings and not (a.help or "").strip()]
    assert undocumented == []
    text = " ".join(parser.format_help().split())  # undo the line wrapping
    for shown in ("(default: 0.0001)", "(default: 0.9)", "(default: constant)", "(default: 100)", "(default: 42)"):
        assert shown in text


def test_dataloader_workers_default_to_the_usable_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})  # a 2-core machine
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_dataloader_workers() == 2
    assert build_train_parser().get_default("dataloader_num_workers") == 2  # not 4, which warns on 2 cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two processes launched on this machine share the cores
    assert default_dataloader_workers() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert default_dataloader_workers() == 8


# --- README and docs flags exist ----------------------------------------------------------------------------------

#: The user documentation: the README, docs/ and the training example's README.
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "training" / "README.md"]

#: Sections (of the docs above) whose option tables describe one command.
TABLE_SECTIONS = {
    "## `carseg evaluate`": "evaluate",
    "## `carseg predict`": "predict",
    "## Run it locally": "demo",
    "## Push a checkpoint": "push",
    "## `carseg export --onnx`": "export",
    "## Augmentation (training split only)": "train",
    "## Recipe defaults": "train",
}
_COMMAND_LINE = re.compile(
    r"(?:\bcarseg (predict|evaluate|demo|export|push|train)\b|training/train\.py|-m training\.train)"
)
_FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")


def _options(command: str) -> set[str]:
    if command == "train":
        parser = build_train_parser()
    else:
        parser = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {option for action in parser._actions for option in action.option_strings}


def _section(readme: str, heading: str) -> str:
    start = readme.index(heading + "\n")
    level = heading.split(" ")[0]
    end = re.search(rf"^#{{1,{len(level)}}} ", readme[start + len(heading) :], re.MULTILINE)
    return readme[start : start + len(heading) + (end.start() if end else len(readme))]


def _readme_flags() -> list[tuple[str, str, str]]:
    """(command, flag, where) for every flag in the command sections' tables and in every documented command line."""
    readme = "\n".join(path.read_text(encoding="utf-8") for path in DOC_FILES if path.is_file())
    found = []
    for heading, command in TABLE_SECTIONS.items():
        for row in _section(readme, heading).splitlines():
            if row.startswith("| `--"):
                found += [(command, flag, row[:60]) for flag in _FLAG.findall(row)]
    for line in readme.replace("\\\n", " ").splitlines():
        for match in _COMMAND_LINE.finditer(line):
            command = match.group(1) or "train"
            tail = re.split(r"[#|;&`]|\s\$|\bcarseg\b", line[match.end() :])[0]  # up to the command's end
            found += [(command, flag, line.strip()[:60]) for flag in _FLAG.findall(tail)]
    return found


def test_every_flag_the_readme_names_exists():
    flags = _readme_flags()
    assert len({command for command, _, _ in flags}) == 6  # the parsing above found every command
    missing = sorted({(c, f, w) for c, f, w in flags if f not in _options(c)})
    assert missing == []


def test_every_option_with_a_default_shows_it_in_the_help():
    """README: `carseg COMMAND --help` lists every option with its default (0 and 0.0 included)."""
    import argparse

    from carseg_hf.cli import build_parser as build_cli_parser
    from carseg_hf.training import build_parser as build_training_parser

    subparsers = next(a for a in build_cli_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers = dict(subparsers.choices) | {"training/train.py": build_training_parser("training/train.py")}
    silent = []
    for command, parser in parsers.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
                continue
            if "default" not in (formatter._get_help_string(action) or "").lower():
                silent.append(f"{command} {action.option_strings[0]}")
    assert not silent, f"options whose --help hides their default: {silent}"
