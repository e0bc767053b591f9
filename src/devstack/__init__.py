"""The local development stack: real services on loopback, for make and pytest.

Each service lives in its own module (``devstack.mongod`` for MongoDB). Every
service runs as a real process on 127.0.0.1 with a free port and its own
directory: nothing here is a fake or a mock.
"""
