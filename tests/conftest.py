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
    # nor compiles attribution kernels in a child process on its first trace (tests/app/test_warm.py asks)
    os.environ["GATESCOPE_WARM_ATTRIBUTION"] = "0"
    os.environ["GATESCOPE_ALLOWED_HOSTS"] = "testserver"  # the TestClient's host name
