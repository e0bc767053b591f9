"""The local development stack: real services on loopback, for make, pytest and DAST.

Dev tooling for eventsvc, not part of its wheel. Every service runs as a real
process on 127.0.0.1 with a free port and its own directory: nothing here is
a fake or a mock.

- ``openbao`` and ``mongod``: one service each (start, stop, bootstrap);
- ``stack``: the whole stack in order, ``api`` its API step, ``database``
  the operator's preparation of the database (schema, the CLI's token);
- ``daemon``: ``run``/``up``/``down``/``status`` for make; ``dast_target``:
  a throwaway stack for a DAST scan; ``paths`` and ``errors``: shared basics.
"""
