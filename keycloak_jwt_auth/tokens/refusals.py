"""After an API refused a token (401): when to drop it, and when dropping would change nothing.

A 401 makes this process drop the token, so that the next call fetches a new one. The token
fetched after such a drop is then kept for a while however often it is refused: an API that
always answers 401 must not cost a token request per call. The while doubles with each drop in a
row (1 s, 2 s, 4 s... up to 30 s): a genuine second revocation costs seconds, an API that always
refuses a few token requests.
"""

from __future__ import annotations

from django.views.decorators.debug import sensitive_variables

from .token import AccessToken

REFUSED_AGAIN_FIRST = 1.0  # seconds
REFUSED_AGAIN_GRACE = 30.0  # seconds: the longest


class Refusals:
    def __init__(self) -> None:
        self.dropped_at = -2 * REFUSED_AGAIN_GRACE  # time.time() of the last drop for a 401
        self.grace = REFUSED_AGAIN_FIRST  # how long the token fetched after it is kept

    @sensitive_variables("held", "rejected")
    def in_a_row(self, held: AccessToken | None, rejected: str, now: float) -> bool:
        """``rejected`` is the token fetched after the last drop, and that drop is recent
        (within twice the longest grace): the refusals come in a row."""
        return (
            held is not None
            and held.value == rejected
            and held.issued_at >= self.dropped_at > now - 2 * REFUSED_AGAIN_GRACE
        )

    def keeps(self, now: float) -> bool:
        """Whether a refusal in a row comes within the grace: then the token is kept."""
        return now - self.dropped_at < self.grace

    def dropped(self, again: bool, now: float) -> None:
        """A token was dropped: the next grace doubles when the refusals come in a row."""
        self.grace = min(REFUSED_AGAIN_GRACE, 2 * self.grace) if again else REFUSED_AGAIN_FIRST
        self.dropped_at = now
