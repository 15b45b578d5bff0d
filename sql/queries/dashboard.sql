-- name: dashboard_counts^
-- One pass over licenses for both of its counts.
SELECT l.licenses, l.active_licenses,
       (SELECT count(*) FROM devices) AS devices,
       (SELECT count(*) FROM card_keys WHERE status = 'new') AS unused_cards
FROM (SELECT count(*) AS licenses, count(*) FILTER (WHERE status = 'active') AS active_licenses
      FROM licenses) AS l;
