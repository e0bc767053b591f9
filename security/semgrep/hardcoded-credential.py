import hvac
import pymongo


def connect(settings):
    # ruleid: hardcoded-credential
    client = pymongo.MongoClient("mongodb://127.0.0.1", username="app", password="s3cr3t-Pa55")
    # ruleid: hardcoded-credential
    vault = hvac.Client(url="https://127.0.0.1:8200", token="hvs.CAESIJ1example")
    # ok: hardcoded-credential
    client = pymongo.MongoClient("mongodb://127.0.0.1", username="app", password=settings.password)
    # ok: hardcoded-credential
    vault = hvac.Client(url="https://127.0.0.1:8200", token="")
    return client, vault


# ruleid: hardcoded-credential
DB_PASSWORD = "hunter2-hunter2"
# ok: hardcoded-credential
PASSWORD_FIELD = "password"
# ok: hardcoded-credential
token_header = "Authorization"
# ruleid: hardcoded-credential
DEFAULTS = {"secret_id": "6a2f-99e1-example"}


class Settings:
    # ruleid: hardcoded-credential
    api_key: str = "k-1234567890abcdef"
    # ok: hardcoded-credential
    api_key_env: str = "EVENTSVC_API_KEY"


class Refresh:
    # ok: hardcoded-credential
    TOKEN = "token"
    # ok: hardcoded-credential
    MONGO_PASSWORD = "mongo credential"


ENV_NAMES = {
    # ok: hardcoded-credential
    "token": "EVENTSVC_TOKEN",
}


class RateLimits:
    # ok: hardcoded-credential
    rate_limit_per_token: str = "600/minute"


# ok: hardcoded-credential
BOOTSTRAP_SECRET = "bootstrap-token"
# ok: hardcoded-credential
APP_SECRET_PATH = "kv/data/eventsvc/app"
# ruleid: hardcoded-credential
ROOT_TOKEN = "s.Xk29fLq0Zr8"
