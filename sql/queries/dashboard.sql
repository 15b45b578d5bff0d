-- name: dashboard_counts^
SELECT (SELECT count(*) FROM licenses) AS licenses,
       (SELECT count(*) FROM licenses WHERE status = 'active') AS active_licenses,
       (SELECT count(*) FROM devices) AS devices,
       (SELECT count(*) FROM card_keys WHERE status = 'new') AS unused_cards;
