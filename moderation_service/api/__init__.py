"""The HTTP API: app factory, auth, problem+json errors, routes; everything else happens in ``service``."""
