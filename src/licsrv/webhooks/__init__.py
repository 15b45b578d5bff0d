"""Webhooks (DESIGN §7d): the event catalogue, the transactional outbox, endpoints and their delivery."""
