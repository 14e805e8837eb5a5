-- cdrate's outputs as DuckDB tables (README "Loading into a database").
-- Declare the types: read_csv's detection reads money as DOUBLE, and a
-- sum of 10M doubles is not the sum of the printed cents.
CREATE TABLE totals (
    account VARCHAR NOT NULL, period VARCHAR NOT NULL,
    records BIGINT NOT NULL, late_records BIGINT NOT NULL,
    voice_seconds DECIMAL(38,0) NOT NULL, sms_count DECIMAL(38,0) NOT NULL,
    data_bytes DECIMAL(38,0) NOT NULL,
    voice_charge DECIMAL(38,6) NOT NULL, sms_charge DECIMAL(38,6) NOT NULL,
    data_charge DECIMAL(38,6) NOT NULL, allowance_credit DECIMAL(38,6) NOT NULL,
    recurring_charge DECIMAL(38,6) NOT NULL, outage_credit DECIMAL(38,6) NOT NULL,
    total DECIMAL(38,6) NOT NULL
);
CREATE TABLE rejects (
    file VARCHAR NOT NULL, line BIGINT NOT NULL, reason VARCHAR NOT NULL,
    detail VARCHAR NOT NULL, record VARCHAR NOT NULL
);
CREATE TABLE itemize (
    id VARCHAR NOT NULL, account VARCHAR NOT NULL, subscriber VARCHAR NOT NULL,
    service VARCHAR NOT NULL, start TIMESTAMP NOT NULL,
    destination VARCHAR, zone VARCHAR NOT NULL, band VARCHAR NOT NULL,
    plan VARCHAR NOT NULL, quantity DECIMAL(38,0) NOT NULL,
    charge DECIMAL(38,6) NOT NULL
);
