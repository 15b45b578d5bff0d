"""Client-side helpers a vendor's program can use or copy: offline activation (request codes, certificate
checks, a clock that may not move backwards)."""
