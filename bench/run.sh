#!/bin/sh
# make bench / make bench-quick: generate (or reuse) seeded data, measure
# the floor (a newline-counting pass over the same bytes) and cdrate in the
# same run, and report records/s, MB/s and cdrate's time as a ratio to the
# floor. Absolute times drift on shared machines; the ratio is what CI
# guards (bench-quick fails when it passes bench/quick-threshold).
#
# usage: bench/run.sh BUILD_DIR [quick]
# env:   BENCH_DIR (/var/tmp/cdrate-bench), BENCH_RECORDS, BENCH_SUBS,
#        BENCH_EXTRA=0 (the two months only), BENCH_CALLGRIND=0 (no valgrind)
set -eu
B=$1
MODE=${2:-full}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
LIBS=$(pkg-config --libs liburing libxxhash libzstd libisal 2>/dev/null ||
	echo -luring -lxxhash -lzstd -lisal)
if [ "$MODE" = quick ]; then
	N=${BENCH_RECORDS:-1000000}; S=${BENCH_SUBS:-100000}
else
	N=${BENCH_RECORDS:-10000000}; S=${BENCH_SUBS:-1000000}
fi
D=${BENCH_DIR:-/var/tmp/cdrate-bench}
mkdir -p "$B/bench" "$D"
FL="-std=c11 -D_GNU_SOURCE -O2"
$CC $FL -o "$B/bench/gen" "$ROOT/bench/gen.c"
$CC $FL -o "$B/bench/floor" "$ROOT/bench/floor.c"
$CC $FL -o "$B/bench/inflate" "$ROOT/bench/inflate.c" $(pkg-config --libs libisal zlib 2>/dev/null || echo -lisal -lz)
$CC $FL -I"$ROOT/include" -o "$B/bench/loadbench" "$ROOT/bench/loadbench.c" \
	"$B/libcdrate.a" $LIBS -pthread
CDR=$B/cdrate

# gen DIR ARGS...: generate once; the stamp records the arguments.
gen() {
	dir=$1; shift
	if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$*" ]; then
		rm -rf "$dir"
		"$B/bench/gen" --out "$dir" "$@" >/dev/null 2>&1
		echo "$*" >"$dir/.stamp"
	fi
}
now() { date +%s.%N; }
# median of three wall-clock seconds of a command
median3() {
	for i in 1 2 3; do
		t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
		echo "$t0 $t1" | awk '{ printf "%.4f\n", $2 - $1 }'
	done | sort -n | sed -n 2p
}
div() { echo "$1 $2" | awk '{ printf "%.2f", ($2 > 0 ? $1 / $2 : 0) }'; }
rate_cmd() { # rate_cmd DATA THREADS [MORE OPTIONS]
	rd=$1 rt=$2; shift 2
	"$CDR" rate --tariff "$rd/tariff" --period 2026-10 --threads "$rt" \
		--out "$D/out.csv" "$@" "$rd/cdrs"
}

DATA=$D/n$N-s$S
gen "$DATA" --records "$N" --subscribers "$S"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# measure LABEL DATA: the floor and cdrate on one data set, in this run:
# wall time at 2 and 1 threads (median of 3), records/s, MB/s, the ratio
# to the floor, the stages of one more run, and peak RSS. Sets T2, FLOOR.
measure() {
	label=$1; data=$2
	BYTES=$(cat "$data"/cdrs/* | wc -c)
	echo "== $label: $N records, $S subscribers, $BYTES bytes"
	FLOOR=$(median3 "$B/bench/floor" "$data/cdrs")
	echo "floor: $FLOOR s (newline count, read(2)), $(div "$BYTES" "$(echo "$FLOOR" | awk '{print $1 * 1e6}')") MB/s"
	for th in 2 1; do
		T=$(median3 rate_cmd "$data" $th)
		echo "rate, $th thread(s): $T s wall, $(div "$N" "$T") records/s, $(div "$BYTES" "$(echo "$T" | awk '{print $1 * 1e6}')") MB/s, $(div "$T" "$FLOOR")x floor"
		[ $th = 2 ] && T2=$T
	done
	if [ "$MODE" != quick ]; then
		# With the tariff's compiled image (README, "A compiled
		# tariff"), written by a first run: what a nightly job that
		# keeps its cache pays for the tariff.
		img=$D/$(basename "$data").img
		rm -f "$img"
		rate_cmd "$data" 2 --tariff-cache "$img" >/dev/null 2>&1
		T=$(median3 rate_cmd "$data" 2 --tariff-cache "$img")
		echo "rate, 2 threads, --tariff-cache: $T s wall, $(div "$N" "$T") records/s, $(div "$T" "$FLOOR")x floor"
		rate_cmd "$data" 2 --tariff-cache "$img" 2>&1 >/dev/null | sed -n 's/^cdrate: done in /stages (2 threads, --tariff-cache): done in /p'
		T2C=$T
	fi
	# Per stage, from cdrate's own summary of one more run.
	rate_cmd "$data" 2 2>&1 >/dev/null | sed -n 's/^cdrate: done in /stages (2 threads): done in /p'
	PASS=$(rate_cmd "$data" 2 2>&1 >/dev/null | sed -n 's/.*read+parse+rate \([0-9.]*\) s.*/\1/p')
	echo "rating pass alone (2 threads): $(div "$N" "$PASS") records/s"
	if command -v /usr/bin/time >/dev/null 2>&1; then
		RSS=$(/usr/bin/time -f %M "$CDR" rate --tariff "$data/tariff" --period 2026-10 \
			--out "$D/out.csv" "$data/cdrs" 2>&1 >/dev/null | tail -1)
		echo "peak RSS (2 threads): $((RSS / 1024)) MiB"
	fi
}

# callgrind_per_record DATA: instructions per record on a 1M-record slice
# (the first 1M lines, 1 thread, --io read) less a run over an empty file
# with the same tariff, which the load cannot move (BENCH_CALLGRIND=0
# skips it: two valgrind runs of the tariff load take minutes).
callgrind_per_record() {
	data=$1
	shift # the rest: more options of rate (the breakdown's)
	command -v valgrind >/dev/null || { echo "callgrind: valgrind not installed"; return 0; }
	[ "${BENCH_CALLGRIND:-1}" = 0 ] && return 0
	sl=$data/slice1m
	if [ "$(cat "$sl/.stamp" 2>/dev/null)" != "$(cat "$data/.stamp")" ]; then
		rm -rf "$sl"; mkdir -p "$sl/cdrs" "$sl/empty"
		cat "$data"/cdrs/* | head -n 1000000 >"$sl/cdrs/slice.csv"
		: >"$sl/empty/empty.csv"
		cp "$data/.stamp" "$sl/.stamp"
	fi
	ir() {
		valgrind --tool=callgrind --callgrind-out-file="$D/callgrind.out" \
			"$CDR" rate --tariff "$data/tariff" --period 2026-10 --threads 1 \
			--io read --out "$D/out-cg.csv" $CG_EXTRA "$1" 2>&1 >/dev/null |
			sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
	}
	CG_EXTRA="$*"
	I1=$(ir "$sl/cdrs"); I0=$(ir "$sl/empty")
	echo "callgrind, 1M-record slice, 1 thread${CG_EXTRA:+, $CG_EXTRA}: $I1 instructions, empty input $I0, $(echo "$I1 $I0" | awk '{ printf "%.0f", ($1 - $2) / 1e6 }') a record"
	CG_EXTRA=
}

measure "plain month (one bundle)" "$DATA"
T2_PLAIN=$T2; FLOOR_PLAIN=$FLOOR; T2C_PLAIN=${T2C:-}
LOAD=$("$B/bench/loadbench" "$DATA/tariff" | cut -d= -f2)

# best_pair DATA: the floor and `rate --threads 2` one after the other,
# five times, and the lowest time of each: a shared machine's load only
# ever adds time, and taking both in turns exposes them to the same load
# (the median of three runs of each, apart, let a 10 ms floor move the
# guarded ratio by half). Prints "FLOOR RATE".
best_pair() {
	for i in 1 2 3 4 5; do
		t0=$(now); "$B/bench/floor" "$1/cdrs" >/dev/null 2>&1
		t1=$(now); rate_cmd "$1" 2 >/dev/null 2>&1
		t2=$(now); echo "$t0 $t1 $t2"
	done | awk '{ f = $2 - $1; r = $3 - $2
		if (NR == 1 || f < fm) fm = f; if (NR == 1 || r < rm) rm = r }
		END { printf "%.4f %.4f\n", fm, rm }'
}

if [ "$MODE" = quick ]; then
	set -- $(best_pair "$DATA")
	RATIO=$(div "$2" "$1")
	echo "best of 5, in turns: floor $1 s, rate (2 threads) $2 s, ${RATIO}x"
	LIMIT=$(cat "$ROOT/bench/quick-threshold")
	if awk -v r="$RATIO" -v l="$LIMIT" 'BEGIN { exit !(r > l) }'; then
		echo "bench-quick: FAIL: rate is ${RATIO}x the floor, above the committed ${LIMIT}x"
		exit 1
	fi
	echo "bench-quick: ok: rate is ${RATIO}x the floor (threshold ${LIMIT}x)"
	exit 0
fi

# The package-heavy month (gen --month packages) the same way, and
# instructions per record on both.
PKG=$D/pkg-n$N-s$S
gen "$PKG" --records "$N" --subscribers "$S" --month packages
measure "package-heavy month (gen --month packages)" "$PKG"
echo "load: package-heavy tariff $("$B/bench/loadbench" "$PKG/tariff" | cut -d= -f2) s"
callgrind_per_record "$DATA"
callgrind_per_record "$PKG"
# --breakdown and --report (issue 12): the plain month again with both, in
# wall time against the run above and in instructions on the same slice;
# the totals must not move.
BDW=$(median3 "$CDR" rate --tariff "$DATA/tariff" --period 2026-10 --threads 2 \
	--out "$D/out-bd.csv" --breakdown "$D/breakdown.csv" --report "$D/report.html" \
	"$DATA/cdrs")
echo "rate --breakdown --report, 2 threads: $BDW s wall, $(div "$BDW" "$T2_PLAIN")x the plain run"
rate_cmd "$DATA" 2 2>/dev/null
cmp -s "$D/out.csv" "$D/out-bd.csv" && echo "breakdown totals: identical" ||
	echo "breakdown totals: DIFFER from the plain run's"
callgrind_per_record "$DATA" --breakdown "$D/breakdown-cg.csv" --report "$D/report-cg.html"
T2=$T2_PLAIN; FLOOR=$FLOOR_PLAIN
BYTES=$(cat "$DATA"/cdrs/* | wc -c)
# BENCH_EXTRA=0: the two months only (no rerate, scaling, compressed or
# Asterisk sections).
if [ "${BENCH_EXTRA:-1}" = 0 ]; then
	echo "load: $S subscribers $LOAD s"
	exit 0
fi

RR=$(median3 "$CDR" rerate --tariff "$DATA/tariff" --new-tariff "$DATA/tariff" \
	--period 2026-10 --out "$D/delta.csv" "$DATA/cdrs")
echo "rerate, 2 threads: $RR s wall, $(div "$RR" "$T2")x a rate run"
"$CDR" rerate --tariff "$DATA/tariff" --new-tariff "$DATA/tariff" --period 2026-10 \
	--out "$D/delta.csv" "$DATA/cdrs" 2>&1 >/dev/null | sed -n 's/^cdrate: done in /rerate stages: done in /p'
# Both tariffs with their images (the new one a copy of the old, with its
# own), against rate with its image: what a re-rating job that keeps its
# caches pays.
if [ -n "$T2C_PLAIN" ]; then
	rm -rf "$D/tariff-new"; cp -r "$DATA/tariff" "$D/tariff-new"
	rrc() {
		"$CDR" rerate --tariff "$DATA/tariff" --tariff-cache "$D/$(basename "$DATA").img" \
			--new-tariff "$D/tariff-new" --new-tariff-cache "$D/tariff-new.img" \
			--period 2026-10 --out "$D/delta.csv" "$DATA/cdrs"
	}
	rm -f "$D/tariff-new.img"; rrc >/dev/null 2>&1
	RRC=$(median3 rrc)
	echo "rerate, 2 threads, both --tariff-cache: $RRC s wall, $(div "$RRC" "$T2C_PLAIN")x a rate run with its cache"
fi

SMALL=$D/n$N-s10000
gen "$SMALL" --records "$N" --subscribers 10000
T=$(median3 rate_cmd "$SMALL" 2)
echo "scaling: 10k subscribers $(div "$N" "$T") records/s vs $S subscribers $(div "$N" "$T2") records/s (2 threads, wall)"

# Compressed inputs: the same records as one gzip file and one zstd file
# (made once, beside the data), each against its own floor in this run:
# decompressing into a newline count (igzip for gzip when installed, the
# library cdrate uses; gzip -dc too), so the ratio says what cdrate adds
# to the decompression itself.
if command -v gzip >/dev/null && command -v zstd >/dev/null; then
	ZD=$DATA/compressed
	if [ "$(cat "$ZD/.stamp" 2>/dev/null)" != "$(cat "$DATA/.stamp")" ]; then
		rm -rf "$ZD"; mkdir -p "$ZD"
		cat "$DATA"/cdrs/* | gzip -6 >"$ZD/all.csv.gz"
		cat "$DATA"/cdrs/* | zstd -q -3 >"$ZD/all.csv.zst"
		cp "$DATA/.stamp" "$ZD/.stamp"
	fi
	zrate() { "$CDR" rate --tariff "$DATA/tariff" --period 2026-10 --threads 2 \
		--out "$D/out.csv" "$1"; }
	for z in gz zst; do
		f=$ZD/all.csv.$z
		if [ $z = zst ]; then
			FZ=$(median3 sh -c 'zstd -dc "$1" | wc -l' sh "$f"); FN="zstd -dc | wc -l"
		elif command -v igzip >/dev/null; then
			FZ=$(median3 sh -c 'igzip -dc "$1" | wc -l' sh "$f"); FN="igzip -dc | wc -l"
			echo "floor, gzip -dc | wc -l: $(median3 sh -c 'gzip -dc "$1" | wc -l' sh "$f") s"
		else
			FZ=$(median3 sh -c 'gzip -dc "$1" | wc -l' sh "$f"); FN="gzip -dc | wc -l"
		fi
		TZ=$(median3 zrate "$f")
		echo "floor, $FN: $FZ s ($(wc -c <"$f") compressed bytes)"
		echo "rate, $z, 2 threads: $TZ s wall, $(div "$N" "$TZ") records/s, $(div "$TZ" "$FZ")x its floor, $(div "$TZ" "$T2")x the plain run"
		zrate "$f" 2>&1 >/dev/null | sed -n "s/^cdrate: stages: /stages ($z): /p"
	done
	# Why ISA-L: both libraries inflating the same file (bench/inflate.c).
	echo "gzip library, inflate alone: ISA-L $(median3 "$B/bench/inflate" isal "$ZD/all.csv.gz") s, zlib $(median3 "$B/bench/inflate" zlib "$ZD/all.csv.gz") s"
fi

# Asterisk cdr_csv (SPEC 11): the same records with every voice record
# written as the line Asterisk's cdr_csv writes for it (18 fields, about
# 258 bytes against 64 native: every field quoted, with the channel,
# application and caller-id fields a real Master.csv has; answer stamp =
# start, billsec = duration, duration = billsec + 4 so the right column is
# read) and the
# sms and data records left native in files of their own, since a switch
# writes calls only. So the run rates all N records and its totals must be
# the native run's byte for byte (checked below). The floor is `wc -l` of
# the same files, and bench/floor over them, in this run. Made once, beside
# the data, by awk (no C converter to keep in step with gen.c).
AD=$DATA/asterisk
if [ "$(cat "$AD/.stamp" 2>/dev/null)" != "$(cat "$DATA/.stamp")" ]; then
	rm -rf "$AD"; mkdir -p "$AD"
	for f in "$DATA"/cdrs/*; do
		b=$(basename "$f" .csv)
		awk -F, -v ast="$AD/$b-Master.csv" -v nat="$AD/$b-sms-data.csv" '
		$3 == "voice" {
			printf "\"\",\"%s\",\"%s\",\"from-internal\",\"<%s>\",\"SIP/%s-%s\",\"SIP/trunk\",\"Dial\",\"SIP/trunk/%s\",\"%s\",\"%s\",\"%s\",%d,%s,\"ANSWERED\",\"DOCUMENTATION\",\"1791000000.%s\",\"\"\n",
				$2, $5, $2, $2, $1, $5, $4, $4, $4, $6 + 4, $6, $1 > ast
			next
		}
		{ print > nat }' "$f"
	done
	cp "$DATA/.stamp" "$AD/.stamp"
fi
ABYTES=$(cat "$AD"/*.csv | wc -c)
AVOICE=$(cat "$AD"/*-Master.csv | wc -l)
arate() { "$CDR" rate --tariff "$DATA/tariff" --period 2026-10 --threads 2 \
	--out "$D/out-asterisk.csv" "$AD"; }
FA=$(median3 sh -c 'wc -l "$1"/*.csv' sh "$AD")
FB=$(median3 "$B/bench/floor" "$AD")
TA=$(median3 arate)
echo "asterisk data: $AVOICE voice records as cdr_csv lines ($(div "$(cat "$AD"/*-Master.csv | wc -c)" "$AVOICE") bytes each), the rest native; $ABYTES bytes"
echo "floor, asterisk files: wc -l $FA s, bench/floor $FB s"
echo "rate, asterisk, 2 threads: $TA s wall, $(div "$N" "$TA") records/s, $(div "$TA" "$FA")x wc -l, $(div "$TA" "$FB")x bench/floor, $(div "$TA" "$T2")x the native run per record"
arate 2>&1 >/dev/null | sed -n 's/^cdrate: done in /stages (asterisk): done in /p'
rate_cmd "$DATA" 2 2>/dev/null
if cmp -s "$D/out.csv" "$D/out-asterisk.csv"; then
	echo "asterisk totals: identical to the native run's"
else
	echo "asterisk totals: DIFFER from the native run's"
fi
# The Asterisk files gzipped and zstd-compressed, file by file (a file
# keeps one format), each against decompressing the same files into a
# newline count in this run; ratios to the plain Asterisk run too.
if command -v gzip >/dev/null && command -v zstd >/dev/null; then
	AZ=$AD/compressed
	if [ "$(cat "$AZ/.stamp" 2>/dev/null)" != "$(cat "$AD/.stamp")" ]; then
		rm -rf "$AZ"; mkdir -p "$AZ/gz" "$AZ/zst"
		for f in "$AD"/*.csv; do
			gzip -6 -c "$f" >"$AZ/gz/$(basename "$f").gz"
			zstd -q -3 -c "$f" >"$AZ/zst/$(basename "$f").zst"
		done
		cp "$AD/.stamp" "$AZ/.stamp"
	fi
	GZ=gzip; command -v igzip >/dev/null && GZ=igzip
	for z in gz zst; do
		if [ $z = zst ]; then dc=zstd; else dc=$GZ; fi
		FZ=$(median3 sh -c 'd=$1; shift; for f; do $d -dc "$f"; done | wc -l' sh "$dc" "$AZ/$z"/*)
		TZ=$(median3 "$CDR" rate --tariff "$DATA/tariff" --period 2026-10 \
			--threads 2 --out "$D/out-asterisk-$z.csv" "$AZ/$z")
		echo "rate, asterisk $z ($(cat "$AZ/$z"/* | wc -c) bytes), 2 threads: $TZ s wall, $(div "$N" "$TZ") records/s, $(div "$TZ" "$FZ")x $dc -dc | wc -l ($FZ s), $(div "$TZ" "$TA")x the plain asterisk run"
		cmp -s "$D/out.csv" "$D/out-asterisk-$z.csv" ||
			echo "asterisk $z totals: DIFFER from the native run's"
	done
fi

ZONES=$D/zones200k
gen "$ZONES" --records 1000 --subscribers 1000 --prefixes 200000
echo "load: $S subscribers $LOAD s; 200k-prefix zone table $("$B/bench/loadbench" "$ZONES/tariff" | cut -d= -f2) s"
