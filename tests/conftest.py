"""Every test runs against a models folder and a data folder of its own: models uploaded on this machine (kept
in ~/.local/share/gatescope/models) and its corpus indexes (~/.cache/gatescope) never leak into a test, and no
test writes there."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:
    os.environ["GATESCOPE_MODELS"] = tempfile.mkdtemp(prefix="gatescope-test-models-")
    os.environ["GATESCOPE_DATA_DIR"] = tempfile.mkdtemp(prefix="gatescope-test-data-")
    # a test app builds no held-out index unless its test asks (Settings(index_bundled=True)), and builds in its
    # own process: no test starts a Dask cluster it did not ask for
    os.environ["GATESCOPE_INDEX_BUNDLED"] = "0"
    os.environ["GATESCOPE_DASK_SCHEDULER"] = "sync"
    os.environ["GATESCOPE_ALLOWED_HOSTS"] = "testserver"  # the TestClient's host name


def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (make test runs two workers), every browser test runs on one worker: its servers, their
    held-out indexes and Chromium start once, and the other worker runs the core and API tests meanwhile."""
    import pytest

    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("browser"))
