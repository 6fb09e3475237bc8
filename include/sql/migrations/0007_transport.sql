-- ESR transport over FTPS (spec esr-interface §7.1, §2.6, §8): what we fetched from ESR's Out/
-- folder and what we uploaded to In/. A name is fetched once: a second listing with the same name
-- and size is a no-op, the same name with other content is refused.

CREATE TABLE transport_files (
    id            {{ID}},
    vpd           TEXT NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('fetched', 'uploaded')),
    kind          TEXT NOT NULL,            -- GOF, GOC, GDR, CMI or CMC
    remote_folder TEXT NOT NULL,            -- e.g. Out or In, as configured
    name          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    local_path    TEXT,                     -- where the bytes are kept on our side
    hold_id       BIGINT,                   -- the hold a GDR full-extract request answers
    fetched_at    TEXT NOT NULL,            -- when the transfer finished (fetch or upload)
    run_id        TEXT
);
-- One transfer per name and direction.
CREATE UNIQUE INDEX transport_files_uq ON transport_files (direction, name);
CREATE INDEX transport_files_vpd_ix ON transport_files (vpd, direction, kind);
