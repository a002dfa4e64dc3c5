"""The Space deploys as checked in: `space/deploy.py` assembles `space/` with the `carseg_hf` source beside `app.py`,
the assembled app imports that copy, `requirements.txt` names only published packages that cover what it imports,
and the upload lands in a Gradio Space repo of the local test Hub (`tests/hub_server.py`).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hub_fixtures import TEST_TOKEN, hub_env_fixture, local_hub_fixture  # noqa: F401 - hub_env, local_hub

from space.deploy import PACKAGE, SPACE_FILES, assemble_space, main, push_space

REPO_ROOT = Path(__file__).resolve().parents[1]
SPACE_DIR = REPO_ROOT / "space"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    """`space/requirements.txt` as {normalized name: version}; every requirement line must be `name==version`."""
    pins = {}
    for line in (SPACE_DIR / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("--extra-index-url "):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.+]*)", line)
        assert match, f"space/requirements.txt: {line!r} is not a NAME==VERSION pin"
        pins[normalized(match[1])] = match[2]
    return pins


def test_requirements_are_published_dependencies_of_carseg():
    pins = requirement_pins()
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["demo"]]
    declared = {normalized(re.split(r"[\s;<>=!~\[(]", spec)[0]) for spec in specs}
    assert "carseg-hf" not in pins  # not on PyPI: the source travels with the Space instead
    assert set(pins) <= declared, sorted(set(pins) - declared)
    assert {"torch", "transformers", "gradio", "segmentation-models-pytorch"} <= set(pins)
    sdk_version = re.search(r"^sdk_version: (\S+)$", (SPACE_DIR / "README.md").read_text(), re.M)[1]
    assert pins["gradio"] == sdk_version  # the Space's gradio is the README's sdk_version


def test_assemble_refuses_a_folder_with_files(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty"):
        assemble_space(tmp_path)
    assert main(["--assemble-only", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err and (tmp_path / "keep.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def assembled(tmp_path_factory) -> Path:
    return assemble_space(tmp_path_factory.mktemp("space") / "space")


def test_assembled_folder_layout(assembled):
    assert sorted(p.name for p in assembled.iterdir()) == sorted([*SPACE_FILES, PACKAGE])
    for name in SPACE_FILES:
        assert (assembled / name).read_bytes() == (SPACE_DIR / name).read_bytes()
    assert (assembled / PACKAGE / "pretrained" / "carseg-lite0" / "model.safetensors").is_file()
    assert (assembled / PACKAGE / "demo" / "app.py").is_file() and any((assembled / PACKAGE / "examples").iterdir())
    assert not list(assembled.rglob("__pycache__")) and not list(assembled.rglob("*.pyc"))


def test_assembled_app_imports_its_bundled_copy_and_requirements_cover_it(assembled):
    probe = (
        "import json, sys\n"
        "import app\n"
        "import carseg_hf\n"
        "loaded = sorted({m.__file__ for m in list(sys.modules.values())\n"
        "                 if m.__name__.startswith('carseg_hf') and getattr(m, '__file__', None)})\n"
        "print(json.dumps({'package': carseg_hf.__file__, 'demo': type(app.demo).__name__, 'loaded': loaded}))\n"
    )
    env_python = [sys.executable, "-c", probe]
    done = subprocess.run(env_python, cwd=assembled, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).resolve() == (assembled / PACKAGE / "__init__.py").resolve()  # not the checkout
    assert report["demo"].endswith("Blocks")  # gradio Blocks: the app was built
    assert all(Path(path).resolve().is_relative_to(assembled.resolve()) for path in report["loaded"])

    # Every third-party import of the carseg modules the app loaded is installed by requirements.txt.
    imported = set()
    for path in report["loaded"]:
        for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {PACKAGE, "__future__"}
    distributions = importlib.metadata.packages_distributions()
    needed = {normalized(distributions[name][0]) for name in third_party}
    assert needed <= set(requirement_pins()), sorted(needed - set(requirement_pins()))


def test_push_space_uploads_the_folder_to_a_gradio_space(hub_env):
    from huggingface_hub import HfApi

    repo_id = "local-test-user/carseg-demo"
    url = push_space(repo_id, token=TEST_TOKEN)
    server = hub_env.server
    assert url.startswith(server.url) and server.repos[repo_id].repo_type == "space"
    assert server.repos[repo_id].space_sdk == "gradio"
    files = server.files(repo_id)
    for name in SPACE_FILES:
        assert files[name] == (SPACE_DIR / name).read_bytes()
    weights = f"{PACKAGE}/pretrained/carseg-lite0/model.safetensors"
    assert files[weights] == (REPO_ROOT / weights).read_bytes()
    assert files[f"{PACKAGE}/demo/app.py"] == (REPO_ROOT / PACKAGE / "demo" / "app.py").read_bytes()
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in files)

    # A second deploy replaces the package copy: a file the checkout no longer has is deleted, the rest stays.
    HfApi(token=TEST_TOKEN).upload_file(
        path_or_fileobj=b"stale = True\n", path_in_repo=f"{PACKAGE}/stale.py", repo_id=repo_id, repo_type="space"
    )
    assert f"{PACKAGE}/stale.py" in server.files(repo_id)
    push_space(repo_id, token=TEST_TOKEN)
    again = server.files(repo_id)
    assert f"{PACKAGE}/stale.py" not in again and again[weights] == files[weights]
