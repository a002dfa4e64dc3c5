"""The Gradio demo (the Hugging Face Space): `build_demo()` and the UI-free helpers it is built on.

`build_demo` is imported on first use, so that `carseg_hf.demo.helpers` can be used without importing gradio.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_demo"]


def __getattr__(name: str) -> Any:
    if name == "build_demo":
        from .app import build_demo

        return build_demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
