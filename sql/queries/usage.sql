-- The dashboard charts: the hourly peak of live sessions per product (written by the usage sampler) and the
-- daily counts of licenses sold, activations and card redemptions. `product_id` NULL means all products.

-- name: count_open_sessions_by_product
-- The sampler's one read: open history rows per product (the partial index session_history_open holds them).
SELECT l.product_id, count(*)::integer AS live
FROM session_history h JOIN licenses l ON l.id = h.license_id
WHERE h.ended_at IS NULL
GROUP BY l.product_id;

-- name: record_usage_peaks(product_ids, peaks, hour)!
-- Several instances may sample the same hour: the greatest sample wins, so writing twice is harmless.
INSERT INTO usage_hourly (product_id, hour, peak_sessions)
SELECT t.product_id, $3, t.peak FROM unnest($1::bigint[], $2::integer[]) AS t (product_id, peak)
ON CONFLICT (product_id, hour)
DO UPDATE SET peak_sessions = GREATEST(usage_hourly.peak_sessions, EXCLUDED.peak_sessions);

-- name: usage_per_hour(since, product_id)
-- The peak per hour, summed over the products in scope.
SELECT hour, sum(peak_sessions)::integer AS peak
FROM usage_hourly
WHERE hour >= $1 AND ($2::bigint IS NULL OR product_id = $2)
GROUP BY hour ORDER BY hour;

-- name: usage_per_day(since, product_id)
-- The day's peak: the highest of its hours (each hour summed over the products in scope).
SELECT date_trunc('day', hour, 'UTC') AS day, max(peak)::integer AS peak
FROM (
    SELECT hour, sum(peak_sessions) AS peak
    FROM usage_hourly
    WHERE hour >= $1 AND ($2::bigint IS NULL OR product_id = $2)
    GROUP BY hour
) AS hours
GROUP BY 1 ORDER BY 1;

-- name: licenses_sold_per_day(since, product_id)
SELECT date_trunc('day', created_at, 'UTC') AS day, count(*)::integer AS n
FROM licenses
WHERE created_at >= $1 AND ($2::bigint IS NULL OR product_id = $2)
GROUP BY 1 ORDER BY 1;

-- name: activations_per_day(since, product_id)
SELECT date_trunc('day', d.first_seen_at, 'UTC') AS day, count(*)::integer AS n
FROM devices d
WHERE d.first_seen_at >= $1
  AND ($2::bigint IS NULL OR EXISTS (SELECT 1 FROM licenses l WHERE l.id = d.license_id AND l.product_id = $2))
GROUP BY 1 ORDER BY 1;

-- name: redemptions_per_day(since, product_id)
SELECT date_trunc('day', k.redeemed_at, 'UTC') AS day, count(*)::integer AS n
FROM card_keys k
WHERE k.redeemed_at >= $1
  AND ($2::bigint IS NULL OR EXISTS (SELECT 1 FROM card_batches b WHERE b.id = k.batch_id AND b.product_id = $2))
GROUP BY 1 ORDER BY 1;
