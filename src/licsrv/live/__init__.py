"""Live state in Redis: session locks and heartbeats whose TTL is their liveness."""
