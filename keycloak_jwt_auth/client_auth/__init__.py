"""Client authentication: who signs the client assertion, and the keys it signs with."""
