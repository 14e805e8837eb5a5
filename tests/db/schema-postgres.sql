-- cdrate's outputs as PostgreSQL tables (README "Loading into a database").
-- Money is NUMERIC with 6 places: every figure cdrate prints has at most 6
-- (tariff.conf decimals 0-6; itemize charges exactly 6), so nothing is
-- rounded on the way in and sums are exact. Quantities can pass 2^63 in
-- a long enough period (10^10 records of up to 10^12 units), hence
-- NUMERIC(38,0) for the totals' sums.
CREATE TABLE totals (
    account          text          NOT NULL,
    period           char(7)       NOT NULL,
    records          bigint        NOT NULL,
    late_records     bigint        NOT NULL,
    voice_seconds    numeric(38,0) NOT NULL,
    sms_count        numeric(38,0) NOT NULL,
    data_bytes       numeric(38,0) NOT NULL,
    voice_charge     numeric(38,6) NOT NULL,
    sms_charge       numeric(38,6) NOT NULL,
    data_charge      numeric(38,6) NOT NULL,
    allowance_credit numeric(38,6) NOT NULL,
    recurring_charge numeric(38,6) NOT NULL,
    outage_credit    numeric(38,6) NOT NULL,
    total            numeric(38,6) NOT NULL,
    PRIMARY KEY (period, account)
);

CREATE TABLE rejects (
    file   text   NOT NULL,
    line   bigint NOT NULL,
    reason text   NOT NULL,
    detail text   NOT NULL,
    record text   NOT NULL
);

CREATE TABLE itemize (
    id          text          NOT NULL,
    account     text          NOT NULL,
    subscriber  text          NOT NULL,   -- digits: leading zeros matter
    service     text          NOT NULL,
    start       timestamp     NOT NULL,   -- local time of the tariff's zone
    destination text,                     -- empty (a data record without APN): NULL
    zone        text          NOT NULL,
    band        text          NOT NULL,
    plan        text          NOT NULL,
    quantity    numeric(38,0) NOT NULL,
    charge      numeric(38,6) NOT NULL
);
