# eventsvc API server: `eventsvc serve` (gunicorn, HTTPS, secrets from Vault/OpenBao).
#
# Run it read-only, as its numeric non-root user, with the only writable place a tmpfs:
#   docker run --read-only --tmpfs /tmp:rw,noexec,nosuid,size=64m --cap-drop ALL \
#     --security-opt no-new-privileges -p 8443:8443 \
#     -e EVENTSVC_VAULT_ADDR=https://vault.example:8200 -e EVENTSVC_VAULT_ROLE_ID=... \
#     -v /run/secrets/wrapped-secret-id:/run/secrets/wrapped-secret-id:ro \
#     -e EVENTSVC_VAULT_WRAPPED_SECRET_ID_FILE=/run/secrets/wrapped-secret-id eventsvc
# /tmp holds the Vault session's private 0700 directory (TLS and MongoDB keys, removed at
# exit; EVENTSVC_RUNTIME_DIR moves it) and gunicorn's worker heartbeat files. Nothing else
# is written: no bytecode (PYTHONDONTWRITEBYTECODE), no home directory, no pip cache.
#
# The base image is pinned by the digest of its multi-arch index. That digest was taken
# from public configurations citing Docker Hub's python:3.11-slim-bookworm tag (not pulled
# from here: no registry access); Dependabot's docker ecosystem (.github/dependabot.yml)
# proposes each newer digest, and CI builds and scans the image (.github/workflows/image.yml).

FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# Hash-locked, no resolver: the same locks `make venv` installs.
COPY requirements/pip.txt requirements/build.txt requirements/runtime.txt requirements/
RUN python -m venv /opt/build \
    && /opt/build/bin/python -m pip install --require-hashes --no-deps -r requirements/pip.txt \
    && /opt/build/bin/python -m pip install --require-hashes --no-deps -r requirements/build.txt \
    && python -m venv /opt/eventsvc \
    && /opt/eventsvc/bin/python -m pip install --require-hashes --no-deps -r requirements/pip.txt \
    && /opt/eventsvc/bin/python -m pip install --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md LICENSE ./
COPY src/eventsvc src/eventsvc
# The wheel holds eventsvc only (tests/test_packaging.py); its dependencies came from the lock.
RUN /opt/build/bin/python -m pip wheel --no-deps --no-build-isolation --no-index \
        --wheel-dir /build/dist . \
    && /opt/eventsvc/bin/python -m pip install --no-deps --no-index /build/dist/eventsvc-*.whl \
    && /opt/eventsvc/bin/python -m pip uninstall --yes pip

FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS runtime
ENV PATH=/opt/eventsvc/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EVENTSVC_BIND=0.0.0.0:8443
RUN groupadd --system --gid 10001 eventsvc \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin eventsvc
COPY --from=builder /opt/eventsvc /opt/eventsvc
USER 10001:10001
EXPOSE 8443
# No HEALTHCHECK: the server speaks HTTPS only, with a certificate Vault issues at start
# into a private directory, so a check from inside would have to skip verification. The
# orchestrator probes GET /healthz (and /readyz) over TLS against the CA it trusts.
HEALTHCHECK NONE
ENTRYPOINT ["eventsvc", "serve"]
