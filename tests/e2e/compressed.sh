# Sourced by tests/e2e/run.sh (its W, DEMO, BIN and helpers): gzip and zstd
# inputs (SPEC 11, "Compressed files"). Whatever carries the bytes - a file,
# a directory entry, standard input, a FIFO; one gzip member or several,
# one zstd frame or several; mixed with plain files - the totals, rejects
# and itemize lines are those of the plain demo, and duplicates are
# resolved exactly as in the plain run (their lines found again by decoding
# a compressed file once more, or a stream's compressed bytes kept in the
# spool). Corrupt or truncated data stops the run naming the file.
# Skipped, and said so, when gzip or zstd is not installed.
# Run on its own it would write under / (W unset): refuse.
if [ -z "${W:-}" ] || [ ! -d "$W" ]; then
	echo "tests/e2e/compressed.sh: source it from tests/e2e/run.sh" >&2
	exit 2
fi
if command -v gzip >/dev/null && command -v zstd >/dev/null; then
Z=$W/z
mkdir "$Z" "$Z/gz" "$Z/zst" "$Z/mix"
for f in "$DEMO"/cdrs/*; do
	b=$(basename "$f")
	gzip -c "$f" >"$Z/gz/$b.gz"
	zstd -q -c "$f" >"$Z/zst/$b.zst"
done
# The magic decides, not the name: gzip under .csv, zstd under .gz.
cp "$DEMO/cdrs/01-fixed-switch.csv" "$Z/mix/01.csv"
gzip -c "$DEMO/cdrs/02-mobile-switch.csv" >"$Z/mix/02.csv"
zstd -q -c "$DEMO/cdrs/03-resend.csv" >"$Z/mix/03.gz"

# z_check TAG WHAT [lines]: the demo's totals, rejects and itemize,
# exactly; with `lines` (the demo's files, each compressed alone) the
# rejects' line numbers too, counted in the decoded bytes.
z_check() {
	same "$Z/t.$1" "$DEMO/expected/totals.csv" "totals, $2"
	rej_same "$Z/r.$1" "$DEMO/expected/rejects.csv" "rejects, $2"
	if [ "${3:-}" = lines ]; then
		csv_cols "$Z/r.$1" line reason record >"$Z/r.$1.l"
		csv_cols "$DEMO/expected/rejects.csv" line reason record | cmp -s - "$Z/r.$1.l" && ok ||
			bad "rejects' lines, $2"
	fi
	same "$Z/i.$1" "$DEMO/expected/itemize.csv" "itemize, $2"
}
z_rate() { # z_rate TAG INPUT...
	tag=$1; shift
	rate_demo --out "$Z/t.$tag" --rejects "$Z/r.$tag" --itemize "$Z/i.$tag" "$@" 2>"$W/err"
}

for io in uring read; do
	for th in 1 2 3 4; do
		for k in gz zst mix; do
			z_rate "$k.$io.$th" --threads $th --io $io "$Z/$k"
			z_check "$k.$io.$th" "$k inputs, $th threads, io $io" lines
		done
	done
done
z_rate cnt "$Z/gz" "$Z/zst/03-resend.csv.zst" "$DEMO/cdrs/01-fixed-switch.csv" \
	"$Z/mix/01.csv"
grep -q "files by compression: 2 plain, 3 gzip, 1 zstd" "$W/err" && ok || bad "summary counts files per compression"
grep -q "records read, .* rated, .* rejected" "$W/err" && ok || bad "summary line kept"

# Every record in one headerless stream, cut in two and compressed twice:
# concatenated gzip members and a two-frame zstd file read through.
for f in "$DEMO"/cdrs/*; do awk 'NR > 1 || !/^id,/' "$f"; done >"$Z/all.csv"
head -n 30 "$Z/all.csv" >"$Z/a.csv"
tail -n +31 "$Z/all.csv" >"$Z/b.csv"
gzip -c "$Z/a.csv" >"$Z/a.gz"; gzip -c "$Z/b.csv" >"$Z/b.gz"
cat "$Z/a.gz" "$Z/b.gz" >"$Z/ab.gz"
zstd -q -c "$Z/a.csv" >"$Z/ab.zst"; zstd -q -c "$Z/b.csv" >>"$Z/ab.zst"
gzip -c "$Z/all.csv" >"$Z/all.gz"
for io in uring read; do
	for th in 1 4; do
		z_rate "ab.gz.$io.$th" --threads $th --io $io "$Z/ab.gz"
		z_check "ab.gz.$io.$th" "concatenated gzip members, $th threads, io $io"
		z_rate "ab.zst.$io.$th" --threads $th --io $io "$Z/ab.zst"
		z_check "ab.zst.$io.$th" "two zstd frames, $th threads, io $io"
	done
done
# Standard input and a FIFO, at 1 and 3 threads and both I/O paths.
for io in uring read; do
	for th in 1 3; do
		z_rate "stdin.gz.$io.$th" --threads $th --io $io - <"$Z/ab.gz"
		z_check "stdin.gz.$io.$th" "gzip on standard input, $th threads, io $io"
		cat "$Z/ab.zst" | z_rate "pipe.zst.$io.$th" --threads $th --io $io -
		z_check "pipe.zst.$io.$th" "zstd through a pipe, $th threads, io $io"
	done
done
if mkfifo "$Z/in.fifo" 2>/dev/null; then
	for io in uring read; do
		for k in ab.gz ab.zst; do
			cat "$Z/$k" >"$Z/in.fifo" &
			z_rate "fifo.$k.$io" --threads 2 --io $io "$Z/in.fifo"
			wait
			z_check "fifo.$k.$io" "$k through a FIFO, io $io"
		done
	done
	# A FIFO, a plain file and standard input in one run: the streams
	# share one spool, decoded or not.
	cat "$Z/mix/02.csv" >"$Z/in.fifo" &
	z_rate fifo.mix "$DEMO/cdrs/01-fixed-switch.csv" "$Z/in.fifo" - <"$Z/zst/03-resend.csv.zst"
	wait
	z_check fifo.mix "plain file, gzip FIFO and zstd standard input"
	grep -q "files by compression: 1 plain, 1 gzip, 1 zstd" "$W/err" && ok || bad "FIFO and stdin counted by compression"
fi

# More than one 4 MiB chunk of decoded lines, with duplicates far apart in
# and across compressed inputs and a plain one: the lines found again by
# decoding once more are at decoded offsets, past many 1 MiB windows. 120k lines (about 8 MB); every 1000th
# id comes again at the end with another duration (the bytewise smaller
# line wins), and again in a plain file.
awk 'BEGIN { for (i = 0; i < 120000; i++)
	printf "b%d,057188000001,voice,2026-10-08 09:15:00,057187654321,%d,0\n", i, 60 + i % 7
	for (i = 0; i < 120000; i += 1000)
	printf "b%d,057188000001,voice,2026-10-08 09:15:00,057187654321,%d,0\n", i, 30 + i % 11 }' >"$Z/big.csv"
awk 'NR % 2000 == 1' "$Z/big.csv" >"$Z/extra.csv"
rate_demo --out "$Z/big.t" --rejects "$Z/big.r" --itemize "$Z/big.i" "$Z/big.csv" "$Z/extra.csv" 2>/dev/null
csv_cols "$Z/big.r" line reason record >"$Z/big.r.l"
n=$(csv_cols "$Z/big.r" reason | grep -c '^duplicate$')
[ "$n" -ge 120 ] && ok || bad "large duplicate case has duplicates ($n)"
gzip -c "$Z/big.csv" >"$Z/big.gz"
zstd -q -c "$Z/big.csv" >"$Z/big.zst"
for io in uring read; do
	for th in 1 2 4; do
		for k in gz zst; do
			rate_demo --threads $th --io $io --out "$Z/bt" --rejects "$Z/br" --itemize "$Z/bi" \
				"$Z/big.$k" "$Z/extra.csv" 2>/dev/null
			same "$Z/bt" "$Z/big.t" "totals, 8 MB $k with duplicates, $th threads, io $io"
			csv_cols "$Z/br" line reason record >"$Z/br.l"
			same "$Z/br.l" "$Z/big.r.l" "rejects and their lines, 8 MB $k with duplicates, $th threads, io $io"
			same "$Z/bi" "$Z/big.i" "itemize, 8 MB $k with duplicates, $th threads, io $io"
		done
	done
done
gzip -c "$Z/extra.csv" | rate_demo --out "$Z/bt" --rejects "$Z/br" --itemize "$Z/bi" "$Z/big.zst" - 2>/dev/null
same "$Z/bt" "$Z/big.t" "totals, 8 MB zstd file and gzip standard input"
# `-` sorts before the path: the same rejects, in another order.
csv_cols "$Z/br" line reason record | sort >"$Z/br.l"
sort "$Z/big.r.l" >"$Z/big.r.ls"
same "$Z/br.l" "$Z/big.r.ls" "rejects and their lines, 8 MB zstd file and gzip standard input"

# A compressed file replaced after it was read (a FIFO read next gates the
# run): its duplicates are found again by decoding it once more from its
# path, which no longer names the bytes that were read, so the run stops
# naming it and writes nothing, as it does for a plain file. One without
# duplicates is never decoded again: replacing it changes nothing.
if mkfifo "$Z/gate.fifo" 2>/dev/null; then
	for r in 60 61; do for i in 1 2 3 4 5; do cdr_line d$i $r; done; done >"$Z/chg.csv"
	gzip -c "$Z/chg.csv" >"$Z/chg.gz"
	sed 's/,6\([01]\),0$/,9\1,0/' "$Z/chg.csv" | gzip >"$Z/chg.new"
	rate_demo --out "$Z/chg.t" --rejects "$Z/chg.r" "$Z/chg.gz" "$Z/gate.fifo" 2>"$W/err" &
	pid=$!
	timeout 10 sh -c 'exec 3>"$1"; mv "$2" "$3"' sh "$Z/gate.fifo" "$Z/chg.new" "$Z/chg.gz"
	wait $pid
	st=$?
	[ $st -eq 1 ] && [ ! -e "$Z/chg.t" ] && [ ! -e "$Z/chg.r" ] && ok ||
		bad "compressed input replaced after it was read: exit $st"
	err_has "chg.gz: changed while being rated" "replaced compressed input named"
	# No duplicates: d1..d5 once.
	head -n 5 "$Z/chg.csv" >"$Z/once.csv"
	rate_demo --out "$Z/once.want" "$Z/once.csv" 2>/dev/null
	zstd -q -c "$Z/once.csv" >"$Z/once.zst"
	zstd -q -c "$Z/chg.csv" >"$Z/once.new"
	rate_demo --out "$Z/once.t" "$Z/once.zst" "$Z/gate.fifo" 2>"$W/err" &
	pid=$!
	timeout 10 sh -c 'exec 3>"$1"; mv "$2" "$3"' sh "$Z/gate.fifo" "$Z/once.new" "$Z/once.zst"
	wait $pid
	st=$?
	[ $st -eq 0 ] && ok || bad "compressed input without duplicates replaced after it was read: exit $st"
	same "$Z/once.t" "$Z/once.want" "totals of a compressed input without duplicates replaced after it was read"
fi

# Corrupt and truncated data: exit 1 naming the input, nothing written
# (no totals, rejects or itemize, no temporaries). A byte flipped in the
# middle of the large files lands in compressed data; the demo file's
# middle is checked too (CRC-32 or a bad block).
flip() { # flip FILE OUT: OUT is FILE with its middle byte inverted
	sz=$(wc -c <"$1")
	cp "$1" "$2"
	b=$(od -An -tu1 -j $((sz / 2)) -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((255 - b)))" |
		dd of="$2" bs=1 seek=$((sz / 2)) conv=notrunc 2>/dev/null
}
cut_end() { # cut_end FILE OUT N: OUT is FILE without its last N bytes
	sz=$(wc -c <"$1")
	head -c $((sz - $3)) "$1" >"$2"
}
flip "$Z/big.gz" "$Z/bad1.gz"
flip "$Z/gz/02-mobile-switch.csv.gz" "$Z/bad2.gz"
cut_end "$Z/big.gz" "$Z/bad3.gz" 4
cut_end "$Z/big.gz" "$Z/bad4.gz" 100000
cut_end "$Z/ab.gz" "$Z/bad5.gz" 1
cp "$Z/ab.gz" "$Z/bad6.gz"; printf 'garbage\n' >>"$Z/bad6.gz"
flip "$Z/big.zst" "$Z/bad1.zst"
cut_end "$Z/big.zst" "$Z/bad2.zst" 3
cut_end "$Z/ab.zst" "$Z/bad3.zst" 1
for k in bad1.gz bad2.gz bad3.gz bad4.gz bad5.gz bad6.gz bad1.zst bad2.zst bad3.zst; do
	mkdir "$Z/out"
	for io in uring read; do
		expect_rc 1 "$k, io $io" rate_demo --io $io --out "$Z/out/t.csv" --rejects "$Z/out/r.csv" \
			--itemize "$Z/out/i.csv" "$DEMO/cdrs/01-fixed-switch.csv" "$Z/$k"
		err_has "$Z/$k: " "$k named, io $io"
		grep -Eq "(corrupt|truncated) (gzip|zstd) data" "$W/err" && ok || bad "$k: says corrupt or truncated"
		[ -z "$(ls "$Z/out")" ] && ok || bad "$k: left $(ls "$Z/out")"
	done
	rm -rf "$Z/out"
done
grep -q "truncated zstd data" "$W/err" && ok || bad "a cut zstd file is called truncated"
mkdir "$Z/out"
expect_rc 1 "corrupt gzip on standard input" rate_demo --out "$Z/out/t.csv" - <"$Z/bad1.gz"
err_has "standard input: corrupt gzip data" "corrupt standard input named"
cat "$Z/bad2.zst" | rate_demo --out "$Z/out/t.csv" --rejects "$Z/out/r.csv" - 2>"$W/err"
[ $? -eq 1 ] && ok || bad "truncated zstd through a pipe: exit 1"
err_has "standard input: truncated zstd data" "truncated zstd pipe named"
[ -z "$(ls "$Z/out")" ] && ok || bad "corrupt streams left $(ls "$Z/out")"
rm -rf "$Z"
else
	echo "compressed inputs: gzip or zstd not installed, skipped"
fi
