#!/bin/sh
# postgres.sh BIN - load cdrate's outputs into a real PostgreSQL and check
# the sums (README "Loading into a database").
#
# Rates the demo month plus a file of awkward text (bytes that are not
# UTF-8, a NUL, a tab, a backslash, a quote, CJK), starts a throwaway
# cluster under a temporary directory (as the `postgres` user when run as
# root: initdb refuses root), creates the tables of schema-postgres.sql,
# loads totals, rejects and itemize with COPY ... csv header, and checks
# that the database's sums of every money and quantity column, and its row
# counts, equal those computed from the CSV files with exact decimals, and
# that every text field reads back as the CSV holds it, and that they are
# the run's control totals (--summary-json). Stops the cluster
# by its pid. Exits 1 loudly on any difference, 77 when PostgreSQL's
# server binaries are not installed (.ci/run installs them).
set -eu
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
	echo "postgres.sh: no /usr/lib/postgresql/*/bin/initdb; skipped"
	exit 77
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/cdrate-pg-XXXXXX")
chmod 755 "$W"
PORT=$((20000 + $$ % 20000))
as_pg() { # run a server binary as a user initdb accepts
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop() {
	if [ -f "$W/data/postmaster.pid" ]; then
		pid=$(head -n 1 "$W/data/postmaster.pid")
		kill -INT "$pid" 2>/dev/null || true # fast shutdown
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
	fi
	rm -rf "$W"
}
trap stop EXIT INT TERM

# ---- the outputs
mkdir "$W/cdrs" "$W/out"
cp "$ROOT"/fixtures/demo/cdrs/* "$W/cdrs/"
printf '%s\n' \
	'X1,8613800000001,data,2026-10-12 10:00:00,ap"n\x,0,1024' \
	'X3,8613800000001,sms,2026-10-12 10:02:00,13912345678	,0,0' \
	'X4,8613800000001,data,2026-10-12 10:03:00,详单,0,2048' \
	'X5,8613800000001,voice,2026-10-12 10:04:00,9999,60,0' >"$W/cdrs/04-awkward.csv"
printf 'X2,8613800000001,voice,2026-10-12 10:01:00,139\377,60,0\n' >>"$W/cdrs/04-awkward.csv"
printf 'X6\000,8613800000001,sms,2026-10-12 10:05:00,13912345678,0,0\n' >>"$W/cdrs/04-awkward.csv"
"$BIN" rate --tariff "$ROOT/fixtures/demo/tariff" --period 2026-10 \
	--out "$W/out/totals.csv" --rejects "$W/out/rejects.csv" \
	--itemize "$W/out/itemize.csv" --summary-json "$W/summary.json" \
	"$W/cdrs" 2>"$W/rate.err"
chmod 644 "$W"/out/*.csv
chmod 755 "$W/out"

# ---- a throwaway cluster: local socket only, trust, UTF-8
mkdir "$W/data" "$W/sock"
[ "$(id -u)" = 0 ] && chown postgres "$W/data" "$W/sock"
as_pg "$PGBIN/initdb" -D "$W/data" -U cdrate -A trust -E UTF8 --locale=C \
	>"$W/initdb.log" 2>&1 || { cat "$W/initdb.log"; exit 1; }
as_pg "$PGBIN/pg_ctl" -D "$W/data" -l "$W/data/server.log" -w -t 60 \
	-o "-c listen_addresses= -c unix_socket_directories=$W/sock -p $PORT -c fsync=off" \
	start >/dev/null || { cat "$W/data/server.log"; exit 1; }
psql_() {
	psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$W/sock" -p "$PORT" -U cdrate \
		-d postgres "$@"
}
psql_ -f "$HERE/schema-postgres.sql"
for t in totals rejects itemize; do
	psql_ -c "\\copy $t from '$W/out/$t.csv' csv header"
done

# ---- what the database says, and what the files say
psql_ -F '|' >"$W/db.sums" <<'SQL'
SELECT 'totals', count(*), sum(records), sum(late_records), sum(voice_seconds),
       sum(sms_count), sum(data_bytes), sum(voice_charge), sum(sms_charge),
       sum(data_charge), sum(allowance_credit), sum(recurring_charge),
       sum(outage_credit), sum(total) FROM totals;
SELECT 'rejects', count(*), sum(line) FROM rejects;
SELECT 'itemize', count(*), sum(quantity), sum(charge) FROM itemize;
SQL
psql_ -F '|' -c "SELECT file, line, reason, detail, record FROM rejects ORDER BY file, line" >"$W/db.rejects"
psql_ -F '|' -c "SELECT id, destination, to_char(start, 'YYYY-MM-DD HH24:MI:SS') FROM itemize ORDER BY account, start, id" >"$W/db.itemize"
# DuckDB too, when Node's @duckdb/node-api is installed (optional:
# CDR_DUCKDB_NODE_PATH names its node_modules directory).
if [ -n "${CDR_DUCKDB_NODE_PATH:-}" ] && command -v node >/dev/null; then
	NODE_PATH=$CDR_DUCKDB_NODE_PATH node "$HERE/duckdb.mjs" "$W/out" \
		"$HERE/schema-duckdb.sql" >"$W/duck.sums"
fi
python3 - "$W" <<'PY'
import csv, sys
from decimal import Decimal
w = sys.argv[1]
def rows(name):
    with open(f"{w}/out/{name}.csv", newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        head = next(r)
        return head, list(r)
fail = []
def check(what, got, want):
    if got != want:
        fail.append(f"{what}: database {got!r}, files {want!r}")
import os
def sums(path):
    d = {}
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("|")
        d[f[0]] = [Decimal(x) for x in f[1:]]
    return d
db = sums(f"{w}/db.sums")
duck = sums(f"{w}/duck.sums") if os.path.exists(f"{w}/duck.sums") else None
if duck:
    # DuckDB's sums must be PostgreSQL's, which are checked below.
    for k in ("totals", "rejects", "itemize"):
        check(f"DuckDB {k}", duck[k], db[k])
    check("DuckDB read_csv with no options", duck["rejects-auto"], db["rejects"])
head, t = rows("totals")
cols = head[2:]
want = [Decimal(len(t))] + [sum((Decimal(r[head.index(c)]) for r in t), Decimal(0)) for c in cols]
for c, g, x in zip(["rows"] + cols, db["totals"], want):
    check(f"totals {c}", g, x)
# Each row adds up as printed, in the database as in the file.
for r in t:
    v = [Decimal(x) for x in r[7:]]
    check(f"total of {r[0]}", v[0] + v[1] + v[2] - v[3] + v[4] - v[5], v[6])
# The database's sums are the run's own control totals (--summary-json).
import json
summ = json.load(open(f"{w}/summary.json", encoding="utf-8"))
for c in ("voice_charge", "sms_charge", "data_charge", "allowance_credit",
          "recurring_charge", "outage_credit", "total"):
    check(f"control total {c}", db["totals"][1 + cols.index(c)],
          Decimal(summ["control_totals"][c]))
check("summary's rated records", db["totals"][1 + cols.index("records")],
      Decimal(summ["records"]["rated"]))
check("summary's late records", db["totals"][1 + cols.index("late_records")],
      Decimal(summ["records"]["late"]))
check("summary's accounts", db["totals"][0], Decimal(summ["accounts"]))
head, rj = rows("rejects")
check("rejects rows", db["rejects"][0], Decimal(len(rj)))
check("rejects sum(line)", db["rejects"][1], sum(Decimal(r[1]) for r in rj))
got = [l.rstrip("\n").split("|", 4) for l in open(f"{w}/db.rejects", encoding="utf-8")]
check("rejects text read back", got, sorted(rj, key=lambda r: (r[0], int(r[1]))))
head, it = rows("itemize")
check("itemize rows", db["itemize"][0], Decimal(len(it)))
check("itemize sum(quantity)", db["itemize"][1], sum(Decimal(r[9]) for r in it))
check("itemize sum(charge)", db["itemize"][2], sum(Decimal(r[10]) for r in it))
got = [l.rstrip("\n").split("|") for l in open(f"{w}/db.itemize", encoding="utf-8")]
check("itemize text read back", got, [[r[0], r[5], r[4]] for r in it])
# The awkward lines are there, escaped as the README says.
recs = {r[4].split(",")[0]: r for r in rj}
check("\\xFF escaped", "139\\xFF" in recs.get("X2", [""] * 5)[4], True)
check("tab escaped", "13912345678\\x09" in recs.get("X3", [""] * 5)[4], True)
ids = {r[0]: r for r in it}
check("quote and backslash", ids.get("X1", [""] * 6)[5], 'ap"n\\x5Cx')
check("CJK kept", ids.get("X4", [""] * 6)[5], "详单")
check("NUL escaped", "X6\\x00" in ids, True)
if fail:
    print("postgres.sh: FAIL")
    for f in fail:
        print("  " + f)
    sys.exit(1)
print(f"postgres.sh: PostgreSQL{' and DuckDB' if duck else ''} sums equal the files' "
      f"({len(t)} totals rows, {len(rj)} rejects, {len(it)} itemize rows; "
      f"total {db['totals'][-1]}, itemize charge {db['itemize'][2]})")
PY
