#!/bin/sh
# make bench-shard: the 10M-record month (the data set of bench/run.sh,
# made or reused the same way) through the sharded pipeline of
# `cdrate shard` at N = 4 buckets and M = 4 readers, run as a plain shell
# loop (no scheduler), against one `cdrate rate` run in the same session.
#
# Reports, per stage: every task's wall time and peak RSS (/usr/bin/time),
# the stage's sum (one machine doing the tasks one after another) and max
# (the stage's time with one machine per task), and the bytes each stage
# leaves under --dir; then the pipeline's critical path (sum of the
# stages' max) and total against the single run, and checks that the
# merged totals and rejects equal the single run's byte for byte.
# Not part of make test (timings); fails clearly while the binary has no
# `shard` subcommands.
#
# usage: bench/shard.sh BUILD_DIR
# env:   BENCH_DIR (/var/tmp/cdrate-bench), BENCH_RECORDS (10000000),
#        BENCH_SUBS (1000000), SHARDS (4), READERS (SHARDS), SHARD_THREADS (2)
set -eu
B=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CDR=$B/cdrate
N=${BENCH_RECORDS:-10000000}; S=${BENCH_SUBS:-1000000}
SH=${SHARDS:-4}; RD=${READERS:-$SH}; TH=${SHARD_THREADS:-2}
D=${BENCH_DIR:-/var/tmp/cdrate-bench}
if ! "$CDR" shard split --help >/dev/null 2>&1; then
	echo "bench-shard: $CDR has no 'shard' subcommands ('cdrate shard split --help' fails); nothing measured" >&2
	exit 1
fi
command -v /usr/bin/time >/dev/null || { echo "bench-shard: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
mkdir -p "$B/bench" "$D"
cc -std=c11 -D_GNU_SOURCE -O2 -o "$B/bench/gen" "$ROOT/bench/gen.c"
DATA=$D/n$N-s$S
if [ "$(cat "$DATA/.stamp" 2>/dev/null)" != "--records $N --subscribers $S" ]; then
	rm -rf "$DATA"
	"$B/bench/gen" --out "$DATA" --records "$N" --subscribers "$S" >/dev/null 2>&1
	echo "--records $N --subscribers $S" >"$DATA/.stamp"
fi
W=$D/shard-work
OUT=$D/shard-out
rm -rf "$W" "$OUT"
mkdir -p "$W" "$OUT"
R="--tariff $DATA/tariff --period 2026-10"
BYTES=$(cat "$DATA"/cdrs/* | wc -c)
echo "machine: $(nproc) CPUs; data: $N records, $S subscribers, $BYTES bytes; N=$SH shards, M=$RD readers, rate tasks at $TH threads"

# timed LABEL CMD...: wall seconds and peak RSS (KiB) of one command, as
# "LABEL SECONDS KIB" on fd 3; the command's exit must be 0 (3 for merge
# past --max-rejects would be too, but the bench gives none).
exec 3>"$OUT/times"
timed() {
	label=$1; shift
	/usr/bin/time -f "%e %M" -o "$OUT/t1" "$@" >/dev/null 2>"$OUT/err" || {
		cat "$OUT/err" >&2; echo "bench-shard: $label failed" >&2; exit 1
	}
	echo "$label $(cat "$OUT/t1")" >&3
	echo "$label: $(awk '{ printf "%.2f s, %d MiB", $1, $2 / 1024 }' "$OUT/t1")"
}

# shellcheck disable=SC2086
timed single "$CDR" rate $R --threads "$TH" --out "$OUT/single-totals.csv" \
	--rejects "$OUT/single-rejects.csv" "$DATA/cdrs"
k=0
while [ $k -lt "$RD" ]; do
	timed "split $k" "$CDR" shard split --dir "$W" --shards "$SH" --part "$k/$RD" "$DATA/cdrs"
	k=$((k + 1))
done
for st in dedup rate; do
	k=0
	while [ $k -lt "$SH" ]; do
		if [ $st = rate ]; then
			# shellcheck disable=SC2086
			timed "rate $k" "$CDR" shard rate --dir "$W" --shards "$SH" --bucket $k $R --threads "$TH"
		else
			# shellcheck disable=SC2086
			timed "dedup $k" "$CDR" shard dedup --dir "$W" --shards "$SH" --bucket $k $R
		fi
		k=$((k + 1))
	done
done
timed merge "$CDR" shard merge --dir "$W" --shards "$SH" --out "$OUT/totals.csv" \
	--rejects "$OUT/rejects.csv"
exec 3>&-

echo "== per stage (sum: one machine, tasks in turn; max: one machine per task)"
for st in split dedup rate merge; do
	b=
	[ -d "$W/$st" ] && b=$(du -sb "$W/$st" | cut -f1)
	awk -v st="$st" -v b="${b:-0}" '$1 == st {
		s += $(NF - 1); if ($(NF - 1) > m) m = $(NF - 1)
		if ($NF > r) r = $NF; n++ }
	END { printf "%-6s %d task(s): sum %.2f s, max %.2f s, peak RSS %d MiB", st, n, s, m, r / 1024
		if (st != "merge") printf ", %s bytes under --dir/%s", b, st
		printf "\n" }' "$OUT/times"
done
awk -v bytes="$BYTES" '
	$1 == "single" { single = $2; srss = $3 }
	$1 != "single" { t = $(NF - 1); sum += t; if (t > max[$1]) max[$1] = t
		if ($NF > rss) rss = $NF }
	END {
		for (s in max) crit += max[s]
		printf "single run: %.2f s, %d MiB\n", single, srss / 1024
		printf "pipeline, one machine: %.2f s (%.2fx the single run); critical path with a machine per task: %.2f s (%.2fx); largest task %d MiB (%.2fx the single run)\n",
			sum, sum / single, crit, crit / single, rss / 1024, rss / srss
	}' "$OUT/times"
echo "intermediate bytes in all: $(du -sb "$W" | cut -f1) (inputs $BYTES)"
for f in totals rejects; do
	if cmp -s "$OUT/single-$f.csv" "$OUT/$f.csv"; then
		echo "$f: identical to the single run's"
	else
		echo "bench-shard: $f DIFFER from the single run's ($OUT/single-$f.csv, $OUT/$f.csv)" >&2
		exit 1
	fi
done
rm -rf "$W"
