#!/bin/sh
# Invariance across formats and compression (issue 8, Tests): the demo
# month's records, written natively (fixtures/demo/cdrs), as Asterisk and
# as FreeSWITCH lines (fixtures/switch, see its README), each plain,
# gzipped and zstd-compressed, with files in either order and lines
# shuffled, at 1-4 threads through both I/O paths, give
# fixtures/demo/expected/totals.csv byte for byte. Totals are the one
# output every form shares: itemize ids differ by format on purpose, and
# the rejects differ by the lines each form adds or leaves out.
#
# The compressed forms are made here, in the scratch directory, so no
# binary fixture is committed; without gzip or zstd those forms are
# skipped, and said so.
#
# usage: tests/e2e/invariance.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=inv
. "$(dirname "$0")/lib.sh"

# shuffle SEED FILE: FILE's lines in a seeded random order, a native
# header (a first line starting `id,`) kept first, since only the first
# line may be one. Line ends (the Asterisk file's CRLF) are kept.
shuffle() {
	awk -v s="$1" 'BEGIN { srand(s) }
		NR == 1 && /^id,/ { print "0\t" $0; next }
		{ printf "1%.8f\t%s\n", rand(), $0 }' "$2" |
		sort -k1,1 | cut -f2-
}

# ---- the forms: plain, then shuffled copies --------------------------
# $W/plain/FORM holds each form as its own files; $W/shuf/FORM the same
# files with their lines shuffled (a different seed per form and file).
mkdir -p "$W/plain" "$W/shuf"
cp -r "$DEMO/cdrs" "$W/plain/native"
cp -r "$SW/asterisk" "$W/plain/asterisk"
cp -r "$SW/freeswitch" "$W/plain/freeswitch"
seed=1
for form in native asterisk freeswitch; do
	mkdir "$W/shuf/$form"
	for f in "$W/plain/$form"/*; do
		shuffle $seed "$f" >"$W/shuf/$form/$(basename "$f")"
		seed=$((seed + 1))
	done
done

# Compressed copies of both, when the tools are here.
comps=plain
if command -v gzip >/dev/null && command -v zstd >/dev/null; then
	comps="plain gz zst"
	for o in plain shuf; do
		for form in native asterisk freeswitch; do
			mkdir -p "$W/$o.gz/$form" "$W/$o.zst/$form"
			for f in "$W/$o/$form"/*; do
				b=$(basename "$f")
				gzip -c "$f" >"$W/$o.gz/$form/$b.gz"
				zstd -q -c "$f" >"$W/$o.zst/$form/$b.zst"
			done
		done
	done
else
	echo "invariance: gzip or zstd not installed, compressed forms skipped"
fi

# ---- the matrix ------------------------------------------------------
# Each form, each compression, lines as written or shuffled, files named
# forwards or backwards, 1-4 threads, io_uring and read(2).
for form in native asterisk freeswitch; do
	for c in $comps; do
		for o in plain shuf; do
			d=$W/$o
			[ "$c" = plain ] || d=$W/$o.$c
			set -- "$d/$form"/*
			rev=""
			for f in "$@"; do rev="$f $rev"; done
			for io in uring read; do
				for th in 1 2 3 4; do
					t=$W/t.$form.$c.$o.$io.$th
					rate_demo --threads $th --io $io --out "$t" "$@" 2>"$W/err"
					same "$t" "$DEMO/expected/totals.csv" \
						"$form, $c, $o lines, $th threads, io $io"
					# shellcheck disable=SC2086
					rate_demo --threads $th --io $io --out "$t.rev" $rev 2>/dev/null
					same "$t.rev" "$DEMO/expected/totals.csv" \
						"$form, $c, $o lines, files reversed, $th threads, io $io"
				done
			done
		done
	done
done

# ---- mixed: one run whose files differ in format and compression -----
# The voice records from Asterisk (zstd), the sms and data as native
# (gzip) from the FreeSWITCH directory, shuffled: still the demo.
if [ "$comps" != plain ]; then
	for io in uring read; do
		for th in 1 2 3 4; do
			rate_demo --threads $th --io $io --out "$W/t.mix.$io.$th" \
				"$W/shuf.zst/asterisk/1-Master.csv.zst" \
				"$W/shuf.gz/freeswitch/2-sms-data.csv.gz" 2>"$W/err"
			same "$W/t.mix.$io.$th" "$DEMO/expected/totals.csv" \
				"asterisk zstd with native gzip, $th threads, io $io"
		done
	done
	grep -q "files by compression: 1 gzip, 1 zstd" "$W/err" && ok ||
		bad "mixed run counts its files per compression"
fi

# ---- many records, with duplicates: the stages after the pass that cut
# their work in two (duplicate candidates by partition, the allowance
# log's seal by rows) give one thread's bytes. 80 000 lines from two of
# the demo's subscribers with packages (voice100 from the 5th, data300
# and idle1g), every 97th id repeated with another quantity (a
# duplicate: the bytewise smallest line is kept).
awk 'BEGIN {
	for (i = 0; i < 80000; i++) {
		d = sprintf("2026-10-%02d %02d:%02d:00", 5 + i % 24, i % 24, i % 60)
		for (k = 0; k < 1 + (i % 97 == 0); k++)
			if (i % 2)
				printf "b%d,8613800000002,voice,%s,0571876%05d,%d,0\n", i, d, i % 100000, 1 + k + i % 900
			else
				printf "b%d,8613800000001,data,%s,cmnet,0,%d\n", i, d, 1000 + k + i % 90000
	}
}' >"$W/big.csv"
for th in 1 2; do
	rate_demo --threads $th --out "$W/big.t$th" --rejects "$W/big.r$th" \
		--itemize "$W/big.i$th" "$W/big.csv" 2>"$W/big.e$th"
done
same "$W/big.t2" "$W/big.t1" "80k records with duplicates: totals, 2 threads as 1"
same "$W/big.r2" "$W/big.r1" "80k records with duplicates: rejects, 2 threads as 1"
same "$W/big.i2" "$W/big.i1" "80k records with duplicates: itemize, 2 threads as 1"
n=$(grep -c ',duplicate,' "$W/big.r1")
[ "$n" -eq 825 ] && ok || bad "80k records: $n duplicate rejects, want 825"

summary
