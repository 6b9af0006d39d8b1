"""The real-server fixture of the browser tests, shared with the API tests that need a real uvicorn."""

from tests.e2e.conftest import server  # noqa: F401
