"""Drop-in adapters for clients wired to other services: each translates its wire format to a ``PostIn`` and back."""
