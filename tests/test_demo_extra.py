"""Gradio is the `demo` extra: without it, the demo says what to install, and the rest of carseg still imports.

Each check runs in a subprocess whose meta path refuses `gradio` and `gradio_client`, as on a machine where the extra
was never installed; nothing carseg ships is replaced.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL = 'pip install "carseg-hf[demo]"'

BLOCK_GRADIO = textwrap.dedent(
    """
    import sys


    class NoGradio:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("gradio", "gradio_client"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, NoGradio())
    """
)


def run_without_gradio(code: str) -> subprocess.CompletedProcess:
    script = BLOCK_GRADIO + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_build_demo_names_the_extra_and_helpers_still_import():
    done = run_without_gradio(
        """
        import carseg_hf.demo.helpers  # UI-free: no gradio needed
        from carseg_hf.demo import DemoDependencyError
        try:
            from carseg_hf.demo import build_demo
        except DemoDependencyError as error:
            assert isinstance(error, ImportError)
            print("refused:", error)
        else:
            raise SystemExit("build_demo imported without gradio")
        """
    )
    assert done.returncode == 0, done.stderr
    assert INSTALL in done.stdout and "gradio" in done.stdout


def test_carseg_demo_exits_2_with_the_extra_in_its_message():
    done = run_without_gradio(
        """
        from carseg_hf.cli import main
        raise SystemExit(main(["demo", "--port", "7861"]))
        """
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("carseg demo: error: the carseg demo needs gradio")
    assert INSTALL in done.stderr and "Traceback" not in done.stderr
