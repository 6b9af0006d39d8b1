"""Schemathesis against a real server (uvicorn on 127.0.0.1, its own models folder, uploads on): every
generated request, valid and invalid, gets an answer its schema documents: no 5xx, documented status
codes, bodies and headers that match, a correct Allow on 405. ``make fuzz`` runs the long version
(GATESCOPE_FUZZ_EXAMPLES, default 2,000 a operation); ``make test`` a short one.

One check is left out: positive_data_acceptance, which wants every schema-valid request accepted. An
upload's bytes are schema-valid whatever they hold ("format: binary"), and gatescope must refuse the
ones that are not weight files (415, 422): a schema cannot say what a weight file is. And use_after_free, which
wants a GET after a DELETE of the same path to be a 404: GET /api/models/{id}/index answers where the model's
index is, "none" (200) once it was deleted, as it does before one was ever built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import _running_server

EXAMPLES = int(os.environ.get("GATESCOPE_FUZZ_EXAMPLES", "12"))


def test_every_generated_request_gets_a_documented_answer(tmp_path):
    with _running_server(tmp_path) as url:
        cmd = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json"]
        cmd += ["--checks", "all", "--exclude-checks", "positive_data_acceptance,use_after_free"]
        cmd += ["--max-examples", str(EXAMPLES)]
        cmd += ["--seed", os.environ.get("GATESCOPE_FUZZ_SEED", "1"), "--no-color", "--request-timeout", "30"]
        limit = 600 + 2 * EXAMPLES  # make fuzz's 2,000 examples an operation outlast make test's 600 s
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=tmp_path)
    tail = "\n".join(done.stdout.splitlines()[-60:])
    print(tail)  # the run's summary: how many cases, and the failures if any
    assert done.returncode == 0, tail
    assert "generated" in tail
