#!/bin/sh
# End-to-end tests of the sharded breakdown (README "Shards"): `shard rate
# --breakdown` in a plain shell loop over k, then `shard merge --breakdown
# --report --tariff`, compared byte for byte with one `cdrate rate
# --breakdown --report` over the same inputs, for N = 1, 4 and 7. Two data
# sets: tests/e2e/shard.sh's (its generator and subscribers, taken from
# that script: duplicates whose copies belong to different accounts, late
# records, broken lines) on the demo tariff, and a random tariff of
# tests/ref/gen_random.py with 2 decimals, whose rounding rows are not 0.
# The report page is the single run's but for its "command" row (its
# reject sample lines included, also where lines rejected inactive are
# duplicates' losers). Then
# the refusals: parts rated without --breakdown (exit 4), another tariff
# (exit 4), no --tariff (exit 2).
#
# usage: tests/e2e/shard_bd.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=shard_bd
. "$(dirname "$0")/lib.sh"

if ! command -v python3 >/dev/null; then
	echo "shard_bd: python3 not installed, skipped"
	exit 0
fi
P=2026-10

# ---- data: shard.sh's generator and subscribers -------------------------
T=$DEMO/tariff
eval "$(sed -n '/^SUBS=/,/"\$SUBS"$/p' "$HERE/shard.sh")"
eval "$(sed -n '/^gen() {/,/^}/p' "$HERE/shard.sh")"
[ -s "$SUBS" ] && command -v gen >/dev/null && ok || bad "shard.sh's generator and subscribers found"
IN=$W/in
mkdir "$IN"
gen 1 1500 1 >"$IN/a.csv"
gen 2 1500 0 >"$IN/b.csv"
gen 3 800 2 >"$IN/c.csv"
cp "$DEMO"/cdrs/* "$IN/"

# run_all DIR N TARIFF SUBS INPUTS RATEOPT: split (2 readers), dedup and
# rate task by task (rate with RATEOPT), nothing merged.
run_all() {
	d=$1 n=$2 t=$3 s=$4 in=$5 ro=$6
	for k in 0 1; do
		"$BIN" shard split --dir "$d" --shards "$n" --part "$k/2" $in 2>>"$d.err" || return 1
	done
	k=0
	while [ $k -lt "$n" ]; do
		"$BIN" shard dedup --dir "$d" --shards "$n" --bucket $k --tariff "$t" \
			--period $P $s 2>>"$d.err" || return 1
		k=$((k + 1))
	done
	k=0
	while [ $k -lt "$n" ]; do
		"$BIN" shard rate --dir "$d" --shards "$n" --bucket $k --tariff "$t" \
			--period $P $s --threads $((k % 2 + 1)) $ro 2>>"$d.err" || return 1
		k=$((k + 1))
	done
}

# check WHAT TARIFF SUBS INPUTS: one rate run, then N = 1, 4, 7 sharded
check() {
	what=$1 t=$2 s=$3 in=$4
	one=$W/$what.one
	mkdir -p "$one"
	"$BIN" rate --tariff "$t" --period $P $s -o "$one/t.csv" \
		--breakdown "$one/b.csv" --report "$one/r.html" $in 2>"$one/err" ||
		{ bad "$what: rate"; return; }
	sed -e 's/<td>rate<\/td>/<td>shard merge<\/td>/' "$one/r.html" >"$one/r.want"
	for n in 1 4 7; do
		d=$W/$what.s$n
		run_all "$d" $n "$t" "$s" "$in" --breakdown && ok ||
			{ bad "$what N=$n: a stage failed"; cat "$d.err"; continue; }
		"$BIN" shard merge --dir "$d" --shards $n -o "$d/t.csv" --tariff "$t" $s \
			--breakdown "$d/b.csv" --report "$d/r.html" 2>"$d/err" && ok ||
			{ bad "$what N=$n: merge"; cat "$d/err"; continue; }
		same "$d/t.csv" "$one/t.csv" "$what N=$n: totals"
		same "$d/b.csv" "$one/b.csv" "$what N=$n: breakdown"
		same "$d/r.html" "$one/r.want" "$what N=$n: report (but its command row)"
	done
}

SUBOPT="--subscribers $SUBS"
check gen "$T" "$SUBOPT" "$IN"
one=$W/gen.one
# The data is what the test says it is: duplicates, late records, rejects
# in the breakdown's tables.
grep -q '^reject_reason,.*,duplicate,' "$one/b.csv" && ok || bad "gen: duplicates"
grep -q '^day,.*,earlier,' "$one/b.csv" && ok || bad "gen: late records"
grep -q '^reject_file,' "$one/b.csv" && ok || bad "gen: rejects by file"
grep -q '^cell,.*,[1-9][0-9]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*$' "$one/b.csv" &&
	ok || bad "gen: cells"

# ---- lines rejected inactive that are also duplicates' losers: a.csv's
# X lines lose to b.csv's (tests/e2e/breakdown.sh), so the page's inactive
# samples are b.csv's and a.csv's are duplicates, in shards as in one run.
S=$W/samples
mkdir "$S"
i=1
while [ $i -le 10 ]; do
	printf 'X%02d,8613500000009,voice,2026-10-05 08:%02d:00,13912345678,300,0\n' $i $i >>"$S/a.csv"
	printf 'X%02d,8613500000009,voice,2026-10-05 08:%02d:00,13912345678,299,0\n' $i $i >>"$S/b.csv"
	i=$((i + 1))
done
printf 'Y01,8613500000009,voice,2026-10-07 08:00:00,13912345678,60,0\n' >>"$S/a.csv"
printf 'Z01,8613500000009,voice,2026-10-08 08:00:00,13912345678,60,0\n' >>"$S/b.csv"
check samples "$T" "" "$S"
sed -n '/<h2>Rejects by reason/,/<\/table>/p' "$W/samples.s4/r.html" | grep '>inactive<' |
	grep -q '<code>Y01,.*<code>X01,8613500000009,voice,2026-10-05 08:01:00,13912345678,299,0</code>' &&
	ok || bad "samples N=4: inactive samples Y01, then b.csv's X01"

# ---- a tariff with 2 decimals: rounding rows that are not 0 -------------
G=$W/rand
python3 "$ROOT/tests/ref/gen_random.py" --seed 1 --period $P --out "$G" >/dev/null &&
	ok || bad "gen_random.py"
grep -q '^decimals = [0-5]$' "$G/tariff/tariff.conf" && ok || bad "random tariff: decimals < 6"
check rand "$G/tariff" "" "$G/cdrs"
grep '^rounding,' "$W/rand.one/b.csv" | grep -qv ',0,0,0,0*\.*0*,0*\.*0*,' && ok ||
	bad "random tariff: a rounding row other than 0"

# ---- refusals -----------------------------------------------------------
d=$W/plain
run_all "$d" 4 "$T" "$SUBOPT" "$IN" "" && ok || bad "rate without --breakdown"
expect_rc 4 "merge --breakdown over parts rated without it" "$BIN" shard merge \
	--dir "$d" --shards 4 -o "$W/x.csv" --breakdown "$W/x.b.csv" --tariff "$T" $SUBOPT
err_has "rate bucket 0 was run without --breakdown" "refusal names the bucket"
[ ! -e "$W/x.csv" ] && [ ! -e "$W/x.b.csv" ] && ok || bad "refused merge writes nothing"
expect_rc 0 "the same merge without --breakdown" "$BIN" shard merge \
	--dir "$d" --shards 4 -o "$W/x.csv"
expect_rc 4 "merge --breakdown with another tariff" "$BIN" shard merge \
	--dir "$W/gen.s4" --shards 4 -o "$W/y.csv" --breakdown "$W/y.b.csv" --tariff "$T"
err_has "made by another run (tariff" "another tariff named"
expect_rc 2 "merge --breakdown without --tariff" "$BIN" shard merge \
	--dir "$W/gen.s4" --shards 4 -o "$W/y.csv" --breakdown "$W/y.b.csv"
err_has "--breakdown needs --tariff" "usage error names --tariff"
# A rerun of a rate task rewrites its part with the same bytes.
cp "$W/gen.s4/rate/bucket-1.breakdown" "$W/b1.before"
"$BIN" shard rate --dir "$W/gen.s4" --shards 4 --bucket 1 --tariff "$T" --period $P \
	$SUBOPT --breakdown 2>"$W/err" && ok || bad "rerun of rate bucket 1"
same "$W/gen.s4/rate/bucket-1.breakdown" "$W/b1.before" "rerun: the same breakdown part"
"$BIN" help shard | grep -q -- '--breakdown' && ok || bad "help shard: --breakdown"

summary
