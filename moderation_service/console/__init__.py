"""The moderator console: server-rendered pages at ``/console`` on top of ``service`` (no JavaScript build).

``create_router`` takes how to reach the process's services and keys, so the console does not import
the API package; the API app includes the router.
"""

from moderation_service.console.session import Access
from moderation_service.console.web import create_router

__all__ = ["Access", "create_router"]
