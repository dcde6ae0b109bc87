"""Settings: defaults, the rules that check them (with their check IDs), one client's config."""
