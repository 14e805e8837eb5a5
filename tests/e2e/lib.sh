# Sourced by the e2e scripts (run.sh, formats.sh, invariance.sh) after they
# set TAG: the binary and the repository's paths, a scratch directory
# removed on exit, the pass/fail counters and the checks they share.
# `summary` prints "N passed, M failed" and is the script's exit status.
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DEMO=$ROOT/fixtures/demo
SW=$ROOT/fixtures/switch
W=$(mktemp -d "/tmp/cdrate-$TAG-XXXXXX")
trap 'rm -rf "$W"' EXIT INT TERM
export LC_ALL=C
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# same FILE_A FILE_B WHAT: byte-identical, else show the diff
same() {
	if cmp -s "$1" "$2"; then ok; else bad "$3"; diff "$1" "$2" | head -20; fi
}
# sorted_same FILE EXPECTED WHAT: same lines in any order
sorted_same() {
	sort "$1" >"$1.sorted"
	same "$1.sorted" "$2" "$3"
}
# rows FILE: the data rows of a CSV file with a header
rows() { tail -n +2 "$1" | wc -l; }
# csv_cols FILE COL...: those columns of each row, tab-separated
csv_cols() { python3 "$ROOT/tests/e2e/csvcols.py" "$@"; }
# item_old FILE: itemize rows as id,account,subscriber,service,zone,band,
# quantity,charge (what most checks name)
item_old() {
	csv_cols "$1" id account subscriber service zone band quantity charge | tr '\t' ,
}
# rej_old FILE: each reject as its record, a comma and its reason
rej_old() { csv_cols "$1" record reason | tr '\t' ,; }
# rej_same FILE EXPECTED WHAT: the same rejects (reason and record) in any
# order, wherever they came from (file, line and detail aside)
rej_same() {
	csv_cols "$1" reason record | sort >"$1.rr"
	csv_cols "$2" reason record | sort >"$1.rr.want"
	same "$1.rr" "$1.rr.want" "$3"
}
# expect_rc RC WHAT CMD...: run CMD, check its exit status
expect_rc() {
	want=$1; what=$2; shift 2
	"$@" >"$W/out" 2>"$W/err"
	got=$?
	if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit $got, wanted $want"; head -5 "$W/err"; fi
}
# err_has TEXT WHAT: the last command's stderr contains TEXT
err_has() {
	if grep -qF -- "$1" "$W/err"; then ok; else bad "$2: stderr lacks '$1'"; head -5 "$W/err"; fi
}

rate_demo() { "$BIN" rate --tariff "$DEMO/tariff" --period 2026-10 "$@"; }

summary() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}
