"""``manage.py keycloak_doctor``: a live preflight of one client. ``probe`` reaches Keycloak
(server, realm, a token request, the clock); ``diagnose`` judges what it found against the
settings and the client's configuration in Keycloak."""
