"""Drop-in adapters for clients wired to other services; each only maps to and from the Pipeline."""
