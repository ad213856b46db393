"""Code the tests run in their own processes (`python -m tests.helpers.NAME`): workers, reports, GPU-machine runs."""
