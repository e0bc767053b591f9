"""Performance harnesses for `make bench` and `make loadtest`.

No file here is named test_*.py: pytest collects nothing from this package.
"""
