"""Keeping the session's token and certificates fresh, in a loop that never gives up.

:class:`LeaseKeeper` is the loop (a thread): it renews the token at 2/3 of
its TTL, logs in again when renewal cannot extend it, and re-issues
certificates at 2/3 of their lifetime (PKI certificates are not renewable).
Its callbacks are the only place where credentials change hands. Errors are
retried with exponential backoff and jitter (:class:`Backoff`), and logged;
they never end the loop or the process.

:class:`LeaseKeeperProcess` runs that loop in a child of the gunicorn master
and turns each new credential into a graceful reload of the workers.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NoReturn

from gunicorn.arbiter import Arbiter

from eventsvc.vault.errors import VaultError
from eventsvc.vault.issued import MongoCredential, Refresh, ServerTLS
from eventsvc.vault.session import VaultSession
from eventsvc.vault.status import STATUS_FILE_NAME, StatusFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits between cap/2 and cap.

    ``cap = min(max_s, initial_s * 2**n)``. The jitter spreads the retries of many
    instances that lost Vault at the same moment.
    """

    initial_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        cap = min(self.max_s, self.initial_s * 2 ** min(attempt, 30))
        return secrets.SystemRandom().uniform(cap / 2, cap)


MongoCredentialCallback = Callable[[MongoCredential], None]
ServerTLSCallback = Callable[[ServerTLS], None]


class LeaseKeeper(threading.Thread):
    """One loop that keeps the session's token and certificates fresh.

    Each turn: find what is due first (token, MongoDB credential, server TLS),
    sleep until then, refresh it, hand a new credential to its callback. A
    failure is logged and retried with backoff; it does not stop the loop.
    While it runs, this thread is the only user of the session.
    """

    def __init__(
        self,
        session: VaultSession,
        *,
        on_mongo_credential: MongoCredentialCallback | None = None,
        on_server_tls: ServerTLSCallback | None = None,
        backoff: Backoff | None = None,
        status: StatusFile | None = None,
    ) -> None:
        super().__init__(name="vault-lease-keeper", daemon=True)
        self._session = session
        self._status = status
        self._on_mongo_credential = on_mongo_credential
        self._on_server_tls = on_server_tls
        self._backoff = backoff or Backoff()
        self._stopping = threading.Event()
        self._failures: dict[Refresh, int] = {}
        self._retry_at: dict[Refresh, float] = {}

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the loop to end and wait for it (a refresh in flight finishes first)."""
        self._stopping.set()
        if self.is_alive():
            self.join(timeout_s)

    def run(self) -> None:
        log.info("vault: lease keeper started")
        while True:
            what, due_at = self._next_due()
            wait_s = None if due_at is None else max(0.0, due_at - time.monotonic())
            if self._stopping.wait(wait_s):
                break
            if what is not None:
                self._refresh(what)
        log.info("vault: lease keeper stopped")

    def _next_due(self) -> tuple[Refresh | None, float | None]:
        """The earliest due refresh; a pending retry replaces the normal schedule."""
        due = {}
        for what in Refresh:
            due_at = self._retry_at.get(what, self._session.refresh_at(what))
            if due_at is not None:
                due[what] = due_at
        if not due:
            return None, None
        what = min(due, key=lambda item: due[item])
        return what, due[what]

    def _refresh(self, what: Refresh) -> None:
        try:
            new_credential = self._refresh_from_vault(what)
        except (VaultError, OSError) as exc:
            attempt = self._failures.get(what, 0)
            delay = self._backoff.delay(attempt)
            self._failures[what] = attempt + 1
            self._retry_at[what] = time.monotonic() + delay
            log.warning("vault: %s refresh failed, retry in %.1fs: %s", what.value, delay, exc)
            if self._status is not None:
                self._status.failed(exc)
            return
        self._failures.pop(what, None)
        self._retry_at.pop(what, None)
        if self._status is not None:
            self._status.succeeded()
        self._hand_over(new_credential)

    def _refresh_from_vault(self, what: Refresh) -> MongoCredential | ServerTLS | None:
        if what is Refresh.TOKEN:
            self._session.renew_or_log_in()
            return None
        if what is Refresh.MONGO_CREDENTIAL:
            return self._session.issue_mongo_credential()
        return self._session.issue_server_tls()

    def _hand_over(self, credential: MongoCredential | ServerTLS | None) -> None:
        """Give a new credential to the caller; its failure must not stop the keeper."""
        try:
            if isinstance(credential, ServerTLS):
                if self._on_server_tls is not None:
                    self._on_server_tls(credential)
            elif credential is not None and self._on_mongo_credential is not None:
                self._on_mongo_credential(credential)
        except Exception:  # a caller's bug is logged; the keeper lives on
            log.exception("vault: credential callback failed")


class LeaseKeeperProcess:
    """The lease keeper, in a child process of the gunicorn master.

    Why not a thread in the master: the master forks workers at start and at
    every reload, and a fork copies the locks a running thread holds but not
    the thread, so a new worker can block forever on one (we saw it happen on
    stderr's buffer lock). The master therefore stays single-threaded.

    The child owns the Vault session from the fork on. Certificates are
    re-issued to the same file paths, so a reload is all the master needs:
    the child sends it SIGHUP. On SIGTERM (from the master's exit hook), or
    when the master is gone, the child revokes its certificates and token and
    removes the runtime directory.
    """

    POLL_S = 1.0
    MIN_ON_DEMAND_INTERVAL_S = 30.0
    """At most one on-demand MongoDB credential per interval, whatever workers ask."""

    def __init__(self, session: VaultSession) -> None:
        self.session = session
        self.pid: int | None = None
        self.status = StatusFile(session.runtime_dir / STATUS_FILE_NAME)
        """Whether Vault answers, for the workers' /readyz (kept across keepers)."""

    def request_new_mongo_credential(self) -> None:
        """From a worker that MongoDB refused at boot: ask for a new credential now (SIGUSR1)."""
        if self.pid is not None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGUSR1)

    def start(self, master_pid: int, listeners: list[Any]) -> None:
        """Fork the keeper; returns in the master only."""
        pid = os.fork()
        if pid == 0:
            self._run_child(master_pid, listeners)
        self.pid = pid
        log.info("vault: lease keeper runs in process %d", pid)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the keeper to revoke and exit, and wait for it (gunicorn may reap it first)."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:  # already reaped by gunicorn's SIGCHLD handler
                return
            time.sleep(0.05)
        log.warning("vault: lease keeper %d did not exit; its leases expire on their own", pid)

    def _run_child(self, master_pid: int, listeners: list[Any]) -> NoReturn:
        """The keeper's whole life: keep leases fresh until told to stop, then revoke."""
        stopping, wanted = threading.Event(), threading.Event()
        for signum in (*Arbiter.SIGNALS, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)  # the master's handlers are not ours
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the master decides
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
        signal.signal(signal.SIGUSR1, lambda signum, frame: wanted.set())
        for listener in listeners:
            listener.close()  # the port belongs to the master and its workers
        status = 0
        try:
            keeper = self._new_keeper(master_pid)
            last_on_demand = -self.MIN_ON_DEMAND_INTERVAL_S
            while not stopping.wait(self.POLL_S) and os.getppid() == master_pid:
                since_last = time.monotonic() - last_on_demand
                if wanted.is_set() and since_last >= self.MIN_ON_DEMAND_INTERVAL_S:
                    wanted.clear()
                    last_on_demand = time.monotonic()
                    keeper.stop()  # only one thread talks to Vault at a time
                    self._reissue_mongo_credential(master_pid)
                    keeper = self._new_keeper(master_pid)
            keeper.stop()
            self.session.shutdown()
            log.info("vault: session closed")
        except BaseException:  # the process must end here, never return into gunicorn
            log.exception("vault: lease keeper process failed")
            status = 1
        finally:
            os._exit(status)

    def _new_keeper(self, master_pid: int) -> LeaseKeeper:
        keeper = LeaseKeeper(
            self.session,
            on_mongo_credential=lambda _: self._reload(master_pid, "new MongoDB credential"),
            on_server_tls=lambda _: self._reload(master_pid, "new HTTPS certificate"),
            status=self.status,
        )
        keeper.start()
        return keeper

    def _reissue_mongo_credential(self, master_pid: int) -> None:
        """On demand: MongoDB refused a new worker (e.g. our certificate was revoked)."""
        try:
            self.session.issue_mongo_credential()
        except (VaultError, OSError) as exc:
            log.warning("vault: on-demand MongoDB credential failed: %s", exc)
            self.status.failed(exc)
            return
        self.status.succeeded()
        self._reload(master_pid, "new MongoDB credential (asked for by a worker)")

    @staticmethod
    def _reload(master_pid: int, reason: str) -> None:
        """Ask the master for a graceful reload: new workers, new files; old ones finish."""
        log.info("vault: %s; reloading the workers of %d", reason, master_pid)
        os.kill(master_pid, signal.SIGHUP)
