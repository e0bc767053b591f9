"""``make loadtest``: locust against a throwaway full stack, with two baselines in the same run.

Modules: ``plan`` (what is measured and how long), ``harness`` (stack, baselines,
locust processes), ``locustfile`` and ``plots`` (run in .venv-loadtest),
``baseline_app`` and ``rawmongo`` (the baselines), ``cpu`` (/proc sampling),
``analysis`` (samples to figures), ``report`` and ``sizing`` (Markdown).
"""
