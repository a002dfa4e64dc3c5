"""The Gradio demo (the Hugging Face Space): `build_demo()` and the UI-free helpers it is built on.

`build_demo` is imported on first use, so that `carseg_hf.demo.helpers` can be used without importing gradio. Gradio is
the `demo` extra (`pip install "carseg-hf[demo]"`); without it, `build_demo` raises `DemoDependencyError`.
"""

from __future__ import annotations

from ..lazy_exports import lazy_exports

__all__ = ["DemoDependencyError", "build_demo"]

#: What to install when gradio is missing.
DEMO_EXTRA_INSTALL = 'pip install "carseg-hf[demo]"'


class DemoDependencyError(ImportError):
    """Gradio, which only the demo needs, is not installed; the message says how to install the `demo` extra."""


__getattr__, __dir__ = lazy_exports(__name__, {"build_demo": "app"}, globals())
