"""What the tests and the benchmarks share (neither imports the other): the demo realm file, a
recording proxy, the worker process that both start, and Keycloak's own count of token requests.

Not part of the installed package.
"""
