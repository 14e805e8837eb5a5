/*
 * test_source.c - the per-input sources (source.h): plain, gzip, zstd, each
 * run through the same checks, over regular files and pipes, through the
 * read(2) and io_uring backends, with short reads and EINTR injected
 * through the system-call table (sys.h):
 *
 *   - the bytes that come out are the text that went in, whatever the
 *     output buffer's size, for one member/frame or several;
 *   - the magic decides (gzip under any name, three zstd magic bytes are
 *     plain text), and only a plain regular file is seekable;
 *   - every cut of a compressed input and every byte inverted past the
 *     header fails with -EBADMSG and says why; trailing garbage too;
 *   - a run over compressed files gives the plain file's totals and counts
 *     the files per compression;
 *   - duplicates of compressed inputs are found by decoding again: a
 *     stream's spool holds its compressed bytes, a region of it decodes
 *     alone, and every failure on the way (the spool or the candidates'
 *     file unwritable, a read error, the file replaced) stops the run
 *     naming the input.
 *
 * The compressed data is made here, with ISA-L's deflate (gzip wrapper)
 * and libzstd (with frame checksums, as the zstd tool writes them).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "internal.h"
#include "source.h"
#include "sys.h"
#include "testutil.h"

/* ---- data ----------------------------------------------------------- */

typedef struct blob {
	unsigned char *p;
	size_t n;
} blob;

static void blob_add(blob *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	cr_assert_not_null(b->p);
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

/* CDR lines c<from>..c<to - 1>, as the run test's tariff rates them. */
static blob text(int from, int to)
{
	blob b = {0};
	char line[128];
	for (int i = from; i < to; i++) {
		int n = snprintf(line, sizeof(line),
				 "c%d,13800000001,voice,2026-10-12 10:00:00,"
				 "139%08d,%d,0\n",
				 i, i, i % 300);
		blob_add(&b, line, (size_t)n);
	}
	return b;
}

/* One gzip member of t, appended to out. */
static void gzip_member(blob *out, const blob *t)
{
	struct isal_zstream z;
	size_t cap = t->n + t->n / 2 + 1024;
	unsigned char *o = malloc(cap);
	cr_assert_not_null(o);
	isal_deflate_init(&z);
	z.gzip_flag = IGZIP_GZIP;
	z.end_of_stream = 1;
	z.next_in = t->p;
	z.avail_in = (uint32_t)t->n;
	z.next_out = o;
	z.avail_out = (uint32_t)cap;
	cr_assert_eq(isal_deflate(&z), COMP_OK);
	cr_assert_eq(z.internal_state.state, ZSTATE_END);
	blob_add(out, o, z.total_out);
	free(o);
}

/* One zstd frame of t, with a checksum, appended to out. */
static void zstd_frame(blob *out, const blob *t)
{
	size_t cap = ZSTD_compressBound(t->n);
	unsigned char *o = malloc(cap);
	ZSTD_CCtx *c = ZSTD_createCCtx();
	cr_assert(o && c);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	size_t n = ZSTD_compress2(c, o, cap, t->p, t->n);
	cr_assert(!ZSTD_isError(n), "%s", ZSTD_getErrorName(n));
	blob_add(out, o, n);
	ZSTD_freeCCtx(c);
	free(o);
}

enum { K_PLAIN, K_GZIP, K_GZIP3, K_ZSTD, K_ZSTD3, NKIND };
static const char *const kind_name[NKIND] = {"plain", "gzip", "gzip x3",
					      "zstd", "zstd x3"};
static const int kind_comp[NKIND] = {CDR_COMP_NONE, CDR_COMP_GZIP,
				     CDR_COMP_GZIP, CDR_COMP_ZSTD,
				     CDR_COMP_ZSTD};

/* t encoded as kind k: several members/frames cut t in three. split[i]
 * is where member/frame i ends (each a valid end of file). */
static blob encode(int k, const blob *t, size_t *split)
{
	blob out = {0};
	size_t cut[4] = {0, t->n / 3, t->n / 2, t->n};
	int parts = k == K_GZIP3 || k == K_ZSTD3 ? 3 : 1;
	if (parts == 1)
		cut[1] = t->n;
	for (int i = 0; i < parts; i++) {
		blob piece = {t->p + cut[i], (i == parts - 1 ? t->n : cut[i + 1]) - cut[i]};
		if (k == K_PLAIN)
			blob_add(&out, piece.p, piece.n);
		else if (k == K_GZIP || k == K_GZIP3)
			gzip_member(&out, &piece);
		else
			zstd_frame(&out, &piece);
		if (split)
			split[i] = out.n;
	}
	return out;
}

/* ---- files, pipes, draining ------------------------------------------ */

static char *dir;
static char path[600];
static char err[CDR_ERR_MAX];

static void setup(void)
{
	dir = tu_tariff();
	snprintf(path, sizeof(path), "%s/in", dir);
}

static void teardown(void)
{
	cdr__sys_table = cdr__sys_default;
	tu_rmdir(dir);
}

TestSuite(source, .init = setup, .fini = teardown);

static void put_file(const char *p, const void *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, n, f), n);
	fclose(f);
}

typedef struct feeder {
	int fd;
	const unsigned char *p;
	size_t n;
	pthread_t th;
} feeder;

/* Write into a pipe in uneven pieces, 1 byte first: the sniff must wait
 * for four. */
static void *feed(void *arg)
{
	feeder *f = arg;
	size_t at = 0, step = 1;
	while (at < f->n) {
		size_t k = f->n - at < step ? f->n - at : step;
		ssize_t w = write(f->fd, f->p + at, k);
		if (w <= 0)
			break;
		at += (size_t)w;
		step = step * 7 % 5003 + 1;
	}
	close(f->fd);
	return NULL;
}

/* Open a source on b, as a regular file or a pipe, read it all with fills
 * of `len` bytes. Returns 0 or the failing fill's status; *out the bytes,
 * *s the source (closed). */
static int drain(const blob *b, int pipe_it, cdr__backend *be, size_t len,
		 blob *out, cdr__source *s)
{
	int fd;
	feeder f = {0};
	if (pipe_it) {
		int p[2];
		cr_assert_eq(pipe(p), 0);
		f = (feeder){p[1], b->p, b->n, 0};
		cr_assert_eq(pthread_create(&f.th, NULL, feed, &f), 0);
		fd = p[0];
	} else {
		put_file(path, b->p, b->n);
		fd = open(path, O_RDONLY);
		cr_assert_geq(fd, 0);
	}
	*out = (blob){0};
	char *buf = malloc(len);
	cr_assert_not_null(buf);
	int rc = cdr__source_open(s, fd, pipe_it ? cdr__backend_read() : be,
				  !pipe_it);
	while (!rc) {
		ssize_t n = cdr__source_fill(s, buf, len);
		if (n < 0)
			rc = (int)n;
		if (n <= 0)
			break;
		/* Short only at the end: the next fill must give 0. */
		blob_add(out, buf, (size_t)n);
	}
	free(buf);
	cdr__source_close(s);
	cdr__source_close(s); /* idempotent */
	close(fd);
	if (pipe_it)
		pthread_join(f.th, NULL);
	return rc;
}

static void expect_same(const blob *got, const blob *want, const char *what)
{
	cr_assert_eq(got->n, want->n, "%s: %zu bytes, wanted %zu", what,
		     got->n, want->n);
	cr_assert(!want->n || !memcmp(got->p, want->p, want->n),
		  "%s: bytes differ", what);
}

/* Every kind, file and pipe, through `be`, with fills of each size. */
static void all_kinds(cdr__backend *be, const size_t *lens, size_t nlens)
{
	blob t = text(0, 40000); /* 2.4 MB: several raw reads */
	for (int k = 0; k < NKIND; k++) {
		blob enc = encode(k, &t, NULL);
		for (int pipe_it = 0; pipe_it < 2; pipe_it++)
			for (size_t l = 0; l < nlens; l++) {
				blob got;
				cdr__source s;
				int rc = drain(&enc, pipe_it, be, lens[l], &got, &s);
				char what[96];
				snprintf(what, sizeof(what), "%s, %s, %s, fills of %zu",
					 kind_name[k], pipe_it ? "pipe" : "file",
					 be->name, lens[l]);
				cr_assert_eq(rc, 0, "%s: %d %s", what, rc, s.why);
				expect_same(&got, &t, what);
				cr_assert_eq(s.comp, kind_comp[k], "%s", what);
				cr_assert_eq(cdr__source_seekable(&s),
					     k == K_PLAIN && !pipe_it, "%s", what);
				if (!pipe_it) /* the whole file was taken */
					cr_assert_eq(s.raw_off, enc.n, "%s", what);
				free(got.p);
			}
		free(enc.p);
	}
	free(t.p);
}

static const size_t big_fills[] = {4u << 20, 65536};

Test(source, every_kind_reads_back_its_text_with_read)
{
	all_kinds(cdr__backend_read(), big_fills, 2);
}

Test(source, every_kind_reads_back_its_text_with_uring)
{
	int why = 0;
	cdr__backend *be = cdr__backend_uring(&why);
	if (!be)
		cr_skip_test("io_uring unavailable: %s", strerror(-why));
	all_kinds(be, big_fills, 2);
	be->close(be);
}

/* Output buffers of a few bytes: decoders stop mid-block and go on. */
Test(source, tiny_fills)
{
	blob t = text(0, 300);
	static const size_t lens[] = {1, 3, 4093};
	for (int k = 0; k < NKIND; k++) {
		blob enc = encode(k, &t, NULL), got;
		cdr__source s;
		for (size_t l = 0; l < 3; l++) {
			cr_assert_eq(drain(&enc, 0, cdr__backend_read(), lens[l],
					   &got, &s), 0, "%s: %s", kind_name[k], s.why);
			expect_same(&got, &t, kind_name[k]);
			free(got.p);
		}
		free(enc.p);
	}
	free(t.p);
}

/* At most 61 bytes a call, EINTR every third call, for read and pread. */
static unsigned nth;
static ssize_t read_short(int fd, void *b, size_t n)
{
	if (++nth % 3 == 0) {
		errno = EINTR;
		return -1;
	}
	return read(fd, b, n < 61 ? n : 61);
}

static ssize_t pread_short(int fd, void *b, size_t n, off_t o)
{
	if (++nth % 3 == 0) {
		errno = EINTR;
		return -1;
	}
	return pread(fd, b, n < 61 ? n : 61, o);
}

Test(source, short_reads_and_eintr)
{
	cdr__sys_table.read = read_short;
	cdr__sys_table.pread = pread_short;
	static const size_t lens[] = {1u << 20};
	blob t = text(0, 4000);
	for (int k = 0; k < NKIND; k++)
		for (int pipe_it = 0; pipe_it < 2; pipe_it++) {
			blob enc = encode(k, &t, NULL), got;
			cdr__source s;
			unsigned before = nth;
			cr_assert_eq(drain(&enc, pipe_it, cdr__backend_read(),
					   lens[0], &got, &s), 0, "%s", s.why);
			expect_same(&got, &t, kind_name[k]);
			cr_assert_gt(nth - before, enc.n / 61, "the fault was in the path");
			free(got.p);
			free(enc.p);
		}
	free(t.p);
}

/* ---- the magic ------------------------------------------------------- */

Test(source, short_and_empty_inputs_are_plain)
{
	static const char *const heads[] = {"", "\x1f", "\x28\xb5\x2f",
					    "\x28\xb5\x2f\xfc rest", "\x8b\x1f"};
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		for (int pipe_it = 0; pipe_it < 2; pipe_it++) {
			blob in = {(unsigned char *)(uintptr_t)heads[i],
				   strlen(heads[i])};
			blob got;
			cdr__source s;
			cr_assert_eq(drain(&in, pipe_it, cdr__backend_read(), 100,
					   &got, &s), 0);
			cr_assert_eq(s.comp, CDR_COMP_NONE, "head %zu", i);
			expect_same(&got, &in, "short input given back");
			free(got.p);
		}
}

/* ---- corrupt and truncated data -------------------------------------- */

static void expect_bad(const blob *b, const char *what, size_t at)
{
	for (int pipe_it = 0; pipe_it < 2; pipe_it++) {
		blob got;
		cdr__source s;
		int rc = drain(b, pipe_it, cdr__backend_read(), 4096, &got, &s);
		cr_assert_eq(rc, -EBADMSG, "%s at %zu (%s): rc %d", what, at,
			     pipe_it ? "pipe" : "file", rc);
		cr_assert(strstr(s.why, "corrupt") || strstr(s.why, "truncated"),
			  "%s at %zu: why '%s'", what, at, s.why);
		free(got.p);
	}
}

/* Every prefix that is not a whole member/frame sequence fails. */
Test(source, every_cut_fails)
{
	blob t = text(0, 60);
	for (int k = K_GZIP; k < NKIND; k++) {
		size_t split[3] = {0};
		blob enc = encode(k, &t, split);
		size_t magic = k <= K_GZIP3 ? 2 : 4;
		int multi = k == K_GZIP3 || k == K_ZSTD3;
		for (size_t n = magic; n < enc.n; n++) {
			if (multi && (n == split[0] || n == split[1]))
				continue; /* whole members/frames: valid */
			blob cut = {enc.p, n};
			expect_bad(&cut, kind_name[k], n);
		}
		free(enc.p);
	}
	free(t.p);
}

/* Every byte inverted, past the header fields nothing checks (gzip's
 * MTIME, XFL, OS; zstd's frame header, where a larger window is still
 * valid), fails: gzip through its CRC-32 and length, zstd through its
 * block structure and frame checksum. */
Test(source, every_inverted_byte_fails)
{
	blob t = text(0, 60);
	for (int k = K_GZIP; k < NKIND; k++) {
		blob enc = encode(k, &t, NULL);
		size_t from = k <= K_GZIP3 ? 10 : 6;
		for (size_t i = from; i < enc.n; i++) {
			if (k == K_GZIP3 || k == K_ZSTD3)
				break; /* one member/frame is enough here */
			enc.p[i] ^= 0xff;
			expect_bad(&enc, kind_name[k], i);
			enc.p[i] ^= 0xff;
		}
		free(enc.p);
	}
	free(t.p);
}

Test(source, trailing_bytes_after_the_last_member_fail)
{
	blob t = text(0, 60);
	static const char *const tails[] = {"garbage\n", "\0\0\0\0", "\x1f"};
	static const size_t tail_n[] = {8, 4, 1};
	for (int k = K_GZIP; k < NKIND; k++)
		for (size_t i = 0; i < 3; i++) {
			blob enc = encode(k, &t, NULL);
			blob_add(&enc, tails[i], tail_n[i]);
			expect_bad(&enc, kind_name[k], i);
			free(enc.p);
		}
	free(t.p);
}

/* ---- through a run --------------------------------------------------- */

/* Rate `inputs` with the test tariff; the totals CSV. */
static char *rate(const char *const *inputs, size_t n, cdr_io io,
		  cdr_run_stats *st, int *rc)
{
	char *tdir = tu_tariff();
	cdr_tariff *t = tu_load(tdir, err);
	cr_assert_not_null(t, "%s", err);
	cdr_run_opts o;
	memset(&o, 0, sizeof(o));
	o.period_year = 2026;
	o.period_month = 10;
	o.threads = 2;
	o.io = io;
	cdr_run *r;
	cr_assert_eq(cdr_run_create(&r, &t, 1, &o, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(cdr_run_add_input(r, inputs[i], err, sizeof(err)), 0);
	char *buf = NULL;
	size_t len = 0;
	*rc = cdr_run_execute(r, err, sizeof(err));
	if (!*rc) {
		char *tot = NULL;
		cr_assert_eq(cdr_run_totals(r, 0, &tot, &len), 0);
		buf = strndup(tot, len); /* a string, for cr_assert_str_eq */
		free(tot);
		cdr_run_stats_get(r, st);
	}
	cdr_run_free(r);
	cdr_tariff_free(t);
	tu_rmdir(tdir);
	return buf;
}

Test(source, run_gives_the_plain_totals_and_counts_files)
{
	/* Duplicates inside each input and across them: c0..c9999, then
	 * c5000..c5999 again (the same lines). */
	blob t = text(0, 10000), again = text(5000, 6000);
	blob_add(&t, again.p, again.n);
	char p[3][640];
	const char *in[3] = {p[0], p[1], p[2]};
	for (int i = 0; i < 3; i++)
		snprintf(p[i], sizeof(p[i]), "%s/in%d", dir, i);
	blob gz = encode(K_GZIP3, &t, NULL), zs = encode(K_ZSTD3, &t, NULL);
	put_file(p[0], t.p, t.n);
	put_file(p[1], gz.p, gz.n);
	put_file(p[2], zs.p, zs.n);
	cdr_run_stats st;
	int rc;
	char *want = rate(in, 1, CDR_IO_READ, &st, &rc);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(st.by_reason[CDR_R_DUPLICATE], 1000);
	for (int io = 0; io < 2; io++) {
		cdr_io mode = io ? CDR_IO_URING : CDR_IO_READ;
		for (int k = 1; k < 3; k++) {
			char *got = rate(in + k, 1, mode, &st, &rc);
			cr_assert_eq(rc, 0, "%s", err);
			cr_assert_str_eq(got, want, "%s", in[k]);
			cr_assert_eq(st.by_reason[CDR_R_DUPLICATE], 1000);
			cr_assert_eq(st.files_by_comp[k], 1);
			free(got);
		}
		/* All three: every line of the second and third is a
		 * duplicate of the first's. */
		char *all = rate(in, 3, mode, &st, &rc);
		cr_assert_eq(rc, 0, "%s", err);
		cr_assert_eq(st.by_reason[CDR_R_DUPLICATE], 1000 + 2 * 11000);
		cr_assert_eq(st.files_by_comp[CDR_COMP_NONE], 1);
		cr_assert_eq(st.files_by_comp[CDR_COMP_GZIP], 1);
		cr_assert_eq(st.files_by_comp[CDR_COMP_ZSTD], 1);
		free(all);
	}
	/* A corrupt member stops the run naming the file. */
	gz.p[gz.n / 2] ^= 0xff;
	put_file(p[1], gz.p, gz.n);
	char *none = rate(in, 2, CDR_IO_READ, &st, &rc);
	cr_assert_eq(rc, -EBADMSG);
	cr_assert_null(none);
	cr_assert(strstr(err, p[1]) && strstr(err, "corrupt gzip data"), "%s", err);
	free(want);
	free(gz.p);
	free(zs.p);
	free(t.p);
	free(again.p);
}

/* A collector appending a gzip member while the file is read: the new
 * member is valid and would be rated, but the sums would be of no file
 * that ever was. The raw bytes taken are checked against the size seen
 * at open, as for a plain file: the run stops naming it. */
static const char *grow_path;
static blob grow_member;
static ssize_t pread_growing(int fd, void *b, size_t n, off_t o)
{
	if (++nth == 1) {
		FILE *f = fopen(grow_path, "ab");
		cr_assert_not_null(f);
		fwrite(grow_member.p, 1, grow_member.n, f);
		fclose(f);
	}
	return pread(fd, b, n, o);
}

Test(source, compressed_file_growing_while_read_stops_the_run)
{
	blob t = text(0, 100), more = text(100, 110);
	char p[640];
	snprintf(p, sizeof(p), "%s/grow.gz", dir);
	for (int k = K_GZIP; k < NKIND; k++) {
		blob enc = encode(k, &t, NULL);
		grow_member = encode(k, &more, NULL);
		put_file(p, enc.p, enc.n);
		grow_path = p;
		nth = 0;
		cdr__sys_table.pread = pread_growing;
		const char *in[1] = {p};
		cdr_run_stats st;
		int rc;
		char *tot = rate(in, 1, CDR_IO_READ, &st, &rc);
		cdr__sys_table = cdr__sys_default;
		cr_assert_eq(rc, -ESTALE, "%s: %d %s", kind_name[k], rc, err);
		cr_assert_null(tot);
		cr_assert(strstr(err, "grow.gz: changed while being rated"), "%s", err);
		free(enc.p);
		free(grow_member.p);
	}
	free(t.p);
	free(more.p);
}

/* ---- decoding again: regions and the spool of compressed bytes ------- */

/* A stream spooled as it is decoded, at an offset inside a file with
 * other bytes before and after: the spool holds exactly the compressed
 * bytes, and a region over them decodes to the text again without
 * reading the bytes after it (trailing garbage would fail a gzip). */
Test(source, spooled_stream_decodes_again_from_its_region)
{
	blob t = text(0, 3000);
	char sp[640];
	snprintf(sp, sizeof(sp), "%s/spool", dir);
	for (int k = K_GZIP; k < NKIND; k++) {
		blob enc = encode(k, &t, NULL);
		int p[2];
		cr_assert_eq(pipe(p), 0);
		feeder f = {p[1], enc.p, enc.n, 0};
		cr_assert_eq(pthread_create(&f.th, NULL, feed, &f), 0);
		int sfd = open(sp, O_RDWR | O_CREAT | O_TRUNC, 0600);
		cr_assert_geq(sfd, 0);
		cr_assert_eq(pwrite(sfd, "before", 6, 0), 6);
		cdr__source s;
		cr_assert_eq(cdr__source_open(&s, p[0], cdr__backend_read(), 0), 0);
		cr_assert_eq(s.comp, kind_comp[k]);
		cdr__source_spool(&s, sfd, 6);
		blob got = {0};
		char buf[70000];
		ssize_t n;
		while ((n = cdr__source_fill(&s, buf, sizeof(buf))) > 0)
			blob_add(&got, buf, (size_t)n);
		cr_assert_eq(n, 0, "%s: %s", kind_name[k], s.why);
		expect_same(&got, &t, kind_name[k]);
		cr_assert_eq(s.spooled, enc.n, "%s: every raw byte spooled", kind_name[k]);
		cdr__source_close(&s);
		close(p[0]);
		pthread_join(f.th, NULL);
		cr_assert_eq(pwrite(sfd, "garbage", 7, (off_t)(6 + enc.n)), 7);
		unsigned char *back = malloc(enc.n);
		cr_assert_eq(pread(sfd, back, enc.n, 6), (ssize_t)enc.n);
		cr_assert(!memcmp(back, enc.p, enc.n), "%s: spool differs", kind_name[k]);
		free(back);
		/* Decoded again from the region, in small fills. */
		cr_assert_eq(cdr__source_open_region(&s, sfd, 6, enc.n), 0);
		cr_assert_eq(s.comp, kind_comp[k]);
		free(got.p);
		got = (blob){0};
		while ((n = cdr__source_fill(&s, buf, 1000)) > 0)
			blob_add(&got, buf, (size_t)n);
		cr_assert_eq(n, 0, "%s region: %s", kind_name[k], s.why);
		expect_same(&got, &t, kind_name[k]);
		cdr__source_close(&s);
		close(sfd);
		free(got.p);
		free(enc.p);
	}
	free(t.p);
}

/* A failed write to the spool fails the fill, and says so. */
static ssize_t pwrite_enospc(int fd, const void *b, size_t n, off_t o)
{
	(void)fd, (void)b, (void)n, (void)o;
	errno = ENOSPC;
	return -1;
}

Test(source, spool_write_failure_fails_the_fill)
{
	blob t = text(0, 100), enc = encode(K_ZSTD, &t, NULL);
	put_file(path, enc.p, enc.n);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cdr__source s;
	cr_assert_eq(cdr__source_open(&s, fd, cdr__backend_read(), 1), 0);
	cdr__source_spool(&s, fd, 0);
	cdr__sys_table.pwrite = pwrite_enospc;
	char buf[4096];
	cr_assert_eq(cdr__source_fill(&s, buf, sizeof(buf)), -ENOSPC);
	cr_assert(strstr(s.why, "spooling: No space left"), "%s", s.why);
	cdr__sys_table = cdr__sys_default;
	cdr__source_close(&s);
	close(fd);
	free(enc.p);
	free(t.p);
}

/* ---- decoding again: runs with duplicates ---------------------------- */

/* c0..c9999 then c5000..c5999 again: 1000 duplicates. */
static blob dup_text(void)
{
	blob t = text(0, 10000), again = text(5000, 6000);
	blob_add(&t, again.p, again.n);
	free(again.p);
	return t;
}

typedef struct fifo_feed {
	const char *path;
	blob b;
	pthread_t th;
} fifo_feed;

static void *feed_fifo(void *arg)
{
	fifo_feed *f = arg;
	int fd = open(f->path, O_WRONLY);
	if (fd >= 0) {
		for (size_t at = 0; at < f->b.n;) {
			ssize_t w = write(fd, f->b.p + at, f->b.n - at);
			if (w <= 0)
				break;
			at += (size_t)w;
		}
		close(fd);
	}
	return NULL;
}

/* A compressed FIFO's duplicates are read back from the spool of its
 * compressed bytes; a compressed file's by decoding it again, also with
 * short reads and EINTR: the plain file's totals either way. */
Test(source, duplicates_of_compressed_streams_and_files)
{
	blob t = dup_text();
	char plain[640], fifo[640], file[640];
	snprintf(plain, sizeof(plain), "%s/plain", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	snprintf(file, sizeof(file), "%s/file", dir);
	put_file(plain, t.p, t.n);
	const char *pin[1] = {plain}, *fin[1] = {fifo}, *rin[1] = {file};
	cdr_run_stats st;
	int rc;
	char *want = rate(pin, 1, CDR_IO_READ, &st, &rc);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	for (int k = K_GZIP; k < NKIND; k++) {
		fifo_feed f = {fifo, encode(k, &t, NULL), 0};
		cr_assert_eq(pthread_create(&f.th, NULL, feed_fifo, &f), 0);
		char *got = rate(fin, 1, CDR_IO_URING, &st, &rc);
		pthread_join(f.th, NULL);
		cr_assert_eq(rc, 0, "%s: %s", kind_name[k], err);
		cr_assert_str_eq(got, want, "%s through a FIFO", kind_name[k]);
		cr_assert_eq(st.by_reason[CDR_R_DUPLICATE], 1000);
		free(got);
		put_file(file, f.b.p, f.b.n);
		cdr__sys_table.read = read_short;
		cdr__sys_table.pread = pread_short;
		nth = 0;
		got = rate(rin, 1, CDR_IO_READ, &st, &rc);
		cdr__sys_table = cdr__sys_default;
		cr_assert_eq(rc, 0, "%s: %s", kind_name[k], err);
		cr_assert_str_eq(got, want, "%s file, short reads", kind_name[k]);
		cr_assert_eq(st.by_reason[CDR_R_DUPLICATE], 1000);
		free(got);
		free(f.b.p);
	}
	free(want);
	free(t.p);
}

/* The third pread at offset 0 of a run over one compressed file is the
 * first of decoding it again (the pass read the magic, then the data). */
static unsigned at0;
static ssize_t pread_eio_third_at0(int fd, void *b, size_t n, off_t o)
{
	if (o == 0 && ++at0 == 3) {
		errno = EIO;
		return -1;
	}
	return pread(fd, b, n, o);
}

/* The file replaced (renamed over) while the pass reads it: the pass
 * reads the old bytes through its descriptor, decoding again would read
 * the new ones. */
static const char *swap_from, *swap_to;
static ssize_t pread_swapping(int fd, void *b, size_t n, off_t o)
{
	if (++nth == 1)
		cr_assert_eq(rename(swap_from, swap_to), 0);
	return pread(fd, b, n, o);
}

/* Every failure while decoding again stops the run naming the input, in
 * its own words: the candidates' file unwritable, a read error, the file
 * no longer the one that was read. A compressed stream whose spool
 * cannot be written stops the run as well. */
Test(source, decoding_again_fails_cleanly)
{
	blob t = dup_text();
	char file[640], other[640], fifo[640];
	snprintf(file, sizeof(file), "%s/dups.gz", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	const char *in[1] = {file}, *fin[1] = {fifo};
	cdr_run_stats st;
	int rc;
	signal(SIGPIPE, SIG_IGN); /* the run stops reading the FIFO early */
	for (int k = K_GZIP; k < NKIND; k++) {
		blob enc = encode(k, &t, NULL);
		put_file(file, enc.p, enc.n);
		/* The run's only pwrite is to the candidates' file. */
		cdr__sys_table.pwrite = pwrite_enospc;
		char *tot = rate(in, 1, CDR_IO_READ, &st, &rc);
		cdr__sys_table = cdr__sys_default;
		cr_assert_eq(rc, -ENOSPC, "%s: %d %s", kind_name[k], rc, err);
		cr_assert_null(tot);
		cr_assert(strstr(err, "dups.gz: decoding again for duplicates: No space"),
			  "%s", err);

		at0 = 0;
		cdr__sys_table.pread = pread_eio_third_at0;
		tot = rate(in, 1, CDR_IO_READ, &st, &rc);
		cdr__sys_table = cdr__sys_default;
		cr_assert_eq(rc, -EIO, "%s: %d %s", kind_name[k], rc, err);
		cr_assert_null(tot);
		cr_assert(strstr(err, "dups.gz: read error"), "%s", err);
		cr_assert_eq(at0, 3, "the fault was in decoding again");

		/* Same bytes under a new inode: still not the file read. */
		put_file(other, enc.p, enc.n);
		swap_from = other;
		swap_to = file;
		nth = 0;
		cdr__sys_table.pread = pread_swapping;
		tot = rate(in, 1, CDR_IO_READ, &st, &rc);
		cdr__sys_table = cdr__sys_default;
		cr_assert_eq(rc, -ESTALE, "%s: %d %s", kind_name[k], rc, err);
		cr_assert_null(tot);
		cr_assert(strstr(err, "dups.gz: changed while being rated"), "%s", err);

		fifo_feed f = {fifo, enc, 0};
		cr_assert_eq(pthread_create(&f.th, NULL, feed_fifo, &f), 0);
		cdr__sys_table.pwrite = pwrite_enospc;
		tot = rate(fin, 1, CDR_IO_READ, &st, &rc);
		cdr__sys_table = cdr__sys_default;
		pthread_join(f.th, NULL);
		cr_assert_eq(rc, -ENOSPC, "%s: %d %s", kind_name[k], rc, err);
		cr_assert_null(tot);
		cr_assert(strstr(err, "fifo: spooling: No space"), "%s", err);
		free(enc.p);
	}
	free(t.p);
}

/* Lines decoded again are looked for in 1 MiB windows (dedup.c's
 * CX_WIN): duplicates whose first copies straddle the first two window
 * boundaries, and the input's last line, without its '\n', a duplicate
 * too. The compressed file gives the plain file's totals and counts. */
Test(source, duplicates_across_decode_windows)
{
	const size_t win = (size_t)1 << 20;
	blob t = text(0, 40000), tail = {0};
	cr_assert_gt(t.n, 2 * win + 1000);
	size_t straddle = 0;
	for (size_t a = 0; a < t.n;) {
		const unsigned char *nl = memchr(t.p + a, '\n', t.n - a);
		size_t e = (size_t)(nl - t.p) + 1;
		for (size_t k = 1; k <= 2; k++)
			if (a < k * win + 100 && e > k * win - 100) {
				blob_add(&tail, t.p + a, e - a);
				straddle += a < k * win && e > k * win;
			}
		a = e;
	}
	cr_assert_geq(straddle, 2, "a line crosses each boundary");
	blob_add(&t, tail.p, tail.n);
	/* Line 0 again, without its '\n' (copied first: blob_add moves t). */
	const unsigned char *nl0 = memchr(t.p, '\n', t.n);
	blob first = {0};
	blob_add(&first, t.p, (size_t)(nl0 - t.p));
	blob_add(&t, first.p, first.n);
	free(first.p);
	size_t dups = 0;
	for (size_t i = 0; i < tail.n; i++)
		dups += tail.p[i] == '\n';
	dups++;
	char plain[640], comp[640];
	snprintf(plain, sizeof(plain), "%s/plain", dir);
	snprintf(comp, sizeof(comp), "%s/comp", dir);
	put_file(plain, t.p, t.n);
	const char *pin[1] = {plain}, *cin[1] = {comp};
	cdr_run_stats st;
	int rc;
	char *want = rate(pin, 1, CDR_IO_READ, &st, &rc);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(st.by_reason[CDR_R_DUPLICATE], dups);
	for (int k = K_GZIP; k < NKIND; k++) {
		blob enc = encode(k, &t, NULL);
		put_file(comp, enc.p, enc.n);
		char *got = rate(cin, 1, CDR_IO_URING, &st, &rc);
		cr_assert_eq(rc, 0, "%s: %s", kind_name[k], err);
		cr_assert_str_eq(got, want, "%s", kind_name[k]);
		cr_assert_eq(st.by_reason[CDR_R_DUPLICATE], dups, "%s", kind_name[k]);
		free(got);
		free(enc.p);
	}
	free(want);
	free(tail.p);
	free(t.p);
}
