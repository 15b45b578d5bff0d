-- `licsrv retention` blanks IP addresses older than the retention period, a batch at a time. These partial
-- indexes hold only the rows that still have an address (about one retention period of them), so each batch
-- finds its rows without walking the years of rows already blanked. Devices are walked by id instead: an
-- index on their last_seen_at would cost every session start its HOT update of the device row.
CREATE INDEX session_history_ip_kept ON session_history (started_at) WHERE ip IS NOT NULL;
CREATE INDEX card_keys_ip_kept ON card_keys (redeemed_at) WHERE ip IS NOT NULL;
CREATE INDEX security_events_ip_kept ON security_events (at) WHERE ip IS NOT NULL;
CREATE INDEX audit_log_ip_kept ON audit_log (at) WHERE ip IS NOT NULL;
