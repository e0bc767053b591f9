import logging

logger = logging.getLogger(__name__)
log = logger


def login(auth, client_token, secret_id, password, lease_id, token_ttl):
    # ruleid: secret-in-log
    logger.info("logged in with %s", client_token)
    # ruleid: secret-in-log
    logger.debug("secret id %s", secret_id)
    # ruleid: secret-in-log
    logging.warning("password was %s", password)
    # ruleid: secret-in-log
    log.info("token: %s", auth["client_token"])
    # ruleid: secret-in-log
    logger.info("vault auth %s", auth.token)
    # ruleid: secret-in-log
    logger.info(f"got {secret_id}")
    # ok: secret-in-log
    logger.info("token renewed, lease %s, ttl %s", lease_id, token_ttl)
    # ok: secret-in-log
    logger.info("password rotation finished")
    # ok: secret-in-log
    logger.info("accessor %s", auth["accessor"])
    # ok: secret-in-log
    logger.info("token")
    # ok: secret-in-log
    logger.info("token ttl %s, policies %s", auth.token.ttl_s, ",".join(auth.token.policies))
    # ok: secret-in-log
    logger.info("password length %d", len(password))
