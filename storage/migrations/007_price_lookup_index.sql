-- 007: the search reads recent observed fares of legs that start OR end at either end of the
-- query on its travel dates: two small index scans (a BitmapOr) instead of a scan of the month.
-- idx_price_history_fare leads with the whole route, which this lookup does not know.
CREATE INDEX IF NOT EXISTS idx_price_history_departures ON price_history (origin_code, departure_date);
CREATE INDEX IF NOT EXISTS idx_price_history_arrivals ON price_history (destination_code, departure_date);
