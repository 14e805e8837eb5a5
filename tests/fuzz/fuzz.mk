# tests/fuzz/fuzz.mk - libFuzzer targets and the replay of their corpora.
#
# Included from the top Makefile (after its variables: BUILD, CPPFLAGS,
# CFLAGS, LDLIBS and the $(BUILD)/libcdrate.a rule). Two entry points:
#
#   make fuzz-replay   every target, built with $(CC) (gcc is fine) and
#                      tests/fuzz/replay.c instead of libFuzzer, run over
#                      its seeds in fixtures/fuzz/<name>/; part of make test.
#   make fuzz          every target built with clang + libFuzzer + ASan +
#                      UBSan against a sanitized, coverage-instrumented copy
#                      of the library ($(BUILD)/fuzz/obj), then run for
#                      FUZZ_SECONDS each (default 60), one after the other,
#                      over a working corpus in $(BUILD)/fuzz/corpus/<name>
#                      seeded from fixtures/fuzz/<name>/. A crash, leak or
#                      broken invariant stops make with the fuzzer's status;
#                      the reproducer is $(BUILD)/fuzz/artifacts/<name>-*.
#
# FUZZ_TARGETS picks targets (make fuzz FUZZ_TARGETS=parse_diff), FUZZ_ARGS
# passes libFuzzer options (FUZZ_ARGS=-jobs=2). A dictionary
# tests/fuzz/<name>.dict is used when present. New inputs stay in
# $(BUILD)/fuzz/corpus; copy the few worth keeping into fixtures/fuzz/
# after minimizing them (-merge=1 into an empty directory).

FUZZ_TARGETS ?= parse parse_diff tariff rate format source
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
FUZZ_CFLAGS  = $(CFLAGS) -O1 -g $(FUZZ_SAN)
FUZZ_LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*.c))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:src/%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_HDRS    := $(wildcard src/*.h include/cdrate/*.h)

.PHONY: fuzz fuzz-build fuzz-replay

# ---- replay under the normal compiler (make test) ---------------------

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c \
		$(BUILD)/libcdrate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $< tests/fuzz/replay.c \
		$(BUILD)/libcdrate.a -o $@ $(LDLIBS)

fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
	@set -e; for n in $(FUZZ_TARGETS); do \
	  printf '== fuzz seeds %-10s ' "$$n"; \
	  $(BUILD)/fuzz/replay_$$n fixtures/fuzz/$$n; \
	done

# ---- libFuzzer builds (clang) -----------------------------------------

# The library with coverage instrumentation but without libFuzzer's main.
$(BUILD)/fuzz/obj/%.o: src/%.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
		-c $< -o $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< \
		$(FUZZ_LIB_OBJ) -o $@ $(LDLIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: fuzz-build
	@set -e; for n in $(FUZZ_TARGETS); do \
	  c=$(BUILD)/fuzz/corpus/$$n; \
	  mkdir -p $$c $(BUILD)/fuzz/artifacts; \
	  cp -R fixtures/fuzz/$$n/. $$c/; \
	  d=; [ ! -f tests/fuzz/$$n.dict ] || d=-dict=tests/fuzz/$$n.dict; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/fuzz_$$n $$d -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/artifacts/$$n- $(FUZZ_ARGS) $$c; \
	done

# Built through a pattern rule only, they would count as intermediate and
# be deleted after each link, to be rebuilt the next time.
.SECONDARY: $(FUZZ_LIB_OBJ)
