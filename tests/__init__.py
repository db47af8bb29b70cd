"""The project's own tests; a package so that `tests.fixtures` can be imported."""
