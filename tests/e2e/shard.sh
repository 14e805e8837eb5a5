#!/bin/sh
# End-to-end tests of `cdrate shard` (README "Shards"): the four stages run
# by a plain shell loop over k, compared byte for byte with one `cdrate
# rate` over the same inputs - totals, rejects, itemize and the summary's
# counts and control totals - for N = 1, 4 and 7. The inputs hold
# duplicates whose copies belong to different accounts (an id pool far
# smaller than the records; numbers that change account mid-month), late
# records, every format (native with, without and with a reordered header,
# a byte order mark, CRLF lines, a line too long; Asterisk, FreeSWITCH; a
# column map on its own) and gzip and zstd inputs. Then the refusals
# (exit 4), a rerun, and usage errors.
#
# usage: tests/e2e/shard.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=shard
. "$(dirname "$0")/lib.sh"

T=$DEMO/tariff
P=2026-10

# ---- data -------------------------------------------------------------
# Subscribers: the demo's, and 120 more numbers on 40 accounts, every
# fourth of them moving to another account on the 15th.
SUBS=$W/subs.csv
awk 'BEGIN {
	print "subscriber,account,plan,packages,from,to"
}
NR > 1 { print }
END {
	for (i = 0; i < 120; i++) {
		n = sprintf("86150000%05d", i)
		a = sprintf("B%03d", i % 40)
		pl = i % 2 ? "mobile18" : "mobile38"
		if (i % 4 == 0) {
			print n "," a "," pl ",,2026-01-01,2026-10-14"
			print n "," sprintf("B%03d", (i + 7) % 40) "," pl ",,2026-10-15,"
		} else
			print n "," a "," pl ",,2026-01-01,"
	}
}' "$T/subscribers.csv" >"$SUBS"

# gen SEED N HEADER: native lines, ids from a pool of 500 (so most ids
# come several times, for several subscribers and accounts), starts from
# late September to early November, one line in 40 broken one way or
# another. HEADER 0: none, 1: the canonical one, 2: reordered columns.
gen() {
	awk -v seed="$1" -v n="$2" -v hdr="$3" '
	function rnd(m) { s = (s * 1103515245 + 12345) % 2147483648; return int(s / 65536) % m }
	BEGIN {
		s = seed
		split("057188000001 8613800000001 +8613800000002 057188000003 8613900000003 8613700000004 8613600000006 8613500000009 8619999999999", sub_, " ")
		split("057187654321 01062345678 0014155550123 13912345678 15987654321 02161234567 +85223456789 120", dst, " ")
		split("voice voice voice sms data", svc, " ")
		if (hdr == 1) print "id,subscriber,service,start,destination,duration,volume"
		if (hdr == 2) print "subscriber,id,service,destination,start,volume,duration"
		for (i = 0; i < n; i++) {
			id = "G" rnd(500)
			su = rnd(3) ? sprintf("86150000%05d", rnd(120)) : sub_[1 + rnd(9)]
			sv = svc[1 + rnd(5)]
			d = 26 + rnd(38); mo = "09"
			if (d > 30) { d -= 30; mo = "10" }
			if (d > 31) { d -= 31; mo = "11" }
			st = sprintf("2026-%s-%02d %02d:%02d:%02d", mo, d, rnd(24), rnd(60), rnd(60))
			de = sv == "data" ? "cmnet" : dst[1 + rnd(8)]
			du = sv == "voice" ? rnd(3000) : 0
			vo = sv == "data" ? rnd(100000000) : 0
			r = rnd(40)
			if (r == 0) du = "-5"
			if (r == 1) print ""
			if (r == 2) st = "2026-13-01 00:00:00"
			if (hdr == 2) line = su "," id "," sv "," de "," st "," vo "," du
			else line = id "," su "," sv "," st "," de "," du "," vo
			if (r == 3) line = line "\r"
			if (r == 4) line = line ",extra"
			print line
		}
	}'
}

IN=$W/in
mkdir "$IN" "$IN/more"
gen 1 1500 1 >"$IN/a.csv"
gen 2 1500 0 >"$IN/b.csv"
gen 3 800 2 >"$IN/c.csv"
printf '\357\273\277' >"$IN/d.csv"
gen 4 500 1 >>"$IN/d.csv"
# A line longer than a record may be, between two ordinary ones.
{ gen 6 3 0; awk 'BEGIN { printf "G1,"; for (i = 0; i < 70000; i++) printf "x"; print "" }'; gen 7 3 0; } >"$IN/more/long.csv"
cp -r "$SW/asterisk" "$IN/more/ast"
cp -r "$SW/freeswitch" "$IN/more/fs"
cp "$DEMO"/cdrs/* "$IN/more/"
if command -v gzip >/dev/null && command -v zstd >/dev/null; then
	gzip -c "$IN/b.csv" >"$IN/e.csv.gz"
	zstd -q -c "$IN/a.csv" >"$IN/f.zst"
	gen 5 300 0 | gzip -c >"$IN/g.gz"
	ZIP=1
else
	echo "shard: gzip or zstd not installed; compressed inputs skipped"
	ZIP=0
fi
# The same inputs as a list: directories, and files one by one.
INPUTS="$IN $IN/more $IN/more/ast $IN/more/fs/1-Master.csv $IN/more/fs/2-sms-data.csv"

# The summary lines that must agree: counts by reason, files by format and
# compression, accounts, control totals, the inputs' fingerprint.
sumlines() {
	grep -E "records read|^cdrate:   |unanswered \(|files by|accounts written|control totals|inputs:|warning" "$1" |
		sed 's/ ([0-9.]* records\/s)$//'
}

# shard_all DIR N M [rate options] [-- split options]: every stage, task by
# task, then the merge of every output.
shard_all() {
	d=$1 n=$2 m=$3
	shift 3
	k=0
	while [ $k -lt "$m" ]; do
		"$BIN" shard split --dir "$d" --shards "$n" --part "$k/$m" $SPLIT_OPTS $INPUTS || return 1
		k=$((k + 1))
	done
	k=0
	while [ $k -lt "$n" ]; do
		"$BIN" shard dedup --dir "$d" --shards "$n" --bucket $k --tariff "$T" \
			--period $P --subscribers "$SUBS" $RATE_OPTS || return 1
		k=$((k + 1))
	done
	k=0
	while [ $k -lt "$n" ]; do
		"$BIN" shard rate --dir "$d" --shards "$n" --bucket $k --tariff "$T" \
			--period $P --subscribers "$SUBS" --itemize --threads $((k % 3 + 1)) $RATE_OPTS || return 1
		k=$((k + 1))
	done
	"$BIN" shard merge --dir "$d" --shards "$n" -o "$d/t.csv" --rejects "$d/r.csv" \
		--itemize "$d/i.csv" --summary-json "$d/s.json" 2>"$d/err"
}

# compare WHAT DIR: the shard run's outputs against the single run's in $W/one
ONE=$W/one
compare() {
	same "$2/t.csv" "$ONE/t.csv" "$1: totals"
	same "$2/r.csv" "$ONE/r.csv" "$1: rejects"
	same "$2/i.csv" "$ONE/i.csv" "$1: itemize"
	sumlines "$2/err" >"$2/sum"
	same "$2/sum" "$ONE/sum" "$1: summary counts and control totals"
	# The JSON's keys a merge knows hold the single run's values.
	python3 - "$ONE/s.json" "$2/s.json" <<'PY' && ok || bad "$1: summary JSON"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
keys = ["period", "exit", "records", "rejected_by_reason", "accounts",
        "control_totals", "inputs", "max_rejects", "warnings"]
diff = [k for k in keys if a.get(k) != b.get(k)]
diff += [] if a["tariff"]["fingerprint"] == b["tariff"]["fingerprint"] else ["tariff"]
if diff or b["command"] != "shard merge":
    print("differ:", diff, file=sys.stderr)
    sys.exit(1)
PY
}

single() {
	mkdir -p "$ONE"
	"$BIN" rate --tariff "$T" --period $P --subscribers "$SUBS" $SPLIT_OPTS $RATE_OPTS \
		-o "$ONE/t.csv" --rejects "$ONE/r.csv" --itemize "$ONE/i.csv" \
		--summary-json "$ONE/s.json" $INPUTS 2>"$ONE/err"
	sumlines "$ONE/err" >"$ONE/sum"
}

# ---- every format at once, N = 1, 4, 7 --------------------------------
SPLIT_OPTS= RATE_OPTS=
single
# The data is what the test says it is.
grep -q "duplicate  " "$W/one/err" && grep -q "late" "$W/one/err" &&
	grep -q "line_too_long" "$W/one/err" && grep -q "files by format: .*asterisk.*freeswitch" "$W/one/err" &&
	ok || bad "the single run sees duplicates, late records, a long line and every format: $(cat "$W/one/err")"
[ "$ZIP" = 0 ] || grep -q "gzip, 1 zstd" "$W/one/err" && ok || bad "compressed inputs read"
[ "$(rows "$W/one/t.csv")" -gt 30 ] && ok || bad "many accounts"
# Duplicates across accounts: an id rated for one account whose other
# copies name subscribers of other accounts.
for n in 1 4 7; do
	shard_all "$W/s$n" $n 3 && ok || { bad "N=$n: a stage failed"; cat "$W/s$n/err"; }
	compare "N=$n" "$W/s$n"
done
# One reader task, and more readers than inputs.
shard_all "$W/m1" 4 1 && ok || bad "M=1: a stage failed"
compare "N=4 M=1" "$W/m1"
shard_all "$W/m20" 3 20 && ok || bad "M=20: a stage failed"
compare "N=3 M=20" "$W/m20"

# ---- a rerun gives the same parts ---------------------------------------
cp "$W/s4/rate/bucket-2.totals" "$W/b2.before"
cp "$W/s4/rate/bucket-2.rejects" "$W/b2r.before"
"$BIN" shard rate --dir "$W/s4" --shards 4 --bucket 2 --tariff "$T" --period $P \
	--subscribers "$SUBS" --itemize 2>"$W/err" && ok || bad "rerun of rate bucket 2"
same "$W/s4/rate/bucket-2.totals" "$W/b2.before" "rerun: the same totals part"
same "$W/s4/rate/bucket-2.rejects" "$W/b2r.before" "rerun: the same rejects part"
"$BIN" shard split --dir "$W/s4" --shards 4 --part 1/3 $INPUTS 2>"$W/err" && ok || bad "rerun of split 1/3"
"$BIN" shard merge --dir "$W/s4" --shards 4 -o "$W/s4/t2.csv" 2>"$W/err" && ok || bad "merge after reruns"
same "$W/s4/t2.csv" "$W/one/t.csv" "merge after reruns: totals"
[ -z "$(ls "$W/s4/rate" | grep work)" ] && ok || bad "rate leaves no work directory"

# ---- a column map and --input-timezone ---------------------------------
cat >"$W/m.map" <<'EOF'
header = yes
delimiter = ;
id = Call ID
subscriber = From
destination = To
start = Answered At
start_format = %d/%m/%Y %H:%M:%S
duration = Talk
service = Kind
answered = Result=OK
EOF
mkdir "$W/min"
awk 'BEGIN {
	s = 7
	print "Call ID;Kind;From;To;Answered At;Talk;Result"
	for (i = 0; i < 600; i++) {
		s = (s * 1103515245 + 12345) % 2147483648; r = int(s / 65536)
		printf "c%d;voice;86150000%05d;057187654321;%d/%d/2026 %d:15:00;%d;%s\n",
			r % 150, r % 120, 1 + r % 28, 9 + r % 2, r % 24, r % 900, r % 13 ? "OK" : "BUSY"
	}
}' >"$W/min/m.csv"
INPUTS_SAVED=$INPUTS
INPUTS=$W/min
SPLIT_OPTS="--format map:$W/m.map" RATE_OPTS="--input-timezone UTC"
ONE=$W/one-map
single
grep -q "files by format: 1 map" "$ONE/err" && ok || bad "map: the single run reads a map"
for n in 1 4 7; do
	rm -rf "$W/map$n"
	shard_all "$W/map$n" $n 2 && ok || { bad "map N=$n: a stage failed"; cat "$W/map$n/err"; }
	compare "map N=$n" "$W/map$n"
done
INPUTS=$INPUTS_SAVED
SPLIT_OPTS= RATE_OPTS=
ONE=$W/one

# ---- a rate task loads only its bucket's subscriber rows ----------------
# Outages of numbers that move to another account on the 15th, across the
# move (8615000000000: B000 to B007, buckets 2 and 3 of 4, 1 and 2 of 7):
# each task credits the rows it holds, the rest is another task's. The
# unknown, inactive and no-rate rejects and the emergency calls of the
# main data are routed by dedup to a bucket that holds the number's rows.
TX=$W/tx
cp -r "$T" "$TX"
cat >>"$TX/outages.csv" <<'EOF'
8615000000000,2026-10-13 12:00:00,2026-10-16 12:00:00
8615000000004,2026-10-14 00:00:00,2026-10-15 06:00:00
8615000000008,2026-10-02 00:00:00,2026-10-20 00:00:00
EOF
T_SAVED=$T
T=$TX
ONE=$W/one-tx
single
for n in 4 7; do
	shard_all "$W/tx$n" $n 2 && ok || { bad "outages N=$n: a stage failed"; cat "$W/tx$n/err"; }
	compare "outages N=$n" "$W/tx$n"
done
T=$T_SAVED
ONE=$W/one

# ---- refusals: exit 4 ----------------------------------------------------
D=$W/s4
expect_rc 4 "merge with another N" "$BIN" shard merge --dir "$D" --shards 5 -o "$W/x.csv"
err_has "split/part-0.ok: made by another run (shards 4, not 5)" "another N named"
[ ! -e "$W/x.csv" ] && ok || bad "a refused merge wrote totals"
# Another subscribers file is another tariff (its fingerprint holds it).
cp "$SUBS" "$W/subs2.csv"
echo "8615099999999,B999,mobile18,,2026-01-01," >>"$W/subs2.csv"
expect_rc 4 "rate with another tariff" "$BIN" shard rate --dir "$D" --shards 4 \
	--bucket 0 --tariff "$T" --period $P --subscribers "$W/subs2.csv"
err_has "dedup/bucket-0.ok: made by another run (tariff" "another tariff named"
expect_rc 4 "rate with another period" "$BIN" shard rate --dir "$D" --shards 4 \
	--bucket 1 --tariff "$T" --period 2026-11 --subscribers "$SUBS"
err_has "(period 2026-10, not 2026-11)" "another period named"
# A refused task removed its marker; the merge now refuses too, naming it.
expect_rc 4 "merge without rate bucket 0" "$BIN" shard merge --dir "$D" --shards 4 -o "$W/x.csv"
err_has "rate/bucket-0.ok: missing (rate bucket 0 not done)" "missing rate part named"
# A split task given another input list.
"$BIN" shard split --dir "$D" --shards 4 --part 2/3 "$IN/a.csv" 2>"$W/err"
expect_rc 4 "dedup over splits of two input lists" "$BIN" shard dedup --dir "$D" \
	--shards 4 --bucket 0 --tariff "$T" --period $P --subscribers "$SUBS"
err_has "split/part-2.ok: made by another run (input list" "another input list named"
rm "$D/split/part-1.ok"
expect_rc 4 "dedup with a split task not done" "$BIN" shard dedup --dir "$D" \
	--shards 4 --bucket 0 --tariff "$T" --period $P --subscribers "$SUBS"
err_has "split/part-1.ok: missing (split task 1 not done)" "missing split part named"
"$BIN" shard split --dir "$W/early" --shards 2 --part 0/1 "$IN/a.csv" 2>"$W/err"
expect_rc 4 "rate before any dedup" "$BIN" shard rate --dir "$W/early" --shards 2 --bucket 0 \
	--tariff "$T" --period $P --subscribers "$SUBS" --itemize
err_has "dedup/bucket-0.ok: missing (dedup bucket 0 not done)" "missing dedup part named"
rm "$W/s1/rate/bucket-0.ok"
"$BIN" shard rate --dir "$W/s1" --shards 1 --bucket 0 --tariff "$T" --period $P \
	--subscribers "$SUBS" 2>"$W/err"
expect_rc 4 "merge --itemize over parts rated without it" "$BIN" shard merge \
	--dir "$W/s1" --shards 1 --itemize "$W/x.csv"
err_has "was run without --itemize" "itemize refusal named"
"$BIN" shard merge --dir "$W/s1" --shards 1 -o "$W/s1/t3.csv" --rejects "$W/s1/r3.csv" 2>"$W/err" &&
	ok || bad "merge without --itemize"
same "$W/s1/t3.csv" "$W/one/t.csv" "N=1 without itemize: totals"
same "$W/s1/r3.csv" "$W/one/r.csv" "N=1 without itemize: rejects"

# ---- usage errors: exit 2; bad input: exit 1 ----------------------------
expect_rc 2 "no stage" "$BIN" shard
expect_rc 2 "unknown stage" "$BIN" shard bake --dir "$W/u"
expect_rc 2 "--part out of range" "$BIN" shard split --dir "$W/u" --shards 2 --part 3/3 "$IN/a.csv"
err_has "--part must be k/M" "--part named"
expect_rc 2 "--bucket out of range" "$BIN" shard dedup --dir "$W/u" --shards 2 --bucket 2 \
	--tariff "$T" --period $P
expect_rc 2 "--shards missing" "$BIN" shard split --dir "$W/u" --part 0/1 "$IN/a.csv"
expect_rc 2 "no --dir" "$BIN" shard merge --shards 2
expect_rc 2 "--itemize FILE for rate" "$BIN" shard rate --dir "$W/u" --shards 1 --bucket 0 \
	--tariff "$T" --period $P --itemize=x
expect_rc 1 "standard input" "$BIN" shard split --dir "$W/u" --shards 1 --part 0/1 -
expect_rc 1 "a missing input" "$BIN" shard split --dir "$W/u" --shards 1 --part 0/1 "$W/nope.csv"
expect_rc 0 "help shard" "$BIN" help shard
grep -q "cdrate shard split --dir DIR --shards N --part k/M" "$W/out" && ok || bad "help shard text"

summary
