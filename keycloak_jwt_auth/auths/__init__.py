"""The token authorizes a call: the headers one request needs, the one rule after a 401, and
the ``requests`` and ``httpx`` auths built on them."""
