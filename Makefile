# cdrate - plain GNU make. `make help` lists the targets.
#
# Dependencies come through pkg-config (liburing, libxxhash, libzstd,
# libisal for gzip, criterion).
# When one is missing, `make` installs the Debian packages with apt-get
# (through sudo when not root) or stops with the exact command to run.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wconversion -Wstrict-prototypes \
           -Wmissing-prototypes -Wvla -Wformat=2 -Wpointer-arith \
           -Wcast-qual -Wundef -Wnull-dereference
DEBS    := liburing-dev libxxhash-dev libzstd-dev libisal-dev libcriterion-dev pkg-config
PKGS    := liburing libxxhash libzstd libisal
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Isrc
CFLAGS  += -std=c11 $(OPT) $(WARN) -pthread $(MOREFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luring -lxxhash -lzstd -lisal) -pthread

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
TESTS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))

.PHONY: all deps test unit e2e ref lint demo bench bench-quick bench-shard asan tsan help clean check-symbols \
        report-shot \
        install uninstall install-check

# Where `make install` puts things; DESTDIR is prepended to each (staged
# installs, packaging).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PCDIR      ?= $(LIBDIR)/pkgconfig

all: deps $(BUILD)/cdrate

help:
	@echo "make            build $(BUILD)/cdrate and $(BUILD)/libcdrate.a"
	@echo "make demo       rate the bundled fixtures, print the totals"
	@echo "make report-shot  the demo's --report page in chromium (the browser"
	@echo "                check of make test), its screenshot into fixtures/"
	@echo "make test       unit suites (Criterion) and end-to-end goldens"
	@echo "make bench      generate benchmark data and measure throughput"
	@echo "make bench-quick  1M records; fails if rate/floor passes bench/quick-threshold"
	@echo "make bench-shard  10M records through cdrate shard at N=4, against one rate run"
	@echo "make asan       the tests again under ASan + UBSan"
	@echo "make fuzz       libFuzzer targets, FUZZ_SECONDS each (clang)"
	@echo "make tsan       the threaded tests under TSan"
	@echo "make lint       cppcheck and clang-tidy (.clang-tidy), warnings fail"
	@echo "make check-symbols  exported symbols all carry the cdr_ prefix"
	@echo "make install    binary, man page, library, header, cdrate.pc under PREFIX"
	@echo "                (default /usr/local; DESTDIR=dir stages it)"
	@echo "make uninstall  remove what make install put there"
	@echo "make clean      remove $(BUILD)/"

# Install missing libraries (Debian/Ubuntu), or say exactly what to run.
# Checked again when the Makefile changes: a build directory made before a
# library joined PKGS must not skip installing it.
deps: $(BUILD)/.deps
$(BUILD)/.deps: Makefile
	@mkdir -p $(BUILD)
	@if ! pkg-config --exists $(PKGS) criterion 2>/dev/null; then \
	  echo "cdrate: installing $(DEBS)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null; then SUDO="sudo -n"; \
	  else echo "cdrate: missing libraries; run: apt-get install -y $(DEBS)"; exit 1; fi; \
	  $$SUDO apt-get install -y $(DEBS) >/dev/null 2>&1 || \
	  { $$SUDO apt-get update >/dev/null 2>&1 && $$SUDO apt-get install -y $(DEBS) >/dev/null; } || \
	  { echo "cdrate: could not install; run: sudo apt-get install -y $(DEBS)"; exit 1; }; \
	fi
	@touch $@

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h include/cdrate/*.h) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libcdrate.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/cdrate: $(BUILD)/obj/cli/main.o $(BUILD)/libcdrate.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Tests may use internal headers: they test the stages one by one.
$(BUILD)/tests/%: tests/%.c $(BUILD)/libcdrate.a tests/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes $< $(BUILD)/libcdrate.a -o $@ $(LDLIBS) -lcriterion

unit: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t --jobs 2; done

e2e: $(BUILD)/cdrate
	@sh tests/e2e/run.sh $(BUILD)/cdrate
	@sh tests/e2e/formats.sh $(BUILD)/cdrate
	@sh tests/e2e/invariance.sh $(BUILD)/cdrate
	@sh tests/e2e/cli.sh $(BUILD)/cdrate
	@sh tests/e2e/shard.sh $(BUILD)/cdrate
	@sh tests/e2e/shard_bd.sh $(BUILD)/cdrate
	@sh tests/e2e/breakdown.sh $(BUILD)/cdrate
	@sh tests/e2e/report.sh $(BUILD)/cdrate
	@sh tests/e2e/tariff_cache.sh $(BUILD)/cdrate

# The independent Python reference (tests/ref) on its hand-worked cases
# and on seeded random tariffs and CDRs, compared with cdrate.
REF_SEEDS ?= 30
ref: $(BUILD)/cdrate
	@if command -v python3 >/dev/null; then \
	  { BIN=$(BUILD)/cdrate sh tests/ref/selftest.sh >$(BUILD)/ref-cases.log 2>&1 || \
	    { cat $(BUILD)/ref-cases.log; exit 1; }; } && tail -1 $(BUILD)/ref-cases.log && \
	  sh tests/ref/compare.sh $(BUILD)/cdrate 0 $$(($(REF_SEEDS) - 1)); \
	else echo "ref: python3 not installed, differential tests skipped"; fi

test: all unit e2e install-check ref fuzz-replay check-symbols
	@echo "make test: all suites passed"

demo: all
	@$(BUILD)/cdrate rate --tariff fixtures/demo/tariff --period 2026-10 fixtures/demo/cdrs

# The README's screenshot of the demo month's report, through the same
# browser check as make test (fails without chromium).
report-shot: all
	@REQUIRE_BROWSER=1 sh tests/e2e/report.sh $(BUILD)/cdrate fixtures/report-demo.png

check-symbols: $(BUILD)/libcdrate.a
	@bad=$$(nm -g --defined-only $(BUILD)/libcdrate.a | awk 'NF==3 {print $$3}' | grep -v '^cdr_' || true); \
	if [ -n "$$bad" ]; then echo "symbols without the cdr_ prefix:"; echo "$$bad"; exit 1; fi

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -D_GNU_SOURCE -Iinclude -Isrc --suppress=missingIncludeSystem src
	clang-tidy --quiet $(LIB_SRC) src/cli/main.c -- $(CPPFLAGS) -std=c11

asan:
	$(MAKE) BUILD=build-asan CC=clang OPT="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

# The threaded pipeline under TSan, through the end-to-end suite (its
# 1-4 thread runs). Criterion's own runner does not start under TSan.
tsan:
	TSAN_OPTIONS="halt_on_error=1" $(MAKE) BUILD=build-tsan CC=clang OPT="-O1 -g -fsanitize=thread" e2e

bench: all
	@sh bench/run.sh $(BUILD)

bench-quick: all
	@sh bench/run.sh $(BUILD) quick

# The 10M-record month through `cdrate shard` at N = 4 as a shell loop,
# against one rate run (bench/shard.sh; bench/README.md "Sharded").
bench-shard: all
	@sh bench/shard.sh $(BUILD)

# The library is static only; the .pc names its dependencies as Requires,
# so `pkg-config --libs cdrate` is all a program needs to link.
$(BUILD)/cdrate.pc: Makefile include/cdrate/cdrate.h
	@mkdir -p $(BUILD)
	@v=$$(sed -n 's/^#define CDR_VERSION_STRING "\(.*\)"/\1/p' include/cdrate/cdrate.h); \
	printf '%s\n' "prefix=$(PREFIX)" "libdir=$(LIBDIR)" "includedir=$(INCLUDEDIR)" "" \
	  "Name: cdrate" "Description: call detail record batch rater" "Version: $$v" \
	  "Requires: $(PKGS)" "Libs: -L\$${libdir} -lcdrate -pthread" \
	  "Cflags: -I\$${includedir}" >$@

install: all $(BUILD)/cdrate.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PCDIR) \
	  $(DESTDIR)$(INCLUDEDIR)/cdrate $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/cdrate $(DESTDIR)$(BINDIR)/cdrate
	install -m 644 $(BUILD)/libcdrate.a $(DESTDIR)$(LIBDIR)/libcdrate.a
	install -m 644 include/cdrate/cdrate.h $(DESTDIR)$(INCLUDEDIR)/cdrate/cdrate.h
	install -m 644 doc/cdrate.1 $(DESTDIR)$(MANDIR)/man1/cdrate.1
	install -m 644 $(BUILD)/cdrate.pc $(DESTDIR)$(PCDIR)/cdrate.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/cdrate $(DESTDIR)$(LIBDIR)/libcdrate.a \
	  $(DESTDIR)$(INCLUDEDIR)/cdrate/cdrate.h $(DESTDIR)$(MANDIR)/man1/cdrate.1 \
	  $(DESTDIR)$(PCDIR)/cdrate.pc
	-rmdir $(DESTDIR)$(INCLUDEDIR)/cdrate 2>/dev/null

# A staged install into a scratch directory, used as a user would: the
# binary runs, pkg-config finds the library, a program links against it,
# the man page renders without warnings; then uninstall leaves no file.
install-check: all
	@CC="$(CC)" USE_CFLAGS="$(OPT)" sh tests/e2e/install.sh $(BUILD)

clean:
	rm -rf build build-asan build-tsan

include tests/fuzz/fuzz.mk
