-- The date each event's run processed (its run_date param, else its logical date), written with the event. The
-- Runs page showed it from what a run recorded besides (outbound files, the outbound window, the as-of date of
-- its plan rows); a rerun of a processed day records no plan rows (nothing changed) and retention deletes old plan
-- rows, so those runs showed none. Older events keep NULL and the page falls back to the old sources.
ALTER TABLE audit_events ADD COLUMN run_date TEXT;
