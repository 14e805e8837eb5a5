#!/bin/sh
# The --report page in a real browser (Debian's chromium, headless): the
# demo month's report, and a rerate's, render to a PNG and to a PDF; the
# browser logs no console message while loading them (an SVG attribute it
# rejects, a script error, a blocked fetch all log one); and the figures
# printed on the page, read back from the DOM the browser built, equal
# the --breakdown CSV's (tests/e2e/reportcheck.py).
#
# Console messages: chromium --enable-logging=stderr --v=0 writes each one
# as a line with ":CONSOLE" on standard error (the other lines it writes
# there, D-Bus and GPU notes of a headless machine, are not the page's).
# A deliberately broken page is loaded first: the check must see its
# messages, or it could not see ours either.
#
# Without chromium the test is skipped with a message (make test passes on
# a machine without a browser); with REQUIRE_BROWSER=1 (.ci/run) a missing
# browser fails it.
#
# usage: tests/e2e/report.sh BUILD/cdrate [SHOT.png]
# With SHOT.png (make report-shot) it also writes the screenshot there.
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=report
. "$(dirname "$0")/lib.sh"
SHOT=${2:-}

CHROME=
for c in chromium chromium-browser google-chrome; do
	if command -v "$c" >/dev/null; then
		CHROME=$c
		break
	fi
done
if [ -z "$CHROME" ]; then
	if [ "${REQUIRE_BROWSER:-0}" = 1 ]; then
		echo "FAIL: report: chromium is not installed (REQUIRE_BROWSER=1)"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "report: chromium not installed, browser check skipped (apt-get install chromium)"
	exit 0
fi
if ! command -v python3 >/dev/null; then
	echo "report: python3 not installed, browser check skipped"
	[ "${REQUIRE_BROWSER:-0}" = 1 ] && exit 1
	exit 0
fi

# chromium FLAGS... URL: headless, its profile in the scratch directory;
# --no-sandbox because tests may run as root (the page is our own file).
chrome() {
	timeout 180 "$CHROME" --headless --no-sandbox --disable-gpu \
		--no-first-run --no-default-browser-check --disable-extensions \
		--disable-background-networking --hide-scrollbars \
		--user-data-dir="$W/profile" "$@"
}
# console_clean PAGE WHAT: loading PAGE logs no console message
console_clean() {
	chrome --enable-logging=stderr --v=0 --dump-dom "file://$1" \
		>"$1.dom" 2>"$1.log"
	if grep -q ':CONSOLE' "$1.log"; then
		bad "$2: console messages"
		grep ':CONSOLE' "$1.log" | head -5
	elif [ ! -s "$1.dom" ]; then
		bad "$2: the browser gave no DOM"
		tail -5 "$1.log"
	else
		ok
	fi
}
# render PAGE WHAT: to PAGE.png and PAGE.pdf, both real files of their kind
render() {
	chrome --window-size=1100,2400 --screenshot="$1.png" "file://$1" \
		>/dev/null 2>"$1.shot.log"
	if [ "$(head -c 8 "$1.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
		[ "$(wc -c <"$1.png")" -gt 20000 ]; then ok; else
		bad "$2: no PNG screenshot"
		tail -3 "$1.shot.log"
	fi
	chrome --no-pdf-header-footer --print-to-pdf="$1.pdf" "file://$1" \
		>/dev/null 2>"$1.pdf.log"
	if [ "$(head -c 5 "$1.pdf" 2>/dev/null)" = "%PDF-" ] &&
		[ "$(wc -c <"$1.pdf")" -gt 10000 ]; then ok; else
		bad "$2: no PDF"
		tail -3 "$1.pdf.log"
	fi
}
figures() { # PAGE BREAKDOWN TOTALS WHAT
	if python3 "$HERE/reportcheck.py" "$1.dom" "$2" "$3" CNY >"$W/rc" 2>&1; then
		ok
	else
		bad "$4: page figures differ from the breakdown"
		head -10 "$W/rc"
	fi
}

# The detector sees a broken page's messages.
cat >"$W/broken.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset=utf-8><title>x</title></head><body>
<svg width=10 height=10><rect width=-5 height=3 /></svg></body></html>
EOF
chrome --enable-logging=stderr --v=0 --dump-dom "file://$W/broken.html" \
	>/dev/null 2>"$W/broken.log"
if grep -q ':CONSOLE' "$W/broken.log"; then ok; else
	bad "the console check does not see a broken page's message"
	tail -5 "$W/broken.log"
fi

# ---- the demo month (relative paths, as make demo runs it)
cd "$ROOT" || exit 1
"$BIN" rate --tariff fixtures/demo/tariff --period 2026-10 -o "$W/t.csv" \
	--breakdown "$W/b.csv" --report "$W/demo.html" fixtures/demo/cdrs \
	2>"$W/err" && ok || bad "demo run with --report"
console_clean "$W/demo.html" "demo report"
figures "$W/demo.html" "$W/b.csv" "$W/t.csv" "demo report"
render "$W/demo.html" "demo report"
grep -q '<svg' "$W/demo.html.dom" && ok || bad "demo report: no chart in the DOM"

# ---- a rerate
NEW=$W/newtariff
cp -r "$DEMO/tariff" "$NEW"
sed -i 's/^mobile18,voice,\*,\*,0,0.15,/mobile18,voice,*,*,0,0.25,/; s/^fixed25,25$/fixed25,27/' \
	"$NEW/rates.csv" "$NEW/plans.csv"
"$BIN" rerate --tariff fixtures/demo/tariff --new-tariff "$NEW" \
	--period 2026-10 -o "$W/d.csv" --new-out "$W/nt.csv" \
	--breakdown "$W/rb.csv" --report "$W/rerate.html" fixtures/demo/cdrs \
	2>"$W/err" && ok || bad "rerate with --report"
console_clean "$W/rerate.html" "rerate report"
figures "$W/rerate.html" "$W/rb.csv" "$W/nt.csv" "rerate report"
render "$W/rerate.html" "rerate report"

if [ -n "$SHOT" ]; then
	cp "$W/demo.html.png" "$SHOT" && echo "report: wrote $SHOT"
fi
summary
