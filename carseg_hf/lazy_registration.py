"""Registering carseg with transformers' Auto classes once transformers is imported, so `import carseg_hf` stays cheap.

`import carseg_hf` has always meant "the Auto classes know carseg" (model cards say `import carseg_hf`, then call
`AutoModelForSemanticSegmentation.from_pretrained`), but importing transformers and torch takes seconds, which the
`carseg` command line should not pay for `--help`. So the package installs `RegisterOnImport`, an import hook that
calls `registration.register_auto_classes()` as soon as two things hold: transformers has been imported (by anyone,
in any order), and no carseg module is half-way through its own import. The second condition matters because the
carseg classes import transformers themselves: registering from inside that import would meet half-built modules.
When transformers is already imported, registration happens at once. The hook removes itself once it has run.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from types import ModuleType
from typing import Any

_PACKAGE = __name__.rpartition(".")[0]  # "carseg_hf"


class _ExecHook(importlib.abc.Loader):
    """Wraps a module's loader: tells the hook when the module's code starts and ends running."""

    def __init__(self, loader: importlib.abc.Loader, hook: RegisterOnImport, ours: bool) -> None:
        self._loader, self._hook, self._ours = loader, hook, ours

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, get_resource_reader, ...
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._hook.entered(self._ours)
        try:
            self._loader.exec_module(module)
        except BaseException:
            self._hook.left(self._ours, succeeded=False)
            raise
        self._hook.left(self._ours, succeeded=True)


class RegisterOnImport(importlib.abc.MetaPathFinder):
    """A `sys.meta_path` hook that registers the Auto classes once transformers and no half-imported carseg module."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._importing = 0  # carseg modules whose code is running, in all threads
        self._finding = threading.local()
        self.done = False

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        """Find `transformers` and carseg's submodules through the other finders, and wrap their loaders."""
        ours = fullname.startswith(f"{_PACKAGE}.")
        if self.done or not (ours or fullname == "transformers") or getattr(self._finding, "active", False):
            return None
        self._finding.active = True
        try:
            spec = next((s for s in self._other_specs(fullname, path, target) if s is not None), None)
        finally:
            self._finding.active = False
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ExecHook(spec.loader, self, ours)
        return spec

    def _other_specs(self, fullname: str, path: Any, target: ModuleType | None) -> Any:
        for finder in list(sys.meta_path):
            if finder is not self and hasattr(finder, "find_spec"):
                yield finder.find_spec(fullname, path, target)

    def entered(self, ours: bool) -> None:
        """A wrapped module's code starts running."""
        if ours:
            with self._lock:
                self._importing += 1

    def left(self, ours: bool, succeeded: bool) -> None:
        """A wrapped module's code has finished; register if that made it possible."""
        with self._lock:
            if ours:
                self._importing -= 1
            ready = succeeded and self._importing == 0
        if ready:
            self.register_if_ready()

    def register_if_ready(self) -> bool:
        """Register now if transformers is imported and no carseg module is mid-import; returns whether it is done."""
        with self._lock:
            if self.done or self._importing or "transformers" not in sys.modules:
                return self.done
            self.done = True  # before importing the carseg classes, whose imports come back here
        try:
            importlib.import_module(f"{_PACKAGE}.registration").register_auto_classes()
        except BaseException:
            self.done = False
            raise
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        return True


def register_when_transformers_is_imported() -> RegisterOnImport:
    """Register carseg's Auto classes now if transformers is imported, else install the hook that does it later."""
    hook = next((finder for finder in sys.meta_path if isinstance(finder, RegisterOnImport)), None)
    if hook is None:
        hook = RegisterOnImport()
        sys.meta_path.insert(0, hook)
    hook.register_if_ready()
    return hook
