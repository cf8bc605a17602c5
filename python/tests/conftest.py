"""Fixtures: a real sparsepoold per test (python/tests/daemon.py)."""

import pytest

from daemon import Daemon


@pytest.fixture
def daemon(request):
    d = Daemon(request.node.name.replace("[", "-").replace("]", ""))
    d.start()
    yield d
    d.stop()
