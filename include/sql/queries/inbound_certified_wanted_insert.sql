-- One key a day's outbound plan asks about.
INSERT INTO inbound_certified_wanted (person_id, certification, completion_date)
VALUES (:person_id, :certification, :completion_date)
