-- The (person, certification, completion date) keys a day's outbound plan asks about (StateDB.inbound_certified):
-- a temporary table lives with the connection; it is emptied first and dropped in the same transaction.
CREATE TEMPORARY TABLE IF NOT EXISTS inbound_certified_wanted (
    person_id TEXT NOT NULL, certification TEXT NOT NULL, completion_date TEXT NOT NULL)
