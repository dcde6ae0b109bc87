"""Django signals for what the token layer does: a token fetched or refused, the shared cache lost
or back. Sent from the sync and the async paths alike (async callers fetch in a worker thread).

Receivers are called with ``send_robust``: one that raises is logged by Django (logger
``django.dispatch``) and never breaks token handling. No signal carries a token or a secret.

- ``token_fetched``: ``client`` (the client's name), ``expires_in`` and ``duration`` (seconds,
  floats), ``renewal`` (True when a still-valid token was being replaced);
- ``token_fetch_failed``: ``client``, ``error`` (the exception; the caller gets it too);
- ``token_cache_failed``: ``client``, ``error`` (the cache backend's exception): the client now
  keeps its token in memory only;
- ``token_cache_recovered``: ``client``: the shared cache answers again.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

token_fetched = Signal()
token_fetch_failed = Signal()
token_cache_failed = Signal()
token_cache_recovered = Signal()


def send(signal: Signal, sender: type, **kwargs: Any) -> None:
    """Tell the receivers; whatever they raise is logged, not raised."""
    if signal.has_listeners(sender):
        signal.send_robust(sender=sender, **kwargs)
