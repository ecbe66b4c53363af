-- tillbox cloud: boxes, replicated journal entries, chain tips, alarms.
-- Amounts are integer cents, VAT rates basis points (as in the journal).

CREATE TABLE boxes (
    box_id          text PRIMARY KEY,           -- the box certificate's CN, its MQTT subtree
    tenant_id       text,                       -- set by fleet provisioning (or by hand)
    store_id        text,                       -- from the journal's initialisation event
    register_id     text,                       -- idem
    epoch           text,                       -- the journal epoch being replicated
    certificates    text[] NOT NULL DEFAULT '{}',
        -- PEM certificates of the signing keys trusted after acked_through: empty until the
        -- initialisation event (seq 1) is stored (trust on first use), then the genesis
        -- certificate, replaced by each key rotation (event 1080); may be pinned beforehand
    acked_through   bigint NOT NULL DEFAULT 0,  -- highest contiguous seq stored and verified
    state           text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'alarm')),
    first_seen      timestamptz NOT NULL DEFAULT now(),
    acked_at        timestamptz,                -- when acked_through last moved
    last_entry_utc  timestamptz,                -- at_utc of the entry at acked_through
    status          jsonb,                      -- the box's last message on its status topic
    status_at       timestamptz
);

-- No foreign key to boxes: the ingest writes the box row in the same transaction, and a
-- per-row key check would cost a third of the insert.
CREATE TABLE entries (
    box_id          text NOT NULL,
    epoch           text NOT NULL,
    seq             bigint NOT NULL,
    chain           text NOT NULL,
    chain_seq       bigint NOT NULL,
    record_type     text NOT NULL,
    event_code      integer,
    business_date   date,
    at_utc          timestamptz NOT NULL,
    store_id        text NOT NULL,
    register_id     text NOT NULL,
    operator        text,
    training        boolean NOT NULL DEFAULT false,
    ref_seq         bigint,                     -- the entry a return, copy or invoice refers to
    total           bigint,                     -- ticket / invoice total, closure period total,
                                                -- cash movement amount
    total_excl      bigint,
    total_vat       bigint,
    vat             jsonb,                      -- [{rate, excl, vat, incl}]
    tenders         jsonb,                      -- [{tender, amount}], cash net of change
    period_from     date,                       -- closures
    period_to       date,
    perpetual_total bigint,
    perpetual_abs   bigint,
    sig             text NOT NULL,
    body            text NOT NULL,              -- the entry exactly as the box stored and signed it
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (box_id, epoch, seq),
    UNIQUE (box_id, epoch, chain, chain_seq)
);

CREATE INDEX entries_tickets ON entries (business_date, box_id)
    WHERE record_type IN ('sale', 'return') AND NOT training;
CREATE INDEX entries_closures ON entries (record_type, period_to, box_id)
    WHERE record_type IN ('day_closure', 'month_closure', 'year_closure');

CREATE TABLE chain_tips (
    box_id          text NOT NULL REFERENCES boxes,
    epoch           text NOT NULL,
    chain           text NOT NULL,
    chain_seq       bigint NOT NULL,
    seq             bigint NOT NULL,
    sig             text NOT NULL,
    PRIMARY KEY (box_id, epoch, chain)
);

CREATE TABLE alarms (
    alarm_id        bigserial PRIMARY KEY,
    box_id          text NOT NULL REFERENCES boxes,
    epoch           text,
    kind            text NOT NULL,              -- the nack reason, or new_epoch / stale_epoch
    seq             bigint,                     -- where, when known
    detail          text NOT NULL,
    findings        jsonb NOT NULL DEFAULT '[]',
    first_at        timestamptz NOT NULL DEFAULT now(),
    last_at         timestamptz NOT NULL DEFAULT now(),
    count           integer NOT NULL DEFAULT 1, -- the same alarm raised again (resends)
    cleared_at      timestamptz
);

CREATE UNIQUE INDEX alarms_open ON alarms (box_id, kind, (coalesce(seq, 0)))
    WHERE cleared_at IS NULL;
