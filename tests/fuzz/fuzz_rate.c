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
 *     the first non-empty line if it starts `id,` (a header; after a
 *     UTF-8 BOM) not counted;
 *   - read == rated + rejected;
 *   - the rejects file is its header and exactly `rejected` rows of 5
 *     RFC 4180 fields whose third is a reason name, as many rows per
 *     reason as stats.by_reason, each `line` a number;
 *   - the itemize file is its header and exactly `rated` rows of 11 fields;
 *   - the totals render and start with their header.
 *
 * Then the same records are rated again with their lines in reverse order
 * (behind a fresh header, so no record can turn into one): SPEC section 1
 * promises byte-identical totals whatever the order of records, and
 * the README a byte-identical itemize (it is sorted) and the same rejects
 * (reason and record; their lines move). Duplicate
 * resolution (the bytewise-smallest line wins) is what this exercises
 * most. Set CDR_FUZZ_NO_REVERSE=1 to skip the second run (twice as fast).
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
#include "format.h"

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

/* Records in the input the way SPEC section 3 counts them. (Inputs stay
 * far below the reader's 4 MiB chunk, so where a chunk starts plays no
 * part here.) */
/* Does a first line name the seven native columns, in any order and
 * maybe among others (then it is a header read by name, SPEC 11)? */
static int names_all(const uint8_t *p, size_t len)
{
	static const char *const cols[] = {"id", "subscriber", "service",
					   "start", "destination", "duration",
					   "volume"};
	static cdr__field f[CDR__MAXF];
	char *sc = malloc(CDR__SCRATCH(len));
	if (!sc)
		fail("out of memory", NULL);
	int nf = cdr__split((const char *)p, len, ',', f, CDR__MAXF, sc);
	int all = nf > 0;
	for (size_t c = 0; all && c < 7; c++) {
		int found = 0;
		for (int i = 0; i < nf; i++)
			found |= f[i].n == strlen(cols[c]) &&
				 !memcmp(f[i].s, cols[c], f[i].n);
		all = found;
	}
	free(sc);
	return all;
}

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
		int header = first && len && names_all(p + i, len);
		if (len)
			first = 0;
		if (len && !header)
			recs++;
		i = e + 1;
	}
	return recs;
}

/*
 * Does the run stop at the input's first non-empty line (SPEC 11, and the
 * reader's bare-CR check)? It does when that line, up to the 64 KiB the
 * reader looks at, holds a CR and is a header (starts `id,`) or is not
 * ended by '\n' within 64 KiB; or when it is a header other than the
 * seven native columns in their order.
 */
/* Is the first non-empty line a header other than the canonical one,
 * read by name? Then the reversed copy (behind a canonical header) is
 * another file, and only the counts are checked. */
static int renamed_header(const uint8_t *p, size_t n)
{
	static const char hdr[] =
		"id,subscriber,service,start,destination,duration,volume";
	size_t i = n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3) ? 3 : 0;
	while (i < n) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - p) : n, len = e - i;
		if (len && p[e - 1] == '\r')
			len--;
		if (len)
			return names_all(p + i, len) &&
			       (len != strlen(hdr) || memcmp(p + i, hdr, len));
		i = e + 1;
	}
	return 0;
}

static int stops_at_head(const uint8_t *p, size_t n)
{
	static const char hdr[] =
		"id,subscriber,service,start,destination,duration,volume";
	const size_t max = 64 * 1024;
	size_t i = n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3) ? 3 : 0;
	while (i < n) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - p) : n, len = e - i;
		if (len && p[e - 1] == '\r')
			len--;
		if (!len) {
			i = e + 1;
			continue;
		}
		int open = !nl || len > max;
		if (len > max)
			len = max;
		int header = len >= 3 && !memcmp(p + i, "id,", 3);
		if ((header || open) && memchr(p + i, '\r', len))
			return 1;
		(void)hdr;
		/* A header starting `id,` must name all seven columns; in
		 * another order it is read by name (renamed_header). */
		return header && !names_all(p + i, len);
	}
	return 0;
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

/* Split one CSV row p[0, n) (RFC 4180: quoted fields, "" inside) into
 * f[]/fn[] as written (quotes kept); the field count, or -1. */
static int csv_split(const char *p, size_t n, const char **f, size_t *fn,
		     int max)
{
	int k = 0;
	size_t i = 0;
	for (;;) {
		if (k == max)
			return -1;
		f[k] = p + i;
		if (i < n && p[i] == '"') {
			for (i++;; i++) {
				if (i >= n)
					return -1;
				if (p[i] == '"') {
					if (i + 1 < n && p[i + 1] == '"')
						i++;
					else
						break;
				}
			}
			i++;
		} else {
			while (i < n && p[i] != ',') {
				if (p[i] == '"' || (unsigned char)p[i] < 0x20)
					return -1;
				i++;
			}
		}
		fn[k] = (size_t)(p + i - f[k]);
		k++;
		if (i == n)
			return k;
		if (p[i] != ',')
			return -1;
		i++;
	}
}

static const char REJ_HEAD[] = "file,line,reason,detail,record\n";
static const char ITEM_HEAD[] =
	"id,account,subscriber,service,start,destination,zone,band,plan,"
	"quantity,charge\n";

/* The file's rows after its header. */
static const char *body(const char *b, size_t n, const char *head,
			size_t *bn, const char *name)
{
	size_t h = strlen(head);
	if (n < h || memcmp(b, head, h))
		fail("output without its header", name);
	*bn = n - h;
	return b + h;
}

static void check_rejects(const char *b0, size_t n0, const cdr_run_stats *st)
{
	uint64_t per[CDR_REASON_MAX] = {0};
	size_t n;
	const char *b = body(b0, n0, REJ_HEAD, &n, "rejects");
	if (count_lines(b, n, "rejects") != st->rejected)
		fail("rejects rows != stats.rejected", NULL);
	for (const char *p = b, *e = b + n; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *f[5];
		size_t fn[5];
		if (csv_split(p, (size_t)(nl - p), f, fn, 5) != 5)
			fail("rejects row without 5 CSV fields", NULL);
		if (!fn[1] || strspn(f[1], "0123456789") != fn[1])
			fail("rejects row whose line is not a number", NULL);
		if (fn[4] < 2 || f[4][0] != '"')
			fail("rejects row whose record is not quoted", NULL);
		int k = 1;
		for (; k < CDR_REASON_MAX && cdr_reason_name(k); k++) {
			const char *rn = cdr_reason_name(k);
			if (strlen(rn) == fn[2] && !memcmp(rn, f[2], fn[2]))
				break;
		}
		if (k == CDR_REASON_MAX || !cdr_reason_name(k))
			fail("rejects row with an unknown reason", NULL);
		per[k]++;
		p = nl + 1;
	}
	for (int k = 1; k < CDR_REASON_MAX; k++)
		if (per[k] != st->by_reason[k]) {
			fprintf(stderr, "reason %s: %llu rows, %llu counted\n",
				cdr_reason_name(k), (unsigned long long)per[k],
				(unsigned long long)st->by_reason[k]);
			fail("rejects rows per reason != stats.by_reason",
			     NULL);
		}
}

static void check_itemize(const char *b0, size_t n0, const cdr_run_stats *st)
{
	size_t n;
	const char *b = body(b0, n0, ITEM_HEAD, &n, "itemize");
	if (count_lines(b, n, "itemize") != st->rated)
		fail("itemize rows != stats.rated", NULL);
	for (const char *p = b, *e = b + n; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *f[11];
		size_t fn[11];
		if (csv_split(p, (size_t)(nl - p), f, fn, 11) != 11)
			fail("itemize row without 11 CSV fields", NULL);
		p = nl + 1;
	}
}

/* Rejects rows reduced to reason and record (the parts that do not move
 * with the line order), one a line, for same_lines. Caller frees. */
static char *rej_core(const char *b0, size_t n0, size_t *outn)
{
	size_t n;
	const char *b = body(b0, n0, REJ_HEAD, &n, "rejects");
	char *o = malloc(n + 1), *q = o;
	if (!o)
		fail("out of memory", NULL);
	for (const char *p = b, *e = b + n; p < e;) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *f[5];
		size_t fn[5];
		csv_split(p, (size_t)(nl - p), f, fn, 5);
		memcpy(q, f[2], fn[2]);
		q += fn[2];
		*q++ = ',';
		memcpy(q, f[4], fn[4]);
		q += fn[4];
		*q++ = '\n';
		p = nl + 1;
	}
	*outn = (size_t)(q - o);
	return o;
}

/* What one run produced. */
typedef struct outcome {
	cdr_run_stats st;
	char *totals, *rej, *item;
	size_t totals_n, rej_n, item_n;
} outcome;

static void outcome_free(outcome *o)
{
	free(o->totals);
	free(o->rej);
	free(o->item);
}

/* Rate in_path; check the bookkeeping of this one run. */
static void rate_once(outcome *out)
{
	char err[CDR_ERR_MAX];
	cdr_run_opts o;
	memset(&o, 0, sizeof(o));
	o.period_year = 2026;
	o.period_month = 10;
	o.threads = 1;
	o.io = CDR_IO_READ;
	o.format = CDR_FORMAT_NATIVE; /* the native pipeline under test */
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
	if (cdr_run_totals(run, 0, &out->totals, &out->totals_n))
		fail("cdr_run_totals", NULL);
	if (out->totals_n < strlen(TOTALS_HEADER) ||
	    memcmp(out->totals, TOTALS_HEADER, strlen(TOTALS_HEADER)) ||
	    out->totals[out->totals_n - 1] != '\n')
		fail("totals without header or final newline", NULL);
	if (cdr_run_commit(run, err, sizeof(err)))
		fail("cdr_run_commit", err);
	cdr_run_stats_get(run, &out->st);
	cdr_run_free(run);

	const cdr_run_stats *st = &out->st;
	if (st->read != st->rated + st->rejected) {
		fprintf(stderr, "read %llu, rated %llu, rejected %llu\n",
			(unsigned long long)st->read,
			(unsigned long long)st->rated,
			(unsigned long long)st->rejected);
		fail("read != rated + rejected", NULL);
	}
	out->rej = slurp(rej_path, &out->rej_n);
	out->item = slurp(item_path, &out->item_n);
	check_rejects(out->rej, out->rej_n, st);
	check_itemize(out->item, out->item_n, st);
	if ((unlink(rej_path) && errno != ENOENT) ||
	    (unlink(item_path) && errno != ENOENT))
		fail("cannot remove outputs", dir);
}

static void write_input(const void *p, size_t n)
{
	FILE *f = fopen(in_path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f))
		fail("cannot write the input", in_path);
}

/* A line: bytes without the '\n'. */
typedef struct span {
	const char *p;
	size_t n;
} span;

static int cmp_span(const void *a, const void *b)
{
	const span *x = a, *y = b;
	size_t m = x->n < y->n ? x->n : y->n;
	int c = m ? memcmp(x->p, y->p, m) : 0;
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Split text into lines; *n lines, caller frees. */
static span *lines_of(const char *b, size_t len, size_t *n)
{
	size_t cap = 16, k = 0;
	span *v = malloc(cap * sizeof(*v));
	for (size_t i = 0; v && i < len;) {
		const char *nl = memchr(b + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - b) : len;
		if (k == cap) {
			span *nv = realloc(v, (cap *= 2) * sizeof(*v));
			if (!nv)
				free(v);
			v = nv;
			if (!v)
				break;
		}
		v[k].p = b + i;
		v[k++].n = e - i;
		i = e + 1;
	}
	if (!v)
		fail("out of memory", NULL);
	*n = k;
	return v;
}

/* The same lines in any order. */
static int same_lines(const char *a, size_t an, const char *b, size_t bn)
{
	size_t na, nb;
	span *x = lines_of(a, an, &na), *y = lines_of(b, bn, &nb);
	int same = na == nb;
	if (same) {
		qsort(x, na, sizeof(*x), cmp_span);
		qsort(y, nb, sizeof(*y), cmp_span);
		for (size_t i = 0; same && i < na; i++)
			same = !cmp_span(&x[i], &y[i]);
	}
	free(x);
	free(y);
	return same;
}

/*
 * The records of the input, last first, behind a header: a BOM, empty
 * lines and the input's own header (the first non-empty line, if it
 * starts `id,`) are dropped; every other line keeps its bytes (a '\r'
 * before the '\n' included) and gets a '\n'.
 */
static char *reversed(const uint8_t *data, size_t size, size_t *out_n)
{
	static const char hdr[] =
		"id,subscriber,service,start,destination,duration,volume\n";
	const char *b = (const char *)data;
	size_t skip = size >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3) ? 3 : 0;
	size_t n;
	span *v = lines_of(b + skip, size - skip, &n);
	char *o = malloc(sizeof(hdr) + size + n + 1);
	if (!o)
		fail("out of memory", NULL);
	size_t k = strlen(hdr);
	int first = 1;
	memcpy(o, hdr, k);
	size_t nrec = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = v[i].n;
		if (len && v[i].p[len - 1] == '\r')
			len--;
		if (!len)
			continue;
		if (first && len >= 3 && !memcmp(v[i].p, "id,", 3)) {
			first = 0;
			continue;
		}
		first = 0;
		v[nrec++] = v[i];
	}
	for (size_t i = nrec; i-- > 0;) {
		memcpy(o + k, v[i].p, v[i].n);
		k += v[i].n;
		o[k++] = '\n';
	}
	free(v);
	*out_n = k;
	return o;
}

/* Bytes a run reads as gzip or zstd (SPEC 11): this target rates text;
 * fuzz_source.c covers the decoders. */
static int compressed_magic(const void *p, size_t n)
{
	return (n >= 2 && !memcmp(p, "\x1f\x8b", 2)) ||
	       (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!tariff)
		setup();
	if (compressed_magic(data, size))
		return 0;

	outcome a = {0};
	write_input(data, size);
	if (stops_at_head(data, size)) {
		char err[CDR_ERR_MAX];
		cdr_run_opts o;
		memset(&o, 0, sizeof(o));
		o.period_year = 2026;
		o.period_month = 10;
		o.threads = 1;
		o.io = CDR_IO_READ;
		o.format = CDR_FORMAT_NATIVE;
		cdr_run *run = NULL;
		cdr_tariff *const ts[1] = {tariff};
		if (cdr_run_create(&run, ts, 1, &o, err, sizeof(err)) ||
		    cdr_run_add_input(run, in_path, err, sizeof(err)))
			fail("cdr_run_create", err);
		if (!cdr_run_execute(run, err, sizeof(err)))
			fail("a bare-CR file or a foreign header was rated", NULL);
		if (!strstr(err, "bare CR") && !strstr(err, "header"))
			fail("stopped at the first line, but why", err);
		cdr_run_free(run);
		return 0;
	}
	rate_once(&a);
	uint64_t want = count_records(data, size);
	if (a.st.read != want) {
		fprintf(stderr, "records in the input %llu, read %llu\n",
			(unsigned long long)want,
			(unsigned long long)a.st.read);
		fail("stats.read != records in the input", NULL);
	}

	const char *skip = getenv("CDR_FUZZ_NO_REVERSE");
	if ((!skip || !*skip || *skip == '0') && !renamed_header(data, size)) {
		outcome b = {0};
		size_t rn;
		char *rev = reversed(data, size, &rn);
		if (compressed_magic(rev, rn)) { /* a line moved to the front */
			free(rev);
			outcome_free(&a);
			return 0;
		}
		write_input(rev, rn);
		free(rev);
		rate_once(&b);
		if (a.st.read != b.st.read ||
		    a.st.rated != b.st.rated ||
		    memcmp(a.st.by_reason, b.st.by_reason,
			   sizeof(a.st.by_reason)))
			fail("reversed input: other counts", NULL);
		if (a.totals_n != b.totals_n ||
		    memcmp(a.totals, b.totals, a.totals_n)) {
			fprintf(stderr, "--- totals\n%.*s--- reversed\n%.*s",
				(int)a.totals_n, a.totals, (int)b.totals_n,
				b.totals);
			fail("reversed input: other totals", NULL);
		}
		size_t ca_n, cb_n;
		char *ca = rej_core(a.rej, a.rej_n, &ca_n);
		char *cb = rej_core(b.rej, b.rej_n, &cb_n);
		if (!same_lines(ca, ca_n, cb, cb_n))
			fail("reversed input: other rejects", NULL);
		free(ca);
		free(cb);
		if (a.item_n != b.item_n || memcmp(a.item, b.item, a.item_n))
			fail("reversed input: another itemize file", NULL);
		outcome_free(&b);
	}
	outcome_free(&a);
	return 0;
}
