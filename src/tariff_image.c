/*
 * tariff_image.c - a compiled image of a tariff's subscriber tables, which
 * a run maps instead of parsing subscribers.csv (cdr_tariff_load_cached,
 * `--tariff-cache FILE`).
 *
 * Loading a million subscribers from CSV costs about 0.3 s, and most of
 * it is not instructions but some 400 MB of fresh pages faulting in (the
 * file's text, the parsed rows, the number table, the sorted rows: see
 * bench/README.md, "The tariff load"). The image holds the tables that
 * load builds - the number table's slots, the rows, the packages of the
 * rows, which services their allowances cover, the numbers' and
 * accounts' text - exactly as the lookups read them, with offsets and
 * indexes where the tariff holds pointers. A run maps the file read-only
 * from the page cache: no parsing, no interning, no sorting, and no fresh
 * memory but the two small pointer arrays (subscriber numbers, account
 * names) the rest of the code expects.
 *
 * File layout (native byte order, which the header records):
 *
 *   header     magic, format, cdrate version, byte order, the sizes of
 *              the structures, the file's size, the tariff's fingerprint
 *              (XXH3-128 over its files, cdr_tariff_fingerprint), a key
 *              of the plans and packages the indexes refer to, counts,
 *              the number table's shard masks, and each section's
 *              offset, length and XXH3-64; its own XXH3-64 last.
 *   sections   text (NUL-terminated numbers and accounts), subscribers
 *              ({text offset, first row, rows} each), rows (cdr__sub_row
 *              as is), row packages, row allowance services, account
 *              text offsets, then the 16 shards of 64-byte slots; each
 *              at a 64-byte boundary, and a 2 MiB one when it is large.
 *
 * Trust. An image is used only when every check passes: magic, format,
 * version and byte order; structure sizes; the file's size equal to the
 * recorded one (a truncated or extended file fails); every section in
 * bounds; the header's and every section's checksum; the fingerprint
 * equal to the one of the tariff's files as read now (any edit of any
 * tariff file, subscribers.csv or --subscribers included, makes it
 * stale); and after the small files are loaded, their plans and packages
 * equal to the ones the image's indexes name (a file changed between the
 * fingerprint and its load). Otherwise the CSV is loaded as without a
 * cache, and the caller may write a new image. The checksums find damage
 * (a torn write, a bad block, a bit flip, a copy cut short), not forgery:
 * whoever can write the image can make it say anything, as whoever can
 * write subscribers.csv can, so it needs the tariff's protection.
 *
 * Writing beside a run (cdr_tariff_cache_start, _join). A million
 * subscribers' image is 230 MB to hash, write and fsync, about 1.3 s, so
 * a run writes it on a thread of its own while it rates: the tariff is
 * read-only from its load on (every call of the pass takes it const).
 * The thread only fills and fsyncs the temporary the caller's thread
 * opened; naming and renaming it, the steps a signal handler must see
 * in order (write.c, "Signals"), stay on the caller's thread, at the
 * join.
 *
 * Sections: format - writing - opening and checking - attaching -
 * the public calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"
#include "sys.h"
#include "tariff_image.h"
#include "write.h"

/* ---- format ---------------------------------------------------------- */

#define TIMG_MAGIC "CDRTIMG\n"
#define TIMG_FORMAT 1u
#define TIMG_ENDIAN 0x01020304u
#define TIMG_BIG ((uint64_t)2 << 20) /* sections this large: 2 MiB aligned */

enum { S_TEXT, S_SUBS, S_ROWS, S_PKGS, S_ALLOW, S_ACCTS, S_SLOTS,
       S_N = S_SLOTS + SUB_SHARDS };

typedef struct timg_sec {
	uint64_t off, len, hash;
} timg_sec;

/* A subscriber in the image: cdr__subscriber with an offset for its
 * number. */
typedef struct timg_sub {
	uint64_t off;
	uint32_t first_row, nrows;
} timg_sub;

typedef struct timg_hdr {
	char magic[8];
	uint32_t endian, format;
	char version[16];
	uint32_t hdr_size, slot_size, row_size, sub_size;
	uint64_t file_size;
	char fp[CDR_FINGERPRINT_HEX];
	char pad0[7];
	uint64_t tkey; /* plans and packages (tariff_key) */
	uint32_t nplans, npackages;
	uint32_t nsubs, nrows, naccounts, dash_account;
	uint64_t npk; /* row package entries */
	uint32_t mask[SUB_SHARDS], n[SUB_SHARDS];
	timg_sec sec[S_N];
	uint64_t hdr_hash; /* XXH3-64 of the header up to here */
} timg_hdr;

struct cdr__timg {
	char *map;
	size_t len;
	timg_hdr h;
	/* number table shards copied to huge pages (cdr__timg_copy) */
	subslot *copy[SUB_SHARDS];
};

/* The plans and packages the rows' indexes name: their names in order,
 * and the services each package's allowances cover (row_allow_svc). */
static uint64_t tariff_key(const cdr_tariff *t)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return 0;
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, &t->nplans, sizeof(t->nplans));
	for (uint32_t i = 0; i < t->nplans; i++)
		XXH3_64bits_update(st, t->plans[i].name,
				   strlen(t->plans[i].name) + 1);
	XXH3_64bits_update(st, &t->npackages, sizeof(t->npackages));
	for (uint32_t i = 0; i < t->npackages; i++) {
		const cdr__package *p = &t->packages[i];
		uint8_t m = 0;
		for (uint32_t j = 0; j < p->nallow; j++)
			m |= (uint8_t)(1u << t->allows[p->first_allow + j].service);
		XXH3_64bits_update(st, p->name, strlen(p->name) + 1);
		XXH3_64bits_update(st, &m, 1);
	}
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

static uint64_t hdr_hash(const timg_hdr *h)
{
	return XXH3_64bits(h, offsetof(timg_hdr, hdr_hash));
}

/* ---- writing --------------------------------------------------------- */

typedef int (*put_fn)(void *ctx, const void *buf, size_t len);

/* Zeros up to offset `to`. */
static int put_pad(put_fn put, void *ctx, uint64_t *at, uint64_t to)
{
	static const char zero[4096];
	while (*at < to) {
		size_t n = to - *at < sizeof(zero) ? (size_t)(to - *at)
						    : sizeof(zero);
		int rc = put(ctx, zero, n);
		if (rc)
			return rc;
		*at += n;
	}
	return 0;
}

/* The image of t's subscriber tables, through put(ctx, ...) in order. */
static int timg_put(const cdr_tariff *t, const char *fp, put_fn put,
		    void *ctx)
{
	const cdr__submap *m = t->sub_map;
	timg_hdr h;
	const void *src[S_N];
	char *text = NULL;
	timg_sub *subs = NULL;
	uint64_t *accts = NULL;
	int rc = 0;
	memset(&h, 0, sizeof(h));
	if (!m || strlen(fp) != CDR_FINGERPRINT_HEX - 1)
		return -EINVAL;

	/* The numbers' and accounts' text, each NUL-terminated. */
	uint64_t tl = 1;
	for (uint32_t i = 0; i < t->nsubs; i++)
		tl += strlen(t->subs[i].num) + 1;
	for (uint32_t i = 0; i < t->naccounts; i++)
		tl += strlen(t->accounts[i]) + 1;
	text = malloc(tl);
	subs = malloc(((size_t)t->nsubs + 1) * sizeof(*subs));
	accts = malloc(((size_t)t->naccounts + 1) * sizeof(*accts));
	if (!text || !subs || !accts) {
		rc = -ENOMEM;
		goto done;
	}
	uint64_t o = 0;
	for (uint32_t i = 0; i < t->nsubs; i++) {
		size_t n = strlen(t->subs[i].num) + 1;
		subs[i] = (timg_sub){o, t->subs[i].first_row, t->subs[i].nrows};
		memcpy(text + o, t->subs[i].num, n);
		o += n;
	}
	for (uint32_t i = 0; i < t->naccounts; i++) {
		size_t n = strlen(t->accounts[i]) + 1;
		accts[i] = o;
		memcpy(text + o, t->accounts[i], n);
		o += n;
	}
	text[o++] = '\0';
	uint64_t npk = 0;
	for (uint32_t i = 0; i < t->nrows; i++)
		npk += t->rows[i].npkg;

	memcpy(h.magic, TIMG_MAGIC, 8);
	h.endian = TIMG_ENDIAN;
	h.format = TIMG_FORMAT;
	snprintf(h.version, sizeof(h.version), "%s", CDR_VERSION_STRING);
	h.hdr_size = sizeof(h);
	h.slot_size = sizeof(subslot);
	h.row_size = sizeof(cdr__sub_row);
	h.sub_size = sizeof(timg_sub);
	memcpy(h.fp, fp, CDR_FINGERPRINT_HEX);
	h.tkey = tariff_key(t);
	h.nplans = t->nplans;
	h.npackages = t->npackages;
	h.nsubs = t->nsubs;
	h.nrows = t->nrows;
	h.naccounts = t->naccounts;
	h.dash_account = t->dash_account;
	h.npk = npk;
	uint64_t len[S_N];
	src[S_TEXT] = text, len[S_TEXT] = o;
	src[S_SUBS] = subs, len[S_SUBS] = (uint64_t)t->nsubs * sizeof(*subs);
	src[S_ROWS] = t->rows,
	len[S_ROWS] = (uint64_t)t->nrows * sizeof(cdr__sub_row);
	src[S_PKGS] = t->row_pkgs, len[S_PKGS] = npk * sizeof(uint32_t);
	src[S_ALLOW] = t->row_allow_svc, len[S_ALLOW] = t->nrows;
	src[S_ACCTS] = accts, len[S_ACCTS] = (uint64_t)t->naccounts * 8;
	for (unsigned k = 0; k < SUB_SHARDS; k++) {
		h.mask[k] = m->mask[k];
		h.n[k] = m->n[k];
		src[S_SLOTS + k] = m->s[k];
		len[S_SLOTS + k] = ((uint64_t)m->mask[k] + 1) * sizeof(subslot);
	}
	uint64_t at = sizeof(h);
	for (int s = 0; s < S_N; s++) {
		uint64_t a = len[s] >= TIMG_BIG ? TIMG_BIG : 64;
		at = (at + a - 1) / a * a;
		h.sec[s] = (timg_sec){at, len[s],
				      len[s] ? XXH3_64bits(src[s], len[s]) : 0};
		at += len[s];
	}
	h.file_size = at;
	h.hdr_hash = hdr_hash(&h);

	at = 0;
	rc = put(ctx, &h, sizeof(h));
	at = sizeof(h);
	for (int s = 0; !rc && s < S_N; s++) {
		rc = put_pad(put, ctx, &at, h.sec[s].off);
		if (!rc && len[s])
			rc = put(ctx, src[s], len[s]);
		at += len[s];
	}
done:
	free(text);
	free(subs);
	free(accts);
	return rc;
}

/* ---- opening and checking -------------------------------------------- */

static int whyf(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int whyf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (whylen)
		vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return 1;
}

/* Sections [lo, hi) of an image checked against their hashes. */
typedef struct sum_job {
	const cdr__timg *img;
	int lo, hi;
	int bad; /* the first section that failed + 1 */
} sum_job;

static void *sum_part(void *arg)
{
	sum_job *j = arg;
	for (int s = j->lo; s < j->hi && !j->bad; s++) {
		const timg_sec *x = &j->img->h.sec[s];
		if (x->len && XXH3_64bits(j->img->map + x->off, x->len) != x->hash)
			j->bad = s + 1;
	}
	return NULL;
}

/* Every section's checksum, the sections split in two halves by bytes,
 * the second on a thread of its own when one starts. */
static int sums_ok(const cdr__timg *img)
{
	uint64_t total = 0, half = 0;
	int cut = 0;
	for (int s = 0; s < S_N; s++)
		total += img->h.sec[s].len;
	while (cut < S_N && (half + img->h.sec[cut].len) * 2 <= total)
		half += img->h.sec[cut++].len;
	sum_job j[2] = {{img, 0, cut, 0}, {img, cut, S_N, 0}};
	pthread_t th;
	int two = pthread_create(&th, NULL, sum_part, &j[1]) == 0;
	sum_part(&j[0]);
	if (two)
		pthread_join(th, NULL);
	else
		sum_part(&j[1]);
	return !j[0].bad && !j[1].bad;
}

/* How the number table is used: 0 in place (mapped), 1 copied into
 * huge-page memory. In place is as fast for the pass (bench/README.md,
 * "The tariff image"): the kernel maps the page cache's large folios of
 * the image with 2 MiB entries, which is why large sections sit on 2 MiB
 * boundaries of the file. The copy stays for tests and measurements. */
int cdr__timg_copy = 0;

int cdr__timg_open(cdr__timg **out, const char *path, const char *fp,
		   char *why, size_t whylen)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? whyf(why, whylen, "no image yet")
				       : whyf(why, whylen, "cannot open: %s",
					      strerror(errno));
	struct stat st;
	timg_hdr h;
	int r = 1;
	if (fstat(fd, &st)) {
		whyf(why, whylen, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		whyf(why, whylen, "not a regular file");
		goto fail;
	}
	if ((size_t)st.st_size < sizeof(h) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		whyf(why, whylen, "truncated (%lld bytes)",
		     (long long)st.st_size);
		goto fail;
	}
	if (memcmp(h.magic, TIMG_MAGIC, 8) != 0) {
		whyf(why, whylen, "not a tariff image");
		goto fail;
	}
	if (h.endian != TIMG_ENDIAN) {
		whyf(why, whylen, "made on a machine of another byte order");
		goto fail;
	}
	if (h.format != TIMG_FORMAT || h.hdr_size != sizeof(h) ||
	    memchr(h.version, '\0', sizeof(h.version)) == NULL ||
	    strcmp(h.version, CDR_VERSION_STRING) != 0 ||
	    h.slot_size != sizeof(subslot) ||
	    h.row_size != sizeof(cdr__sub_row) ||
	    h.sub_size != sizeof(timg_sub)) {
		whyf(why, whylen, "made by another version of cdrate");
		goto fail;
	}
	if (hdr_hash(&h) != h.hdr_hash) {
		whyf(why, whylen, "corrupt (header checksum)");
		goto fail;
	}
	if (h.file_size != (uint64_t)st.st_size) {
		whyf(why, whylen, "truncated or extended (%lld bytes, made "
		     "with %llu)", (long long)st.st_size,
		     (unsigned long long)h.file_size);
		goto fail;
	}
	if (h.fp[CDR_FINGERPRINT_HEX - 1] != '\0' || strcmp(h.fp, fp) != 0) {
		whyf(why, whylen, "stale: made for tariff files of another "
		     "fingerprint");
		goto fail;
	}
	/* Sections in bounds and of the sizes the counts give. */
	uint64_t want[S_N] = {
		[S_SUBS] = (uint64_t)h.nsubs * sizeof(timg_sub),
		[S_ROWS] = (uint64_t)h.nrows * sizeof(cdr__sub_row),
		[S_PKGS] = h.npk * sizeof(uint32_t),
		[S_ALLOW] = h.nrows,
		[S_ACCTS] = (uint64_t)h.naccounts * 8,
	};
	int ok = h.naccounts > h.dash_account;
	for (unsigned k = 0; ok && k < SUB_SHARDS; k++) {
		uint64_t cap = (uint64_t)h.mask[k] + 1;
		ok = (cap & (cap - 1)) == 0 && h.n[k] < cap;
		want[S_SLOTS + k] = cap * sizeof(subslot);
	}
	for (int s = 0; ok && s < S_N; s++) {
		const timg_sec *x = &h.sec[s];
		ok = x->off % 64 == 0 && x->off >= sizeof(h) &&
		     x->off <= h.file_size && x->len <= h.file_size - x->off &&
		     (s == S_TEXT ? x->len >= 1 : x->len == want[s]);
	}
	if (!ok) {
		whyf(why, whylen, "corrupt (sections out of bounds)");
		goto fail;
	}
	cdr__timg *img = calloc(1, sizeof(*img));
	if (!img) {
		r = -ENOMEM;
		goto fail;
	}
	img->h = h;
	img->len = (size_t)st.st_size;
	/* Read-only: nothing writes these tables after a load, and a
	 * stray write would fault instead of changing a bill. */
	img->map = mmap(NULL, img->len, PROT_READ, MAP_PRIVATE | MAP_POPULATE,
			fd, 0);
	close(fd);
	if (img->map == MAP_FAILED) {
		free(img);
		return whyf(why, whylen, "cannot map: %s", strerror(errno));
	}
	if (!sums_ok(img)) {
		cdr__timg_close(img);
		return whyf(why, whylen, "corrupt (checksum)");
	}
	if (img->map[h.sec[S_TEXT].off + h.sec[S_TEXT].len - 1] != '\0') {
		cdr__timg_close(img);
		return whyf(why, whylen, "corrupt (text)");
	}
	*out = img;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return r;
}

void cdr__timg_close(cdr__timg *img)
{
	if (!img)
		return;
	for (unsigned k = 0; k < SUB_SHARDS; k++)
		cdr__free_huge(img->copy[k]);
	if (img->map && img->map != MAP_FAILED)
		munmap(img->map, img->len);
	free(img);
}

/* ---- attaching ------------------------------------------------------- */

/* The pointer arrays the rest of the code reads: numbers (which 0) and
 * account names (1), offsets checked against the text. */
typedef struct ptr_job {
	cdr_tariff *t;
	const cdr__timg *img;
	int which, bad;
} ptr_job;

static void *make_ptrs(void *arg)
{
	ptr_job *j = arg;
	const timg_hdr *h = &j->img->h;
	char *text = j->img->map + h->sec[S_TEXT].off;
	const uint64_t tl = h->sec[S_TEXT].len;
	if (j->which == 0) {
		const timg_sub *s =
			(const timg_sub *)(const void *)(j->img->map +
							 h->sec[S_SUBS].off);
		cdr__subscriber *d = j->t->subs;
		for (uint32_t i = 0; i < h->nsubs; i++) {
			j->bad |= s[i].off >= tl;
			d[i].num = text + (s[i].off < tl ? s[i].off : tl - 1);
			d[i].first_row = s[i].first_row;
			d[i].nrows = s[i].nrows;
		}
	} else if (j->which == 1) {
		const uint64_t *a =
			(const uint64_t *)(const void *)(j->img->map +
							 h->sec[S_ACCTS].off);
		char **d = j->t->accounts;
		for (uint32_t i = 0; i < h->naccounts; i++) {
			j->bad |= a[i] >= tl;
			d[i] = text + (a[i] < tl ? a[i] : tl - 1);
		}
	}
	return NULL;
}

/* Shards [lo, hi) of the number table into huge-page memory. */
typedef struct copy_job {
	cdr__timg *img;
	unsigned lo, hi;
	int rc;
} copy_job;

static void *copy_part(void *arg)
{
	copy_job *j = arg;
	for (unsigned k = j->lo; k < j->hi && !j->rc; k++) {
		const timg_sec *x = &j->img->h.sec[S_SLOTS + k];
		j->img->copy[k] = cdr__calloc_huge(x->len / sizeof(subslot),
						   sizeof(subslot));
		if (!j->img->copy[k])
			j->rc = -ENOMEM;
		else
			memcpy(j->img->copy[k], j->img->map + x->off, x->len);
	}
	return NULL;
}

static void two(void *(*fn)(void *), void *a0, void *a1)
{
	pthread_t th;
	int t2 = pthread_create(&th, NULL, fn, a1) == 0;
	fn(a0);
	if (t2)
		pthread_join(th, NULL);
	else
		fn(a1);
}

int cdr__timg_attach(cdr_tariff *t, cdr__timg *img, char *why, size_t whylen)
{
	const timg_hdr *h = &img->h;
	if (h->nplans != t->nplans || h->npackages != t->npackages ||
	    h->tkey != tariff_key(t))
		return whyf(why, whylen, "stale: plans or packages changed "
			    "since the fingerprint");
	cdr__submap *m = calloc(1, sizeof(*m));
	t->subs = calloc((size_t)h->nsubs + 1, sizeof(*t->subs));
	t->accounts = calloc((size_t)h->naccounts + 1, sizeof(char *));
	if (!m || !t->subs || !t->accounts)
		goto oom;
	ptr_job pj[2] = {{t, img, 0, 0}, {t, img, 1, 0}};
	two(make_ptrs, &pj[0], &pj[1]);
	if (pj[0].bad || pj[1].bad) {
		free(m);
		free(t->subs);
		free(t->accounts);
		t->subs = NULL;
		t->accounts = NULL;
		return whyf(why, whylen, "corrupt (text offsets)");
	}
	if (cdr__timg_copy) {
		copy_job cj[2] = {{img, 0, SUB_SHARDS / 2, 0},
				  {img, SUB_SHARDS / 2, SUB_SHARDS, 0}};
		two(copy_part, &cj[0], &cj[1]);
		if (cj[0].rc || cj[1].rc)
			goto oom;
	}
	for (unsigned k = 0; k < SUB_SHARDS; k++) {
		m->s[k] = img->copy[k]
				  ? img->copy[k]
				  : (subslot *)(void *)(img->map +
							h->sec[S_SLOTS + k].off);
		m->mask[k] = h->mask[k];
		m->n[k] = h->n[k];
	}
	/* The tables are the mapping's; cdr__timg_detach gives them back
	 * (cdr_tariff_free frees none of them itself). */
	char *base = img->map;
	t->nsubs = h->nsubs;
	t->nrows = h->nrows;
	t->naccounts = h->naccounts;
	t->dash_account = h->dash_account;
	t->rows = (cdr__sub_row *)(void *)(base + h->sec[S_ROWS].off);
	t->row_pkgs = (uint32_t *)(void *)(base + h->sec[S_PKGS].off);
	t->row_allow_svc = (uint8_t *)(base + h->sec[S_ALLOW].off);
	t->sub_map = m;
	t->img = img;
	return 0;
oom:
	for (unsigned k = 0; k < SUB_SHARDS; k++) {
		cdr__free_huge(img->copy[k]);
		img->copy[k] = NULL;
	}
	free(m);
	free(t->subs);
	free(t->accounts);
	t->subs = NULL;
	t->accounts = NULL;
	return -ENOMEM;
}

void cdr__timg_detach(cdr_tariff *t)
{
	free(t->subs);
	free(t->accounts);
	free(t->sub_map);
	t->subs = NULL;
	t->accounts = NULL;
	t->sub_map = NULL;
	t->rows = NULL;
	t->row_pkgs = NULL;
	t->row_allow_svc = NULL;
	t->sub_text = NULL;
	cdr__timg_close(t->img);
	t->img = NULL;
}

/* ---- the public calls ------------------------------------------------ */

int cdr_tariff_load_cached(cdr_tariff **out, const char *dir,
			   const char *subscribers_path, const char *cache,
			   cdr_tariff_cache *info, char *err, size_t errlen)
{
	char e2[CDR_ERR_MAX];
	cdr__timg *img = NULL;
	int used = 0, rc;
	memset(info, 0, sizeof(*info));
	*out = NULL;
	/* The fingerprint first: the image must be of these bytes. A
	 * tariff that cannot be hashed is loaded as it is, so its error is
	 * the load's own. */
	if (cdr_tariff_fingerprint(dir, subscribers_path, info->fp,
				   &info->nfiles, e2, sizeof(e2))) {
		info->fp[0] = '\0';
		whyf(info->why, sizeof(info->why), "%s", e2);
		return cdr_tariff_load(out, dir, subscribers_path, err, errlen);
	}
	if (cache && (rc = cdr__timg_open(&img, cache, info->fp, info->why,
					  sizeof(info->why))) < 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	rc = cdr__tariff_load_img(out, dir, subscribers_path, img, &used,
				  info->why, sizeof(info->why), err, errlen);
	if (!used)
		cdr__timg_close(img); /* else the tariff's */
	info->used = !rc && used;
	if (info->used)
		info->why[0] = '\0';
	return rc;
}

typedef struct put_ctx {
	cdr_outputs *set;
	int id;
	char *err;
	size_t errlen;
} put_ctx;

static int put_out(void *ctx, const void *buf, size_t len)
{
	put_ctx *c = ctx;
	return cdr_outputs_write(c->set, c->id, buf, len, c->err, c->errlen);
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * One write of an image in three steps, so that the long middle one can
 * go to a thread (cdr_tariff_cache_start): open (the checks, the output
 * set of one, its temporary), fill (the bytes, fsynced: the 1.3 s of a
 * million subscribers) and commit (a name, the rename: milliseconds).
 * Open and commit are the only steps that touch the temporary-file
 * registry (write.c), and they run on the caller's thread.
 */
struct cdr_tariff_cache_job {
	const cdr_tariff *t;
	char fp[CDR_FINGERPRINT_HEX];
	char *path;
	cdr_outputs *set;
	int id;
	int rc; /* 0 or -errno with err */
	int threaded;
	pthread_t th;
	double t0, t1; /* open started, fill ended */
	char err[CDR_ERR_MAX];
};

/* A job for t's image at path; fp not a fingerprint's hex is kept as ""
 * (job_open refuses it). NULL: out of memory. */
static cdr_tariff_cache_job *job_new(const cdr_tariff *t, const char *fp,
				     const char *path)
{
	cdr_tariff_cache_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(path))) {
		free(j);
		return NULL;
	}
	j->t = t;
	if (fp && strlen(fp) == CDR_FINGERPRINT_HEX - 1)
		memcpy(j->fp, fp, CDR_FINGERPRINT_HEX);
	return j;
}

static int job_open(cdr_tariff_cache_job *j)
{
	struct stat st;
	const char *path = j->path;
	char *err = j->err;
	const size_t errlen = sizeof(j->err);
	int rc;
	if (!j->t->sub_map || strlen(j->fp) != CDR_FINGERPRINT_HEX - 1) {
		snprintf(err, errlen, "%s: no subscriber tables to write", path);
		return -EINVAL;
	}
	/* A cache is a file: never a device, FIFO or standard output. */
	if (!strcmp(path, "-") || (!stat(path, &st) && !S_ISREG(st.st_mode))) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if ((rc = cdr_outputs_create(&j->set))) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	if ((j->id = rc = cdr_outputs_add(j->set, NULL, path, err, errlen)) < 0 ||
	    (rc = cdr_outputs_protect(j->set, "the tariff", j->t->dir, err,
				      errlen)) ||
	    (rc = cdr_outputs_check(j->set, err, errlen)) ||
	    (rc = cdr_outputs_open(j->set, err, errlen)))
		return rc < 0 ? rc : -EINVAL;
	return 0;
}

/* The bytes, on disk: commit's own fsync then finds nothing to do. */
static int job_fill(cdr_tariff_cache_job *j)
{
	put_ctx c = {j->set, j->id, j->err, sizeof(j->err)};
	int rc = timg_put(j->t, j->fp, put_out, &c);
	if (rc == -ENOMEM)
		snprintf(j->err, sizeof(j->err), "out of memory");
	if (!rc && cdr__sys_table.fsync(cdr__outputs_fd(j->set, j->id)) &&
	    errno != EINVAL) {
		rc = -errno;
		snprintf(j->err, sizeof(j->err), "%s: cannot write: %s",
			 cdr__outputs_label(j->set, j->id), strerror(-rc));
	}
	return rc;
}

static void *job_run(void *arg)
{
	cdr_tariff_cache_job *j = arg;
	j->rc = job_fill(j);
	j->t1 = mono_now();
	return NULL;
}

static void job_free(cdr_tariff_cache_job *j)
{
	cdr_outputs_free(j->set); /* an uncommitted temporary vanishes */
	free(j->path);
	free(j);
}

int cdr_tariff_cache_start(cdr_tariff_cache_job **out, const cdr_tariff *t,
			   const char *fp, const char *path, char *err,
			   size_t errlen)
{
	cdr_tariff_cache_job *j = job_new(t, fp, path);
	*out = NULL;
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	j->t0 = mono_now();
	if ((j->rc = job_open(j))) {
		*out = j;
		return 0;
	}
	/* Every signal blocked on the writer, so that a handler (one that
	 * calls cdr_cleanup_temps) runs on a thread the registry is
	 * consistent for; the writer's temporary has no name to remove, or
	 * one that open registered. */
	sigset_t all, old;
	sigfillset(&all);
	int masked = !pthread_sigmask(SIG_SETMASK, &all, &old);
	j->threaded = !pthread_create(&j->th, NULL, job_run, j);
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!j->threaded) {
		j->rc = job_fill(j);
		j->t1 = mono_now();
	}
	*out = j;
	return 0;
}

int cdr_tariff_cache_join(cdr_tariff_cache_job *j, double *seconds,
			  char *err, size_t errlen)
{
	if (seconds)
		*seconds = 0;
	if (!j)
		return 0;
	if (j->threaded)
		pthread_join(j->th, NULL);
	int rc = j->rc;
	/* The time of the write itself, not of waiting for the join. */
	double t = mono_now();
	if (!rc)
		rc = cdr_outputs_commit(j->set, j->err, sizeof(j->err));
	if (rc)
		snprintf(err, errlen, "%s", j->err);
	else if (seconds)
		*seconds = j->t1 - j->t0 + (mono_now() - t);
	job_free(j);
	return rc < 0 ? rc : 0;
}

int cdr_tariff_cache_write(const cdr_tariff *t, const char *fp,
			   const char *path, char *err, size_t errlen)
{
	cdr_tariff_cache_job *j = job_new(t, fp, path);
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = job_open(j);
	if (!rc)
		rc = job_fill(j);
	if (!rc)
		rc = cdr_outputs_commit(j->set, j->err, sizeof(j->err));
	if (rc)
		snprintf(err, errlen, "%s", j->err);
	job_free(j);
	return rc < 0 ? rc : 0;
}
