"""Helpers shared by the tests: test modules import from here, never from
each other (nor from a conftest)."""
