#!/bin/sh
# End-to-end tests of --breakdown and --report on rate and rerate: the
# breakdown reconciles with the totals file (tests/e2e/bdcheck.py, which
# also checks each cell against the itemize rows and the reject tables
# against the rejects file) on the demo month and on random tariffs of
# tests/ref/gen_random.py (several decimals, band splits, DST); it is the
# same bytes whatever the thread count or input order; a rerate's new and
# old columns are the breakdowns of rate under each tariff; the report is
# one page that fetches nothing. The browser check is tests/e2e/report.sh.
#
# usage: tests/e2e/breakdown.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=breakdown
. "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null; then
	echo "breakdown: python3 not installed, skipped"
	exit 0
fi
check() { # WHAT ARGS...: bdcheck.py passes
	what=$1
	shift
	if python3 "$HERE/bdcheck.py" "$@" >"$W/bdc" 2>&1; then ok; else
		bad "$what"
		head -10 "$W/bdc"
	fi
}

# ---- the demo month
expect_rc 0 "demo with --breakdown and --report" rate_demo -o "$W/t.csv" \
	--itemize "$W/i.csv" --rejects "$W/r.csv" --breakdown "$W/b.csv" \
	--report "$W/r.html" "$DEMO/cdrs"
same "$W/t.csv" "$DEMO/expected/totals.csv" "totals unchanged by --breakdown"
err_has "--breakdown $W/b.csv, --report $W/r.html" "the summary names both outputs"
check "demo breakdown reconciles" "$W/b.csv" "$W/t.csv" --itemize "$W/i.csv" \
	--rejects "$W/r.csv"
# A hand-checked line of the demo (fixtures/demo/WORKED.md): A1002's
# voice100 package credits its local peak minutes at 0.10 a minute.
grep -qx 'cell,voice,mobile38,local,peak,,1,0,1200,2.00,2.00,0.00,0.00' \
	"$W/b.csv" && ok || bad "demo: the mobile38 local peak cell"
grep -qx 'monthly,,,,,,0,0,0,0.00,0.00,159.77,5.62' "$W/b.csv" && ok ||
	bad "demo: monthly row"
grep -q '^reject_reason,,,,,duplicate,2,' "$W/b.csv" && ok ||
	bad "demo: duplicates counted as rejects"

# The same bytes whatever the threads and the input order.
for th in 1 3; do
	rate_demo --threads $th -o "$W/t$th.csv" --breakdown "$W/b$th.csv" \
		--report "$W/r$th.html" "$DEMO/cdrs" 2>/dev/null
	same "$W/b$th.csv" "$W/b.csv" "breakdown with --threads $th"
	same "$W/r$th.html" "$W/r.html" "report with --threads $th"
done
rate_demo --threads 2 -o "$W/tr.csv" --breakdown "$W/br.csv" \
	--report "$W/rr.html" "$DEMO/cdrs/03-resend.csv" \
	"$DEMO/cdrs/02-mobile-switch.csv" "$DEMO/cdrs/01-fixed-switch.csv" \
	2>/dev/null
# But for reject_file: a duplicate identical to the line it repeats is the
# reject of the input read later, as in the rejects file.
grep -v '^reject_file,' "$W/br.csv" >"$W/br.nf"
grep -v '^reject_file,' "$W/b.csv" >"$W/b.nf"
same "$W/br.nf" "$W/b.nf" "breakdown with the inputs reversed"
# The page's reject sample lines are the rejects file's first lines of each
# reason (tests/e2e/samplecheck.py), on the demo (which has duplicates).
python3 "$HERE/samplecheck.py" "$W/r.html" "$W/r.csv" >"$W/sc" 2>&1 && ok ||
	{ bad "demo: sample lines are the rejects file's"; head -5 "$W/sc"; }

# Lines rejected `inactive` that are also duplicates' losers: a.csv sorts
# first and its lines X01..X10 (inactive) and R01 (rated) lose to b.csv's
# (the same ids, bytewise smaller lines: the loser does not depend on the
# input order). The rejects file calls a.csv's lines `duplicate` and b.csv's
# X lines `inactive`; the page must too, whatever the threads and order.
S=$W/samples
mkdir "$S"
i=1
while [ $i -le 10 ]; do
	printf 'X%02d,8613500000009,voice,2026-10-05 08:%02d:00,13912345678,300,0\n' $i $i >>"$S/a.csv"
	printf 'X%02d,8613500000009,voice,2026-10-05 08:%02d:00,13912345678,299,0\n' $i $i >>"$S/b.csv"
	i=$((i + 1))
done
cat >>"$S/a.csv" <<'EOF'
R01,8613800000001,voice,2026-10-06 08:00:00,13912345678,300,0
Y01,8613500000009,voice,2026-10-07 08:00:00,13912345678,60,0
Y02,8613600000006,voice,2026-10-07 09:00:00,13912345678,60,0
EOF
cat >>"$S/b.csv" <<'EOF'
R01,8613800000001,voice,2026-10-06 08:00:00,13912345678,299,0
Z01,8613500000009,voice,2026-10-08 08:00:00,13912345678,60,0
EOF
for th in 1 3; do
	for order in ab ba; do
		[ $order = ab ] && ins="$S/a.csv $S/b.csv" || ins="$S/b.csv $S/a.csv"
		rate_demo --threads $th -o "$S/t.$th$order" --rejects "$S/rj.$th$order" \
			--breakdown "$S/b.$th$order" --report "$S/r.$th$order" $ins 2>/dev/null
		python3 "$HERE/samplecheck.py" "$S/r.$th$order" "$S/rj.$th$order" \
			>"$S/sc" 2>&1 && ok ||
			{ bad "inactive losers ($th threads, $order): samples"; head -5 "$S/sc"; }
		same "$S/rj.$th$order" "$S/rj.1ab" "inactive losers ($th threads, $order): rejects"
		same "$S/b.$th$order" "$S/b.1ab" "inactive losers ($th threads, $order): breakdown"
		# (the inputs' fingerprint is of the list as given)
		sed 's/inputs fingerprint<\/th><td>[0-9a-f]*</inputs fingerprint<\/th><td></' \
			"$S/r.$th$order" >"$S/p.$th$order"
		same "$S/p.$th$order" "$S/p.1ab" "inactive losers ($th threads, $order): report"
	done
done
# What the check relies on: a.csv's X01 is a duplicate, b.csv's X01 inactive,
# and the page shows a.csv's lines under duplicate, not under inactive.
grep -q "a.csv,1,duplicate,.*X01,8613500000009,voice,2026-10-05 08:01:00,13912345678,300,0" \
	"$S/rj.1ab" && grep -q "b.csv,1,inactive," "$S/rj.1ab" && ok ||
	bad "inactive losers: the rejects file as the test means it"
sed -n '/<h2>Rejects by reason/,/<\/table>/p' "$S/r.1ab" | grep '>inactive<' |
	grep -q '<code>Y01,.*<code>Y02,.*<code>X01,8613500000009,voice,2026-10-05 08:01:00,13912345678,299,0</code>' &&
	ok || bad "inactive losers: inactive samples Y01, Y02, then b.csv's X01"

# --report alone collects the same figures.
rate_demo -o "$W/t4.csv" --report "$W/r4.html" "$DEMO/cdrs" 2>/dev/null
same "$W/r4.html" "$W/r.html" "--report without --breakdown"

# The page reads from a mail attachment: no script, nothing fetched.
for pat in '<script' 'src=' 'href=' 'url(' '@import' 'http:' 'https:' '<link'; do
	if grep -qiF "$pat" "$W/r.html"; then bad "report holds '$pat'"; else ok; fi
done
grep -q 'data-fig=total>295.70 CNY<' "$W/r.html" && ok ||
	bad "report: the total with the tariff's decimals and currency"

# Options: an output on an input, two outputs on one file.
expect_rc 2 "--breakdown onto an input" rate_demo -o "$W/x.csv" \
	--breakdown "$DEMO/cdrs/01-fixed-switch.csv" "$DEMO/cdrs"
expect_rc 2 "--report onto --out" rate_demo -o "$W/x.csv" --report "$W/x.csv" \
	"$DEMO/cdrs"
"$BIN" help rate | grep -q -- '--breakdown FILE' && ok || bad "help rate: --breakdown"
"$BIN" help rerate | grep -q -- '--report FILE' && ok || bad "help rerate: --report"

# ---- random tariffs: every reconciliation, rounding lines that are not 0
nz=0
for seed in 0 1 2 3 4 5 6 7; do
	p=2026-10
	[ $((seed % 2)) -eq 1 ] && p=2026-03
	d=$W/seed$seed
	python3 "$ROOT/tests/ref/gen_random.py" --seed $seed --period $p \
		--out "$d" >/dev/null || { bad "generator seed $seed"; continue; }
	"$BIN" rate --tariff "$d/tariff" --period $p -o "$d/t.csv" \
		--itemize "$d/i.csv" --rejects "$d/r.csv" --breakdown "$d/b.csv" \
		--threads 2 "$d/cdrs" 2>"$d/err" || { bad "rate seed $seed"; continue; }
	check "seed $seed reconciles" "$d/b.csv" "$d/t.csv" --itemize "$d/i.csv" \
		--rejects "$d/r.csv"
	grep '^rounding,' "$d/b.csv" | grep -qv ',0,0,0,0*\.*0*,0*\.*0*,' && nz=$((nz + 1))
done
# The rounding lines matter: some of these runs need them.
[ "$nz" -gt 0 ] && ok || bad "no seed had a rounding line other than 0"

# ---- rerate: new columns = rate under NEW, old_* = rate under OLD
NEW=$W/newtariff
cp -r "$DEMO/tariff" "$NEW"
sed -i 's/^mobile18,voice,\*,\*,0,0.15,/mobile18,voice,*,*,0,0.25,/; s/^fixed25,25$/fixed25,27/' \
	"$NEW/rates.csv" "$NEW/plans.csv"
expect_rc 0 "rerate with --breakdown" "$BIN" rerate --tariff "$DEMO/tariff" \
	--new-tariff "$NEW" --period 2026-10 -o "$W/d.csv" --old-out "$W/ot.csv" \
	--new-out "$W/nt.csv" --breakdown "$W/rb.csv" --report "$W/rr.html" \
	"$DEMO/cdrs"
check "rerate new side reconciles" "$W/rb.csv" "$W/nt.csv"
check "rerate old side reconciles" "$W/rb.csv" "$W/ot.csv" --old
rate_demo -o "$W/t5.csv" --breakdown "$W/bo.csv" "$DEMO/cdrs" 2>/dev/null
"$BIN" rate --tariff "$NEW" --period 2026-10 -o "$W/t6.csv" \
	--breakdown "$W/bn.csv" "$DEMO/cdrs" 2>/dev/null
csv_cols "$W/rb.csv" table service plan zone band key records late_records \
	quantity charge allowance_credit recurring_charge outage_credit >"$W/rb.new"
csv_cols "$W/rb.csv" table service plan zone band key old_records \
	old_late_records old_quantity old_charge old_allowance_credit \
	old_recurring_charge old_outage_credit >"$W/rb.old"
csv_cols "$W/bn.csv" table service plan zone band key records late_records \
	quantity charge allowance_credit recurring_charge outage_credit >"$W/bn.t"
csv_cols "$W/bo.csv" table service plan zone band key records late_records \
	quantity charge allowance_credit recurring_charge outage_credit >"$W/bo.t"
same "$W/rb.new" "$W/bn.t" "rerate's columns are rate's under the new tariff"
same "$W/rb.old" "$W/bo.t" "rerate's old_ columns are rate's under the old tariff"
grep -q 'data-fig=up>2<' "$W/rr.html" && ok || bad "rerate report: 2 accounts up"
grep -q 'data-fig=delta>+4.30 CNY<' "$W/rr.html" && ok ||
	bad "rerate report: the total delta"
grep -q '<h2>Histogram of deltas</h2>' "$W/rr.html" && ok ||
	bad "rerate report: histogram"

summary
