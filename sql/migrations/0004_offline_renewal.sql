-- Offline certificates of perpetual licenses are valid for this many days from their issue; the client
-- renews them online when it can (an expiring license's certificate is valid until the license expires).
ALTER TABLE products
    ADD COLUMN offline_renewal_days integer NOT NULL DEFAULT 90
    CHECK (offline_renewal_days BETWEEN 1 AND 3650);
