#!/bin/sh
# compare.sh - differential test of a cdrate binary against ref_rate.py.
#
#   tests/ref/compare.sh BIN SEED_FROM SEED_TO
#
# For each seed: gen_random.py writes a random tariff and CDRs, ref_rate.py
# and `BIN rate` rate them, and the outputs must agree byte for byte:
# totals, rejects and itemize (both sorted, with their details; README).
# The period is $PERIOD when set, else 2026-10 for even seeds and 2026-03
# (Berlin and New York spring DST inside the period) for odd ones.
# On the first mismatch it prints the seed, a diff and the kept directory,
# and exits 1. Exit 2 when the reference or the generator itself fails.
set -u
if [ $# -ne 3 ]; then
	echo "usage: $0 BIN SEED_FROM SEED_TO" >&2
	exit 2
fi
bin=$1
from=$2
to=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cdrate-compare.XXXXXX")
n=0

mismatch() { # seed what period dir
	echo "MISMATCH seed $1 (period $3): $2"
	echo "inputs kept in $4; reproduce with:"
	echo "  python3 $here/gen_random.py --seed $1 --period $3 --out DIR"
	echo "  $bin rate --tariff DIR/tariff --period $3 --out T --rejects R --itemize I DIR/cdrs"
	echo "$n passed, 1 failed"
	exit 1
}

seed=$from
while [ "$seed" -le "$to" ]; do
	if [ -n "${PERIOD:-}" ]; then
		period=$PERIOD
	elif [ $((seed % 2)) -eq 0 ]; then
		period=2026-10
	else
		period=2026-03
	fi
	d="$work/seed-$seed"
	if ! python3 "$here/gen_random.py" --seed "$seed" --period "$period" \
		--out "$d"; then
		echo "generator failed on seed $seed" >&2
		exit 2
	fi
	if ! python3 "$here/ref_rate.py" --tariff "$d/tariff" --period "$period" \
		--out "$d/ref.totals" --rejects "$d/ref.rejects" \
		--itemize "$d/ref.itemize" "$d/cdrs" 2>"$d/ref.stderr"; then
		echo "reference failed on seed $seed (inputs in $d):" >&2
		cat "$d/ref.stderr" >&2
		exit 2
	fi
	"$bin" rate --tariff "$d/tariff" --period "$period" \
		--out "$d/bin.totals" --rejects "$d/bin.rejects" \
		--itemize "$d/bin.itemize" "$d/cdrs" 2>"$d/bin.stderr"
	rc=$?
	if [ $rc -ne 0 ]; then
		tail -n 20 "$d/bin.stderr"
		mismatch "$seed" "$bin exited $rc" "$period" "$d"
	fi
	if ! cmp -s "$d/ref.totals" "$d/bin.totals"; then
		diff -u "$d/ref.totals" "$d/bin.totals" | head -n 60
		mismatch "$seed" "totals differ (- reference, + $bin)" "$period" "$d"
	fi
	for f in rejects itemize; do
		if ! cmp -s "$d/ref.$f" "$d/bin.$f"; then
			diff -u "$d/ref.$f" "$d/bin.$f" | head -n 60
			mismatch "$seed" "$f differ (- reference, + $bin)" "$period" "$d"
		fi
	done
	rm -rf "$d"
	n=$((n + 1))
	seed=$((seed + 1))
done
rmdir "$work" 2>/dev/null
echo "$n passed, 0 failed"
