-- First touch, last touch and linear attribution of a raw event log, in DuckDB: the reference
-- the columnar engine is timed against (bench/bench_events.py). A journey is the customer's
-- touches since their previous purchase, within the lookback before the purchase (no timeout
-- chunks, no lateness: a simpler job than the engine's, which gives the same credit when no
-- journey outlives its timeout). Repeats of (customer_id, event_id) count once.
-- Parameters, replaced by the benchmark: {log} the Parquet file, {lookback_days}.
WITH events AS (
    SELECT customer_id, event_id, type, channel, amount, ts
    FROM read_parquet('{log}')
    WHERE type IN ('touchpoint', 'purchase')
    QUALIFY row_number() OVER (PARTITION BY customer_id, event_id ORDER BY ts) = 1
),
numbered AS (
    SELECT *,
        coalesce(sum(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END) OVER (
            PARTITION BY customer_id ORDER BY ts, event_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS journey
    FROM events
),
purchases AS (
    SELECT customer_id, journey, ts AS purchased_at, amount
    FROM numbered WHERE type = 'purchase'
),
touches AS (
    SELECT t.channel, p.amount,
        row_number() OVER w AS position,
        count(*) OVER (PARTITION BY t.customer_id, t.journey) AS touches
    FROM numbered t
    JOIN purchases p USING (customer_id, journey)
    WHERE t.type = 'touchpoint'
      AND p.purchased_at - t.ts <= INTERVAL ({lookback_days}) DAY
    WINDOW w AS (PARTITION BY t.customer_id, t.journey ORDER BY t.ts, t.event_id)
)
SELECT 'first_touch' AS model, channel, count(*) AS conversions, sum(amount) AS value
FROM touches WHERE position = 1 GROUP BY channel
UNION ALL
SELECT 'last_touch', channel, count(*), sum(amount)
FROM touches WHERE position = touches GROUP BY channel
UNION ALL
SELECT 'linear', channel, sum(1.0 / touches), sum(amount / touches)
FROM touches GROUP BY channel
ORDER BY model, channel;
