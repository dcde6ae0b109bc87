"""HTTP: one policy for every call to Keycloak, its sync and async drivers, and the auths."""
