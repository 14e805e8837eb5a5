/*
 * fuzz_rate.c - libFuzzer target: the whole rating path over one CDR file.
 *
 * The tariff is loaded once per process from $CDR_FUZZ_TARIFF (default
 * fixtures/demo/tariff, relative to the repository root, where make runs).
 * Each run writes the input to a file in a per-process directory (under
 * /dev/shm when there is one, so the commit's fsync costs nothing), rates
 * it for 2026-10 with one worker and plain read(2), renders the totals,
 * commits the rejects and itemize files and checks the bookkeeping that
 * SPEC section 1 promises ("every input record ends in exactly one place"):
 *
 *   - stats.read equals the records in the input, counted here the plain
 *     way: lines split on '\n', one '\r' before it dropped, empty lines and
 *     a first line starting `id,` (after a UTF-8 BOM) not counted;
 *   - read == rated + rejected;
 *   - the rejects file has exactly `rejected` lines, each ending in a comma
 *     and a reason name, and as many lines per reason as stats.by_reason;
 *   - the itemize file has exactly `rated` lines of 8 columns;
 *   - the totals render and start with their header.
 *
 * Any violation aborts with the counts. Everything is removed after each
 * run and the directory at exit.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdrate/cdrate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOTALS_HEADER "account,period,records,"

static cdr_tariff *tariff;
static char dir[256], in_path[320], rej_path[320], item_path[320];

static void remove_dir(void)
{
	unlink(in_path);
	unlink(rej_path);
	unlink(item_path);
	rmdir(dir);
	cdr_tariff_free(tariff);
	tariff = NULL;
}

static void setup(void)
{
	const char *tdir = getenv("CDR_FUZZ_TARIFF");
	char err[CDR_ERR_MAX];
	if (!tdir || !*tdir)
		tdir = "fixtures/demo/tariff";
	if (cdr_tariff_load(&tariff, tdir, NULL, err, sizeof(err))) {
		fprintf(stderr, "fuzz_rate: tariff %s: %s\n", tdir, err);
		abort();
	}
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if (!base) {
		base = getenv("TMPDIR");
		if (!base || !*base)
			base = "/tmp";
	}
	snprintf(dir, sizeof(dir), "%s/cdrate-fuzz-rate-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("fuzz_rate: mkdtemp");
		abort();
	}
	snprintf(in_path, sizeof(in_path), "%s/cdrs.csv", dir);
	snprintf(rej_path, sizeof(rej_path), "%s/rejects.csv", dir);
	snprintf(item_path, sizeof(item_path), "%s/itemize.csv", dir);
	atexit(remove_dir);
}

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_rate: %s%s%s\n", what, detail ? ": " : "",
		detail ? detail : "");
	abort();
}

/* Records in the input the way SPEC section 3 counts them. */
static uint64_t count_records(const uint8_t *p, size_t n)
{
	uint64_t recs = 0;
	size_t i = 0;
	int first = 1;
	if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < n) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - p) : n, len = e - i;
		if (len && p[e - 1] == '\r')
			len--;
		int header = first && len >= 3 && !memcmp(p + i, "id,", 3);
		first = 0;
		if (len && !header)
			recs++;
		i = e + 1;
	}
	return recs;
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail("cannot open output", path);
	size_t cap = 4096, len = 0;
	char *b = malloc(cap);
	size_t got;
	while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb)
				free(b);
			b = nb;
		}
	}
	fclose(f);
	if (!b)
		fail("out of memory", NULL);
	*n = len;
	return b;
}

/* Lines of a file that must end in '\n' (or be empty). */
static uint64_t count_lines(const char *b, size_t n, const char *name)
{
	uint64_t lines = 0;
	if (n && b[n - 1] != '\n')
		fail("output does not end in a newline", name);
	for (const char *p = b, *e = b + n; p < e; lines++) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		p = nl + 1;
	}
	return lines;
}

static void check_rejects(const cdr_run_stats *st)
{
	size_t n;
	char *b = slurp(rej_path, &n);
	uint64_t per[CDR_REASON_MAX] = {0};
	if (count_lines(b, n, "rejects") != st->rejected)
		fail("rejects lines != stats.rejected", NULL);
	for (const char *p = b, *e = b + n; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *c = nl;
		while (c > p && c[-1] != ',')
			c--;
		if (c == p)
			fail("rejects line without a reason", NULL);
		int k = 1;
		for (; k < CDR_REASON_MAX && cdr_reason_name(k); k++) {
			const char *rn = cdr_reason_name(k);
			if (strlen(rn) == (size_t)(nl - c) &&
			    !memcmp(rn, c, (size_t)(nl - c)))
				break;
		}
		if (k == CDR_REASON_MAX || !cdr_reason_name(k))
			fail("rejects line with an unknown reason", NULL);
		per[k]++;
		p = nl + 1;
	}
	for (int k = 1; k < CDR_REASON_MAX; k++)
		if (per[k] != st->by_reason[k]) {
			fprintf(stderr, "reason %s: %llu lines, %llu counted\n",
				cdr_reason_name(k), (unsigned long long)per[k],
				(unsigned long long)st->by_reason[k]);
			fail("rejects lines per reason != stats.by_reason",
			     NULL);
		}
	free(b);
}

static void check_itemize(const cdr_run_stats *st)
{
	size_t n;
	char *b = slurp(item_path, &n);
	if (count_lines(b, n, "itemize") != st->rated)
		fail("itemize lines != stats.rated", NULL);
	for (const char *p = b, *e = b + n; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		int commas = 0;
		for (const char *q = p; q < nl; q++)
			commas += *q == ',';
		if (commas != 7)
			fail("itemize line without 8 columns", NULL);
		p = nl + 1;
	}
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CDR_ERR_MAX];
	if (!tariff)
		setup();

	FILE *f = fopen(in_path, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f))
		fail("cannot write the input", in_path);

	cdr_run_opts o;
	memset(&o, 0, sizeof(o));
	o.period_year = 2026;
	o.period_month = 10;
	o.threads = 1;
	o.io = CDR_IO_READ;
	o.rejects_path = rej_path;
	o.itemize_path = item_path;
	cdr_run *run = NULL;
	cdr_tariff *const ts[1] = {tariff};
	if (cdr_run_create(&run, ts, 1, &o, err, sizeof(err)))
		fail("cdr_run_create", err);
	if (cdr_run_add_input(run, in_path, err, sizeof(err)))
		fail("cdr_run_add_input", err);
	if (cdr_run_execute(run, err, sizeof(err)))
		fail("cdr_run_execute", err);

	char *totals = NULL;
	size_t tlen = 0;
	if (cdr_run_totals(run, 0, &totals, &tlen))
		fail("cdr_run_totals", NULL);
	if (tlen < strlen(TOTALS_HEADER) ||
	    memcmp(totals, TOTALS_HEADER, strlen(TOTALS_HEADER)) ||
	    totals[tlen - 1] != '\n')
		fail("totals without header or final newline", NULL);
	free(totals);
	if (cdr_run_commit(run, err, sizeof(err)))
		fail("cdr_run_commit", err);

	cdr_run_stats st;
	cdr_run_stats_get(run, &st);
	uint64_t want = count_records(data, size);
	if (st.read != want || st.read != st.rated + st.rejected) {
		fprintf(stderr,
			"records %llu, read %llu, rated %llu, rejected %llu\n",
			(unsigned long long)want, (unsigned long long)st.read,
			(unsigned long long)st.rated,
			(unsigned long long)st.rejected);
		fail("read != records in the input, or != rated + rejected",
		     NULL);
	}
	check_rejects(&st);
	check_itemize(&st);
	cdr_run_free(run);

	if ((unlink(rej_path) && errno != ENOENT) ||
	    (unlink(item_path) && errno != ENOENT))
		fail("cannot remove outputs", dir);
	return 0;
}
