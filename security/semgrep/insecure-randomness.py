import random
import secrets
import string

ALPHABET = string.ascii_letters + string.digits


def issue_reset(user):
    # ruleid: insecure-randomness
    reset_code = "".join(random.choice(ALPHABET) for _ in range(8))
    return reset_code


def new_api_token():
    # ruleid: insecure-randomness
    return "%032x" % random.getrandbits(128)


def enrol(user):
    # ruleid: insecure-randomness
    user.otp_secret = random.randbytes(20)


def make_session(store):
    # ruleid: insecure-randomness
    return store.create(session_id=random.randint(0, 2**63))


def new_api_token_safe():
    # ok: insecure-randomness
    return secrets.token_urlsafe(32)


def retry_delay(attempt):
    # ok: insecure-randomness
    jitter = random.uniform(0, 0.5)
    return 2**attempt + jitter


def sample_traces(spans):
    # ok: insecure-randomness
    return random.sample(spans, k=10)
