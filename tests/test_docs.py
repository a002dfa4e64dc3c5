"""Every ```python block of README.md, docs/*.md and training/README.md runs as written.

Rule: a block runs unless the line before its opening fence is `<!-- no-test: reason -->`. Blocks are marked so
when they need the network, a Hub login, a GPU, a running server or files outside the repository; every other block
must be self-contained. Each runnable block is executed in a fresh namespace, in a temporary working folder that
holds a copy of `carseg_hf/examples/` (so the paths the docs use resolve and outputs land in the temporary folder).
Skipped blocks are reported by pytest with their file, line and reason (`pytest -rs tests/test_docs.py`).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "training" / "README.md"]
_NO_TEST = re.compile(r"^<!--\s*no-test:\s*(?P<reason>.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    skip_reason: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """The ```python blocks of one Markdown file, with the reason of a `no-test` marker on the line before."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index
            end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
            marker = _NO_TEST.match(lines[start - 1].strip()) if start > 0 else None
            code = "\n".join(lines[start + 1 : end]) + "\n"
            blocks.append(Block(path, start + 1, code, marker.group("reason") if marker else None))
            index = end
        index += 1
    return blocks


BLOCKS = [block for path in DOC_FILES if path.is_file() for block in extract_blocks(path)]


def test_blocks_are_found_and_most_run():
    assert any(block.path.name == "README.md" and block.path.parent == REPO_ROOT for block in BLOCKS)
    runnable = [block for block in BLOCKS if block.skip_reason is None]
    assert len(runnable) >= 5, [block.id for block in runnable]


def test_every_no_test_marker_precedes_a_python_block():
    for path in DOC_FILES:
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.strip().startswith("<!-- no-test"):
                assert _NO_TEST.match(line.strip()), f"{path.name}:{number + 1}: write <!-- no-test: reason -->"
                assert number + 1 < len(lines) and lines[number + 1].strip() == "```python", (
                    f"{path.name}:{number + 1}: a no-test marker must stand on the line before a ```python fence"
                )


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_python_block_runs(block, tmp_path, monkeypatch):
    if block.skip_reason is not None:
        pytest.skip(f"{block.id}: {block.skip_reason}")
    shutil.copytree(REPO_ROOT / "carseg_hf" / "examples", tmp_path / "carseg_hf" / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # for subprocesses a block may start; blocks choose the CPU
    monkeypatch.delenv("CARSEG_MODEL", raising=False)
    exec(compile(block.code, block.id, "exec"), {"__name__": "__main__"})  # noqa: S102 - the docs' own code
