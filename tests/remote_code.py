"""Test helper: load a saved carseg model with trust_remote_code in a Python that cannot import carseg_hf."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch


def check_remote_code_load(
    source: str, work_dir: Path, x: torch.Tensor, expected: torch.Tensor, revision: str | None = None, **env: str
) -> None:
    """Load `source` (a folder or Hub repo id) with `trust_remote_code=True` in a subprocess and compare logits.

    A blocker package on PYTHONPATH shadows the editable install of carseg_hf, so only the code saved with the model
    can run. Inputs and expected logits travel as .npy files (never pickled).

    Args:
        source: Folder or repo id.
        work_dir: A temporary folder for the blocker and the arrays.
        x: Input pixel values.
        expected: Logits the loaded model must reproduce.
        revision: Hub revision to pin, or None.
        **env: Extra environment variables (e.g. HF_HOME, HF_HUB_OFFLINE).
    """
    np.save(work_dir / "x.npy", x.numpy())
    np.save(work_dir / "expected.npy", expected.numpy())
    script = textwrap.dedent(
        f"""
        import sys
        sys.path = [p for p in sys.path if p not in ("", ".")]
        try:
            import carseg_hf
        except ImportError:
            pass
        else:
            raise SystemExit("carseg_hf must not be importable in this test")
        import numpy as np, torch
        torch.set_num_threads(1)
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation
        kwargs = dict(trust_remote_code=True, revision={revision!r})
        model = AutoModelForSemanticSegmentation.from_pretrained({source!r}, **kwargs).eval()
        processor = AutoImageProcessor.from_pretrained({source!r}, **kwargs)
        assert type(model).__name__ == "CarSegForSemanticSegmentation", type(model)
        assert type(processor).__name__ == "CarSegImageProcessor", type(processor)
        assert "carseg_hf" not in sys.modules
        x = torch.from_numpy(np.load({str(work_dir / "x.npy")!r}))
        with torch.no_grad():
            logits = model(x).logits
        assert np.allclose(logits.numpy(), np.load({str(work_dir / "expected.npy")!r}), atol=1e-6)
        print("remote-code-ok")
        """
    )
    blocker = work_dir / "blocker" / "carseg_hf"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text("raise ImportError('carseg_hf is hidden in this test')\n")
    full_env = dict(os.environ, PYTHONNOUSERSITE="1", **env)
    full_env["PYTHONPATH"] = str(work_dir / "blocker")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=work_dir, env=full_env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "remote-code-ok" in result.stdout
