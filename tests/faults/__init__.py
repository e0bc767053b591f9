"""Fault tests: the HA stack under write load while its parts fail (docs/reliability.md)."""
