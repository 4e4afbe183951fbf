"""Fixtures of the platform conformance suite: platforms, snippets, a hard per-test timeout."""

from __future__ import annotations

import faulthandler
import random

import pytest
from platform_harness import App, build_snippets, open_platform, platform_names

# Last resort if a platform's interrupt() itself is broken and the watchdog
# cannot get a switch back: dump every thread's stack and end the run.
HARD_TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def _hard_timeout():
    faulthandler.dump_traceback_later(HARD_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def snippets(tmp_path_factory):
    return build_snippets(tmp_path_factory.mktemp("snippets"))


@pytest.fixture(scope="module", params=platform_names())
def platform(request):
    """One platform instance per test module and backend; tests make fresh address spaces."""
    yield from open_platform(request.param)


@pytest.fixture
def rng(request):
    """A random source whose seed is in the test's failure output."""
    seed = random.randrange(1 << 32)
    request.node.user_properties.append(("seed", seed))
    print(f"rng seed {seed}")
    return random.Random(seed)


@pytest.fixture
def make_app(platform, snippets, rng):
    """make_app(snippet_name, **kwargs) -> App; every App is closed after the test."""
    apps = []

    def make(name, **kwargs):
        app = App(platform, snippets[name], rng=rng, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in reversed(apps):
        app.close()
