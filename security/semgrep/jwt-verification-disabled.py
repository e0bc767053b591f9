import jwt

PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----"


def principal(token):
    # ruleid: jwt-verification-disabled
    claims = jwt.decode(token, options={"verify_signature": False})
    return claims["sub"]


def principal_any_algorithm(token):
    # ruleid: jwt-verification-disabled
    return jwt.decode(token, PUBLIC_KEY, algorithms=["EdDSA", "none"])


def principal_expired_ok(token):
    # ruleid: jwt-verification-disabled
    return jwt.decode(token, PUBLIC_KEY, algorithms=["EdDSA"], options={"verify_exp": False})


def principal_safe(token):
    # ok: jwt-verification-disabled
    return jwt.decode(token, PUBLIC_KEY, algorithms=["EdDSA"], audience="eventsvc")


def key_id(token):
    # ok: jwt-verification-disabled
    return jwt.get_unverified_header(token)["kid"]
