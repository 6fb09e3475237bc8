-- One person a day's outbound plan reads the ledger for.
INSERT INTO outbound_wanted_persons (person_id) VALUES (:person_id)
