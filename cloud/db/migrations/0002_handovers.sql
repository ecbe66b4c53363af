-- tillbox cloud: box replacement. A box replaced after loss or theft hands its register's
-- chain tips, watermark and last closures to its successor (DESIGN §8); each handover given is
-- recorded here, once per predecessor, with the very document the successor received.

CREATE TABLE handovers (
    predecessor     text PRIMARY KEY REFERENCES boxes,  -- the replaced box
    successor       text NOT NULL UNIQUE,               -- the box continuing its chains
    epoch           text NOT NULL,                      -- the predecessor's journal handed over
    document        jsonb NOT NULL,                     -- the handover exactly as answered
    given_at        timestamptz NOT NULL DEFAULT now(),
    asked           integer NOT NULL DEFAULT 1,         -- requests answered (the same again)
    last_asked_at   timestamptz NOT NULL DEFAULT now()
);
