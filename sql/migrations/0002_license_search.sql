-- Substring search over customer names and emails stays fast at 100 000+ licenses: trigram indexes.
-- pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX licenses_customer_name_trgm ON licenses USING gin (lower(customer_name) gin_trgm_ops);
CREATE INDEX licenses_customer_email_trgm ON licenses USING gin (lower(customer_email) gin_trgm_ops);
