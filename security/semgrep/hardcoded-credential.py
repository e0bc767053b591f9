import hvac
import pymongo


def connect(settings):
    # ruleid: hardcoded-credential
    client = pymongo.MongoClient("mongodb://127.0.0.1", username="app", password="s3cr3t-Pa55")  # pragma: allowlist secret
    # ruleid: hardcoded-credential
    vault = hvac.Client(url="https://127.0.0.1:8200", token="hvs.CAESIJ1example")  # pragma: allowlist secret
    # ok: hardcoded-credential
    client = pymongo.MongoClient("mongodb://127.0.0.1", username="app", password=settings.password)
    # ok: hardcoded-credential
    vault = hvac.Client(url="https://127.0.0.1:8200", token="")
    return client, vault


# ruleid: hardcoded-credential
DB_PASSWORD = "hunter2-hunter2"  # pragma: allowlist secret
# ok: hardcoded-credential
PASSWORD_FIELD = "password"  # pragma: allowlist secret
# ok: hardcoded-credential
token_header = "Authorization"
# ruleid: hardcoded-credential
DEFAULTS = {"secret_id": "6a2f-99e1-example"}  # pragma: allowlist secret


class Settings:
    # ruleid: hardcoded-credential
    api_key: str = "k-1234567890abcdef"  # pragma: allowlist secret
    # ok: hardcoded-credential
    api_key_env: str = "EVENTSVC_API_KEY"
