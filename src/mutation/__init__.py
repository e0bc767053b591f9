"""Mutation testing of the modules where a silent regression is a security hole.

Dev tooling for eventsvc, not part of its wheel (``make mutation``). Each
module named in ``security/mutation.toml`` is mutated by cosmic-ray, one
small change at a time, and only the tests the config lists for that module
run against each mutant, on real services as in ``make test``. A mutant the
tests do not notice ("survived") is a change to a security control that no
test would catch.

- ``config``: the config file (modules, their tests, threshold, equivalent mutants);
- ``run``: cosmic-ray per module, its results classified;
- ``report``: ``build/mutation/`` (JSON and Markdown) and the verdict.
"""
