"""The worker process that drains the queue (skeleton until the ingestion issue)."""
