-- name: dashboard_counts(product_id)^
-- One pass over licenses for both of its counts; one product's when product_id is given (NULL: all).
SELECT l.licenses, l.active_licenses,
       (SELECT count(*) FROM devices d
        WHERE $1::bigint IS NULL
           OR EXISTS (SELECT 1 FROM licenses dl WHERE dl.id = d.license_id AND dl.product_id = $1)) AS devices,
       (SELECT count(*) FROM card_keys k
        WHERE k.status = 'new'
          AND ($1::bigint IS NULL
               OR EXISTS (SELECT 1 FROM card_batches b WHERE b.id = k.batch_id AND b.product_id = $1)))
           AS unused_cards
FROM (SELECT count(*) AS licenses, count(*) FILTER (WHERE status = 'active') AS active_licenses
      FROM licenses WHERE $1::bigint IS NULL OR product_id = $1) AS l;
