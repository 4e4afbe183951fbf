"""Fixtures for the systrap-specific tests: a platform, snippets, apps (closed after each test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from systrap_harness import App

from kvmsandbox import platform as plat
from kvmsandbox.ring0.build import assemble


@pytest.fixture(scope="session")
def snippets(tmp_path_factory) -> tuple[bytes, dict[str, int]]:
    out = tmp_path_factory.mktemp("systrap-snippets")
    binary = assemble(Path(__file__).with_name("snippets.S"), out)
    return binary.read_bytes(), json.loads(binary.with_suffix(".sym.json").read_text())


@pytest.fixture(scope="module")
def platform():
    import kvmsandbox.systrap  # noqa: F401  (registers the backend)

    info = kvmsandbox.systrap.probe()
    if not info.usable:
        pytest.skip(f"systrap not usable here: {info.reason}")
    p = plat.create("systrap", memory_size=64 << 20)
    yield p
    p.close()


@pytest.fixture
def make_app(platform, snippets):
    apps = []

    def make() -> App:
        app = App(platform, *snippets)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
