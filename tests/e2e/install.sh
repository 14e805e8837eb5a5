#!/bin/sh
# `make install` staged with DESTDIR under a scratch directory (never the
# real /usr), then used as an installed copy would be: the binary, the man
# page, the header and library through pkg-config, and `make uninstall`.
#
# usage: tests/e2e/install.sh BUILD   (run from the repository's top)
set -u
BUILD=$1
D=$(mktemp -d /tmp/cdrate-install-XXXXXX)
trap 'rm -rf "$D"' EXIT INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: install: $*"; }
P=/usr/local
make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=$P >"$D.log" 2>&1 || { bad "make install"; cat "$D.log"; }
rm -f "$D.log"
for f in bin/cdrate lib/libcdrate.a include/cdrate/cdrate.h share/man/man1/cdrate.1 lib/pkgconfig/cdrate.pc; do
	[ -f "$D$P/$f" ] && ok || bad "$f not installed"
done
"$D$P/bin/cdrate" --version | grep -q "^cdrate [0-9]" && ok || bad "installed binary runs"
grep -q "^prefix=$P$" "$D$P/lib/pkgconfig/cdrate.pc" && ok || bad "cdrate.pc names PREFIX"
if command -v pkg-config >/dev/null; then
	# The .pc says PREFIX; the staged copy lives under DESTDIR.
	flags=$(PKG_CONFIG_PATH="$D$P/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D" \
		pkg-config --cflags --libs cdrate) && ok || bad "pkg-config --cflags --libs cdrate"
	cat >"$D/use.c" <<'C'
#include <cdrate/cdrate.h>
#include <stdio.h>
int main(void)
{
	char err[CDR_ERR_MAX];
	cdr_tariff *t = NULL;
	int rc = cdr_tariff_load(&t, "/nonexistent", NULL, err, sizeof(err));
	cdr_tariff_free(t);
	printf("%s %d\n", CDR_VERSION_STRING, rc < 0);
	return 0;
}
C
	# shellcheck disable=SC2086
	# USE_CFLAGS: the build's own flags (a sanitized library needs its runtime).
	${CC:-cc} ${USE_CFLAGS:-} -o "$D/use" "$D/use.c" $flags 2>"$D/cc.err" && "$D/use" | grep -q " 1$" && ok ||
		{ bad "a program builds against the installed library"; head -5 "$D/cc.err"; }
fi
if command -v groff >/dev/null; then
	w=$(groff -man -Tutf8 -ww -z "$D$P/share/man/man1/cdrate.1" 2>&1)
	[ -z "$w" ] && ok || { bad "man page renders with warnings"; echo "$w" | head -5; }
	groff -man -Tutf8 "$D$P/share/man/man1/cdrate.1" 2>/dev/null | grep -q "summary-json" && ok ||
		bad "man page documents --summary-json"
fi
make -s uninstall DESTDIR="$D" PREFIX=$P >/dev/null 2>&1 || bad "make uninstall"
[ -z "$(find "$D$P" -type f)" ] && ok || bad "uninstall left $(find "$D$P" -type f | head -3)"
echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
