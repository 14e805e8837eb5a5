#!/bin/sh
# selftest.sh - check ref_rate.py (or, with BIN=..., cdrate) against
# hand-worked cases.
#
# Each tests/ref/cases/NAME/ holds tariff/, cdr inputs, `args` (the rest of
# the command line, paths relative to the case directory), optionally
# `stdin` (fed to the run, for a "-" input), and expected/ with totals.csv
# (byte for byte), rejects.txt and itemize.txt (compared after sorting, in
# the columns they were worked in: old_shape.py projects the CSV files onto
# them; compare.sh holds the other columns to the reference). Every expected figure was worked out by hand; the
# derivations are in each case's NOTES. A case with expected/exit must be
# refused instead: that exit status, and stderr holding expected/message.
set -u
here=$(cd "$(dirname "$0")" && pwd)
ref="$here/ref_rate.py"
# BIN=build/cdrate checks the C program against the same hand-worked cases.
if [ -n "${BIN:-}" ]; then
	run="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN") rate"
else
	run="python3 $ref"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
for case in "$here"/cases/*/; do
	name=$(basename "$case")
	out="$tmp/$name"
	mkdir -p "$out"
	stdin=/dev/null
	[ -f "$case/stdin" ] && stdin="$case/stdin"
	# shellcheck disable=SC2046
	(cd "$case" && $run --tariff tariff $(cat args) \
		--out "$out/totals.csv" --rejects "$out/rejects.txt" \
		--itemize "$out/itemize.txt" <"$stdin" 2>"$out/stderr")
	rc=$?
	if [ -f "$case/expected/exit" ]; then
		# a case that must be refused: exit status and message only
		want=$(cat "$case/expected/exit")
		# The wording is the reference's own; cdrate is held to the
		# exit status here and to its messages in tests/e2e.
		if [ "$rc" = "$want" ] && { [ -n "${BIN:-}" ] ||
			grep -q -F -f "$case/expected/message" "$out/stderr"; }; then
			pass=$((pass + 1))
			echo "ok   $name (refused: $(cat "$out/stderr"))"
		else
			echo "FAIL $name: exit $rc (want $want)"
			cat "$out/stderr"
			fail=$((fail + 1))
		fi
		continue
	fi
	if [ $rc -ne 0 ]; then
		echo "FAIL $name: ref_rate.py exited $rc"
		cat "$out/stderr"
		fail=$((fail + 1))
		continue
	fi
	ok=1
	if ! cmp -s "$case/expected/totals.csv" "$out/totals.csv"; then
		echo "FAIL $name: totals.csv"
		diff "$case/expected/totals.csv" "$out/totals.csv"
		ok=0
	fi
	for f in rejects.txt itemize.txt; do
		LC_ALL=C sort "$case/expected/$f" >"$out/$f.want"
		python3 "$here/old_shape.py" "${f%.txt}" "$out/$f" | LC_ALL=C sort >"$out/$f.got"
		if ! cmp -s "$out/$f.want" "$out/$f.got"; then
			echo "FAIL $name: $f"
			diff "$out/$f.want" "$out/$f.got"
			ok=0
		fi
	done
	if [ $ok = 1 ]; then
		pass=$((pass + 1))
		echo "ok   $name"
	else
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
