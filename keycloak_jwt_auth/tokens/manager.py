"""The renewal policy: when to renew one client's token, who fetches it, and who waits.

Rules (docs/architecture.md):
- while a usable token exists, no caller waits on the token endpoint; the caller that wins the
  renewal lock renews in a background thread (or inline, with ``BACKGROUND_REFRESH`` off);
- when no usable token exists, callers wait for one shared fetch: one per process (a
  ``Flight`` that this process's callers share) and one per deployment (the store's lock);
  waiting is bounded by ``LOCK_TIMEOUT``, after which a waiter fetches itself.

Async callers (``aget_token``) share the same state: the warm path is the same memory read;
anything else runs the sync policy in one worker thread per event loop, which every task of that
loop awaits (Django's async cache API would be a thread hop per call too: its built-in backends
wrap the sync methods). The loop never blocks, and no lock is held across an ``await``.

Where the token lives is the store's business; how it is requested, the token flow's; this
module only pumps that flow (``run_flow``) and keeps the shared lock alive between its tries.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator

import requests
from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.client_auth import ClientAuthentication, client_authentication
from keycloak_jwt_auth.client_auth.dpop import DPoPSigner, dpop_signer
from keycloak_jwt_auth.exceptions import KeycloakJWTAuthError
from keycloak_jwt_auth.http.transport import run_flow
from keycloak_jwt_auth.metrics import TokenStats, record_token_request
from keycloak_jwt_auth.settings import ClientConfig
from keycloak_jwt_auth.signals import send, token_fetch_failed, token_fetched

from .flow import Fetched, TokenFlow, longest_fetch, token_flow
from .offload import LoopShared
from .refusals import Refusals
from .store import HELD, Look, TokenStore
from .token import AccessToken

logger = logging.getLogger(__name__)

# While another worker renews (or a failed renewal backs off), this process keeps serving its
# valid token and looks in the shared cache again after RECHECK_INTERVAL, then after pauses
# that double up to LONGEST_RECHECK: a few looks per renewal, however long it takes.
RECHECK_INTERVAL = 0.25  # seconds
LONGEST_RECHECK = 2.0  # seconds


class Flight:
    """One fetch that this process's callers share, and its outcome."""

    def __init__(self, lock_owner: str | None = None) -> None:
        self.lock_owner = lock_owner  # the shared lock this fetch holds, if any
        self.done = threading.Event()
        self.token: AccessToken | None = None
        self.error: BaseException | None = None

    def outcome(self) -> AccessToken:
        if self.error is not None:
            raise self.error
        assert self.token is not None
        return self.token


@dataclasses.dataclass
class Fetch:
    """One token request under way: the flow to pump, and what it returned."""

    flow: TokenFlow
    keep_lock: Callable[[], None]  # between tries: the shared lock outlives a slow fetch
    result: Fetched | None = None


class TokenManager:
    """Hands out one client's access token, renewing it before it expires."""

    def __init__(self, config: ClientConfig, method: ClientAuthentication | None = None) -> None:
        self.config = config
        self.authentication = method or client_authentication(config)
        # The DPoP key's signer (None: Bearer tokens), with the nonces servers asked for.
        self.dpop: DPoPSigner | None = dpop_signer(config.dpop_key, config.dpop_algorithm)
        self.session = requests.Session()  # pooled: the token endpoint's connection is kept
        self.store = TokenStore(config, bound_to=self.dpop.jkt if self.dpop else None)
        self.fetch_count = 0  # token requests this manager made (for logs, tests, benchmarks)
        self.stats = TokenStats()
        self._serving: tuple[AccessToken, float] | None = None  # (token, look again at)
        self._lock = threading.Lock()  # guards _flight
        self._flight: Flight | None = None
        self._recheck = RECHECK_INTERVAL  # the pause before the next look during a renewal
        self._refusals = Refusals()
        self._inherited_lock_owner: str | None = None  # a forked child's copy of our lock
        # What async callers await without a token: a look in the store, or a fetch.
        self._in_thread = LoopShared(lambda: self._obtain(force_refresh=False))

    def __repr__(self) -> str:
        return f"<TokenManager client={self.config.name!r} client_id={self.config.client_id!r}>"

    # --- public --------------------------------------------------------------------------

    def get_token(self, *, force_refresh: bool = False) -> AccessToken:
        """A usable token; fetches only when needed (or when ``force_refresh``)."""
        serving = self._serving
        if not force_refresh and serving is not None and time.time() < serving[1]:
            self.stats.memory += 1
            return serving[0]
        token, source = self._obtain(force_refresh=force_refresh)
        self.stats.served(source)
        return token

    async def aget_token(self, *, force_refresh: bool = False) -> AccessToken:
        """``get_token`` for async code. While a valid token exists no task waits: when it is
        time to look again (or renew), that happens in the background."""
        serving = self._serving
        if force_refresh:
            return await asyncio.to_thread(self.get_token, force_refresh=True)
        if serving is not None:
            now = time.time()
            if now < serving[1]:
                self.stats.memory += 1
                return serving[0]
            if now < serving[0].usable_until:
                self._in_thread.run()  # look in the shared cache, or renew, without waiting
                self.stats.memory += 1
                return serving[0]
        token, source = await asyncio.shield(self._in_thread.run())
        self.stats.served(source)  # every task that shared the run was served
        return token

    def get_token_with_origin(self, *, force_refresh: bool = False) -> tuple[AccessToken, bool]:
        """The token, and True when it came from memory or the shared cache (not fetched now)."""
        held = None if force_refresh else self.peek()
        token = self.get_token(force_refresh=force_refresh)
        return token, held is not None and held.value == token.value

    def peek(self) -> AccessToken | None:
        """The usable token held in memory or in the shared cache, without fetching one."""
        return self.store.read(time.time())

    def renew_from(self, token: AccessToken) -> float:
        """When renewal of ``token`` starts, with this client's ``REFRESH_MARGIN``."""
        return token.renew_from(self.config.refresh_margin)

    @sensitive_variables("rejected")
    def invalidate(self, rejected: str | None = None) -> bool:
        """Drop the token (memory and shared copy). With ``rejected`` (a token an API refused),
        drop only that value, and not when it was fetched after such a drop moments ago.
        Returns True when the next ``get_token()`` may bring another token."""
        now = time.time()
        if rejected is not None:
            again = self._refusals.in_a_row(self.peek(), rejected, now)
            if again and self._refusals.keeps(now):
                logger.warning(
                    "The token of client %s was refused again; it was fetched after the last "
                    "refusal, so it is kept (for up to %.0fs)",
                    self.config.client_id,
                    self._refusals.grace,
                )
                return False
            self._refusals.dropped(again, now)
        serving = self._serving
        if serving is not None and rejected in (None, serving[0].value):
            self._serving = None
        self.store.discard(rejected)
        logger.info("Dropped the cached token of client %s", self.config.client_id)
        return True

    # --- past the warm path --------------------------------------------------------------

    def _obtain(self, *, force_refresh: bool) -> tuple[AccessToken, str]:
        """The token, and where it came from (a ``TokenStats`` source): the shared cache (a
        renewal starts behind it when due), another caller's fetch, or a fetch of our own."""
        if force_refresh:
            flight = Flight()
        else:
            now, held, serving = time.time(), self.store.memo, self._serving
            if serving is not None and now < serving[0].usable_until:
                if self._flight is not None:  # our own renewal runs: no look needed
                    return serving[0], "memory"
                self._serving = (serving[0], min(now + 0.05, serving[0].usable_until))  # one look
            look = self.store.look(now)
            if look.token is not None:
                self._serve_or_renew(look.token, look, now)
                return look.token, "memory" if look.token is held else "cache"
            flight, brought = self._lead_or_wait(look)
            if brought is not None:
                return brought
        with self._flying(flight, back_off_on_error=False) as fetch:
            fetch.result = run_flow(fetch.flow, self.session, self.config, on_pause=fetch.keep_lock)
        return fetch.result.token, "fetch"

    def _serve(self, token: AccessToken) -> None:
        self._serving = (token, self.renew_from(token))
        self._recheck = RECHECK_INTERVAL

    # --- the renewal path: a token is still valid, nobody waits ---------------------------

    def _serve_or_renew(self, current: AccessToken, look: Look, now: float) -> None:
        if now < self.renew_from(current):
            self._serve(current)
            return
        # Look again after a pause (growing; not before a back-off's or a renewal's expected end)
        again = max(now + self._recheck, look.backoff_until, look.expected_at)
        self._serving = (current, min(again, current.usable_until))
        self._recheck = min(self._recheck * 2, LONGEST_RECHECK)
        with self._lock:
            if self._flight is not None or look.lock == HELD or now < look.backoff_until:
                return  # a renewal runs (here or elsewhere: its token will appear), or backs off
            cache_back = now + self.store.retried_in()
            if cache_back > now and cache_back + self._longest_fetch() < current.usable_until:
                return  # the cache is down: renew once it is back (one request for all workers)
            owner = self.store.try_lock()
            if owner is None:
                return  # another worker renews; its token will appear in the shared cache
            renewed = self.store.read(now)
            if renewed is not None and now < self.renew_from(renewed):
                # Another worker renewed and released the lock since we looked: use its token.
                self.store.release(owner)
                self._serve(renewed)
                return
            flight = self._flight = Flight(owner)
        logger.info("Renewing the token of client %s before it expires", self.config.client_id)
        renew = functools.partial(self._renew, flight)
        if not (self.config.background_refresh and in_background(self.config.name, renew)):
            renew()

    def _renew(self, flight: Flight) -> None:
        # A failure is logged by _flying; the valid token keeps serving meanwhile.
        renewal = self._flying(flight, back_off_on_error=True)
        with contextlib.suppress(Exception), renewal as fetch:
            fetch.result = run_flow(fetch.flow, self.session, self.config, on_pause=fetch.keep_lock)

    # --- the cold path: no valid token, callers wait for one fetch ------------------------

    def _lead_or_wait(self, look: Look) -> tuple[Flight, tuple[AccessToken, str] | None]:
        """This process's flight, once this caller may fetch (holding the shared lock when the
        cache works); with (token, source) when another caller or worker brought one."""
        with self._lock:
            flight, leading = self._flight, self._flight is None
            if flight is None:
                flight = self._flight = Flight()
        if not leading:
            if flight.done.wait(self._longest_wait() + self._longest_fetch()):
                return flight, (flight.outcome(), "fetch")
            return Flight(), None  # the leader is stuck: fetch ourselves
        if self._inherited_lock_owner is not None and self.store.per_process:
            # Forked during a fetch: our per-process cache holds a copy of the parent's lock,
            # which no thread of this process will release.
            self.store.release(self._inherited_lock_owner)
        self._inherited_lock_owner = None
        flight.lock_owner, token = self.store.lock_or_token(self._longest_wait(), look)
        if token is None:
            return flight, None
        self._serve(token)
        self._land(flight, token=token)
        return flight, (token, "cache")

    # --- one fetch, shared by the callers of a flight -------------------------------------

    @contextlib.contextmanager
    def _flying(self, flight: Flight, *, back_off_on_error: bool) -> Iterator[Fetch]:
        """Around one pump of the token flow: store the token, release the flight's lock, tell
        the flight's waiters, count and signal. (A context manager, not a function that calls
        the driver: it adds no frame between the caller and the socket.)"""
        self.fetch_count += 1
        renewal, started = self.store.holds_usable(time.time()), time.perf_counter()
        hint = self.store.shared_secret_choice() if self.authentication.wants_hint() else None
        fetch = Fetch(
            self._token_flow(hint), functools.partial(self.store.extend_lock, flight.lock_owner)
        )
        try:
            yield fetch
        except Exception as exc:
            log_failure(self.config.name, exc)
            # After a failed renewal, renewals hold off; callers without a token never do.
            (self.store.back_off if back_off_on_error else self.store.release)(flight.lock_owner)
            self._land(flight, error=exc)
            report(self.config.name, self.stats, started, renewal, error=exc)
            raise
        assert fetch.result is not None
        token, signer = fetch.result
        fingerprint = self.authentication.accepted(signer)
        if fingerprint is not None and fingerprint != hint:
            self.store.share_secret_choice(fingerprint)
        logger.info(
            "Fetched a token for client %s (expires in %.0fs)",
            self.config.client_id,
            token.expires_in(),
        )
        self.store.write(token)
        self._serve(token)
        self.store.release(flight.lock_owner)
        self.store.fetch_seconds = time.perf_counter() - started  # what our next lock expects
        self._land(flight, token=token)
        report(self.config.name, self.stats, started, renewal, token=token)

    def _token_flow(self, hint: object) -> TokenFlow:
        """The flow one fetch pumps (``tokens/exchange.py`` asks for another token)."""
        return token_flow(self.config, self.authentication, hint=hint, dpop=self.dpop)

    def _land(
        self,
        flight: Flight,
        *,
        token: AccessToken | None = None,
        error: BaseException | None = None,
    ) -> None:
        flight.token, flight.error = token, error
        with self._lock:
            if self._flight is flight:
                self._flight = None
        flight.done.set()

    def _longest_fetch(self) -> float:
        return longest_fetch(self.config)

    def _longest_wait(self) -> float:
        """How long a cold caller waits for another worker's fetch before it fetches itself."""
        return self.config.lock_timeout + self._longest_fetch()

    def forget_process_state(self) -> None:  # pragma: no cover (runs in forked children)
        """In a forked child: no fetch is in flight here, and no socket is shared with the
        parent (gunicorn --preload, multiprocessing)."""
        self._lock = threading.Lock()
        flight, self._flight = self._flight, None
        self._inherited_lock_owner = flight.lock_owner if flight else None
        self._in_thread.forget_all()
        self.session = requests.Session()  # the parent's pooled sockets stay the parent's


# --- around a fetch: what does not depend on the manager's state ----------------------------


def in_background(client: str, work: Callable[[], None]) -> bool:
    """Run ``work`` in a daemon thread; False when no thread could start (then the caller
    runs it itself: a renewal must not wedge because threads ran out)."""
    thread = threading.Thread(target=work, name=f"keycloak-token-renewal-{client}", daemon=True)
    try:
        thread.start()
    except RuntimeError as exc:  # "can't start new thread"
        logger.warning("No renewal thread for client %s (%s)", client, exc)
        return False
    return True


def log_failure(client: str, exc: BaseException) -> None:
    if isinstance(exc, KeycloakJWTAuthError):
        logger.warning("Token request for client %s failed: %s", client, exc)
    else:  # a bug, not Keycloak's answer: say where
        logger.exception("Token request for client %s failed", client, exc_info=exc)


@sensitive_variables("token")
def report(
    client: str,
    stats: TokenStats,
    started: float,
    renewal: bool,
    *,
    token: AccessToken | None = None,
    error: BaseException | None = None,
) -> None:
    """Count the fetch, and tell the signals' receivers (after the waiters: a slow receiver
    delays nobody but this fetch's own caller)."""
    duration = time.perf_counter() - started
    record_token_request(client, stats, duration=duration, error=error, renewal=renewal)
    if token is not None:
        expires_in = token.expires_in()
        send(
            token_fetched,
            TokenManager,
            client=client,
            expires_in=expires_in,
            duration=duration,
            renewal=renewal,
        )
    else:
        send(token_fetch_failed, TokenManager, client=client, error=error)
