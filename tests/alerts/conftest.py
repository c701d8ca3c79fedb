"""The alert store tests run on both dialects, with the store tests' engine fixture."""

from tests.store.conftest import engine  # noqa: F401 - a fixture, used by name
