import pickle
import shelve

import yaml


def load_config(stream, blob):
    # ruleid: yaml-load-without-safeloader
    yaml.load(stream)
    # ruleid: yaml-load-without-safeloader
    yaml.load(stream, Loader=yaml.Loader)
    # ruleid: yaml-load-without-safeloader
    yaml.unsafe_load(stream)
    # ok: yaml-load-without-safeloader
    yaml.load(stream, Loader=yaml.SafeLoader)
    # ok: yaml-load-without-safeloader
    yaml.load(stream, yaml.CSafeLoader)
    # ok: yaml-load-without-safeloader
    yaml.safe_load(stream)
    # ruleid: pickle-load
    pickle.loads(blob)
    # ruleid: pickle-load
    pickle.load(stream)
    # ruleid: pickle-load
    shelve.open("cache.db")
    # ok: pickle-load
    pickle.dumps(blob)
