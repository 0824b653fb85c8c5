"""The classification core: normalise -> rulebook -> crisis -> classifiers -> policy -> Decision.

Pure: no metrics, no Redis, no HTTP, no settings. A ``Pipeline`` takes already-built parts
(``bootstrap`` builds them); everything that happens around a decision lives in ``service``.
"""
