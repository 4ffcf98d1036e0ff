"""Shared test configuration: fixed hypothesis seeds so every run is repeatable."""

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("repeatable")


import pytest  # noqa: E402
import structlog  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_logging() -> object:
    """A test that configures logging (through the CLI) does not leak it into the next one."""
    yield
    structlog.reset_defaults()
