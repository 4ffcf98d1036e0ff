"""Shared test configuration: fixed hypothesis seeds so every run is repeatable."""

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("repeatable")
