"""TEST INFRASTRUCTURE: pytest fixtures that point huggingface_hub at the local test Hub (`tests/hub_server.py`).

huggingface_hub reads `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_OFFLINE` and friends once, when `huggingface_hub.constants`
is imported, and copies some of them into derived constants (`HUGGINGFACE_CO_URL_TEMPLATE`, `HF_HUB_CACHE`, ...).
Reloading that module would not reach the modules that already hold a reference to the old values, so the fixture
sets the environment variables (for subprocesses) AND patches the module constants that the client reads at call
time, both with `monkeypatch` so that everything is restored after the test. Import the fixtures from a test module
with `from hub_fixtures import hub_env_fixture, local_hub_fixture  # noqa: F401`; the fixtures are
named `hub_env` and `local_hub`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hub_server import HubServer
from huggingface_hub import constants

#: A fake token: the local server accepts anything, and no real credential is ever read or sent.
TEST_TOKEN = "hf_local_test_token_not_a_secret"


@dataclass
class HubEnv:
    """What a test needs to know about the local Hub it talks to."""

    server: HubServer
    hf_home: Path

    @property
    def cache(self) -> Path:
        return self.hf_home / "hub"

    def set_offline(self, monkeypatch: pytest.MonkeyPatch, offline: bool = True) -> None:
        """Switch `HF_HUB_OFFLINE` on or off for this process and for subprocesses."""
        monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


@pytest.fixture(scope="module", name="local_hub")
def local_hub_fixture() -> Iterator[HubServer]:
    """One local Hub server per test module (started on a free port of 127.0.0.1, stopped afterwards)."""
    server = HubServer().start()
    yield server
    server.stop()


@pytest.fixture(name="hub_env")
def hub_env_fixture(local_hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubEnv:
    """Point huggingface_hub (in-process and in subprocesses) at `local_hub`, with a fresh `HF_HOME`."""
    hf_home = tmp_path / "hf_home"
    hf_home.mkdir()
    env = {
        "HF_ENDPOINT": local_hub.url,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_TOKEN": TEST_TOKEN,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("TRANSFORMERS_OFFLINE", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_ETAG_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    constant_values = {
        "ENDPOINT": local_hub.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": local_hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    for name, value in constant_values.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)
    return HubEnv(server=local_hub, hf_home=hf_home)
