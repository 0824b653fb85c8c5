"""RQ workers: queued moderation, decision store, webhooks (see the queue issue)."""
