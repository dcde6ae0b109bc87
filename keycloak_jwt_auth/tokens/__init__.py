"""Tokens: the value, where it is kept, when it is renewed, and how it is requested."""
