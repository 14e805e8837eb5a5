/*
 * tariff.c - load, validate and index a tariff directory.
 *
 * A tariff is read once, checked completely (any error names file, line and
 * column, and nothing is rated), and turned into read-only lookup structures
 * that make the per-record work cheap:
 *
 *   zones      a 12-way trie over 0-9 * #: longest prefix and `=exact` in
 *              one walk, O(length of the number), and in front of it a
 *              table over the first four digits that answers most
 *              numbers in one index (the walk only goes on below a
 *              prefix that longer prefixes extend);
 *   bands      a band per minute for each of the 8 day types (mon..sun,
 *              holiday), and the same as runs for cutting split calls;
 *   rates      the keys rates.csv writes, in an open-addressing table,
 *              each with its rows sorted by `from`: a lookup follows the
 *              `*` fallback order, probing only keys the plan and zone
 *              have, then bisects the dated rows. A small tariff also
 *              gets every cell's timeline resolved ahead of time (an
 *              index and a tiny scan; one load for a cell with a single
 *              undated row), within a bound set by its rows;
 *   subscribers  sharded open-addressing tables (a multiply over the
 *              packed number) whose 64-byte
 *              slots hold the number packed into 128 bits, its row range
 *              and its first row's fields: one cache line per record.
 *
 * Every file is read with its lines checked as they arrive (at most 64
 * KiB, no NUL byte), and the load costs time and memory in proportion to
 * the rows written: nothing is sized by plans x zones x bands, and
 * duplicates are found by sorting, not by scanning.
 *
 * Sections: string maps - the subscriber table - CSV reading - tariff.conf
 * - zones - bands and holidays - plans and rates - packages - subscribers
 * - outages - rate index - load/free - lookups - describe.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "civil.h"
#include "internal.h"
#include "tariff_image.h"

/* ---- string maps ----------------------------------------------------- */

/*
 * Name -> index, open addressing with linear probing. The map does not own
 * the names; it points at the caller's array, which must not move while the
 * map is in use (we build the arrays first, then the map).
 */
typedef struct mslot {
	uint64_t h;
	uint32_t idx; /* index + 1; 0 = empty slot */
	uint32_t pad;
} mslot;

typedef struct cdr__map {
	mslot *s;
	uint32_t mask, n;
} cdr__map;

static cdr__map *map_new(uint32_t expect)
{
	uint32_t cap = 16;
	while (cap < expect * 2u + 16)
		cap <<= 1;
	cdr__map *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->s = calloc(cap, sizeof(*m->s));
	if (!m->s) {
		free(m);
		return NULL;
	}
	m->mask = cap - 1;
	return m;
}

static void map_free(cdr__map *m)
{
	if (!m)
		return;
	free(m->s);
	free(m);
}

/* The slot holding s, or the empty slot where it would go. */
static mslot *map_slot(const cdr__map *m, const char *const *keys,
		       const char *s, size_t n, uint64_t h)
{
	for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
		mslot *sl = &m->s[i];
		if (!sl->idx)
			return sl;
		assert(keys != NULL); /* a used slot names an existing key */
		if (sl->h == h && !memcmp(keys[sl->idx - 1], s, n) &&
		    keys[sl->idx - 1][n] == '\0')
			return sl;
	}
}

/* Index of s in the map, or -1. */
static int32_t map_get(const cdr__map *m, const char *const *keys,
		       const char *s, size_t n)
{
	const mslot *sl = map_slot(m, keys, s, n, XXH3_64bits(s, n));
	return (int32_t)sl->idx - 1;
}

/* Double the table, re-placing slots by their stored hashes. */
static int map_grow(cdr__map *m)
{
	uint32_t cap = (m->mask + 1) * 2;
	mslot *ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (uint32_t i = 0; i <= m->mask; i++) {
		if (!m->s[i].idx)
			continue;
		uint32_t j = (uint32_t)m->s[i].h & (cap - 1);
		while (ns[j].idx)
			j = (j + 1) & (cap - 1);
		ns[j] = m->s[i];
	}
	free(m->s);
	m->s = ns;
	m->mask = cap - 1;
	return 0;
}

/* ---- the subscriber table -------------------------------------------- */

/*
 * Number -> subscriber index, looked up once per record: the hottest
 * table. A slot holds the number itself, packed one digit per nibble
 * (digit + 1, so 0 ends it; 32 digits in 128 bits), next to its hash
 * (cdr__sub_hash_packed, of that packing):
 * a probe touches one 32-byte slot and never chases a pointer to compare
 * strings. Shards by the hash's top bits keep each table small enough to
 * size exactly and to build without one huge allocation. Read-only after
 * the load.
 */
/* SUB_SHARDS, subslot and cdr__submap: tariff_image.h (the image maps
 * them as they are). */

/* Pack up to 32 digits; callers have checked they are digits. */
static void sub_key(const char *num, size_t n, uint64_t *k0, uint64_t *k1)
{
	uint64_t a = 0, b = 0;
	for (size_t i = 0; i < n && i < 16; i++)
		a = a << 4 | (uint64_t)(num[i] - '0' + 1);
	for (size_t i = 16; i < n; i++)
		b = b << 4 | (uint64_t)(num[i] - '0' + 1);
	*k0 = a;
	*k1 = b;
}

static void submap_free(cdr__submap *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < SUB_SHARDS; i++)
		cdr__free_huge(m->s[i]);
	free(m);
}

/*
 * Shards sized for cnt[k] numbers at most (the rows that hash there), for
 * the shards with want[k] set (the others stay NULL, for another thread's
 * part of the table): the load stays at or below 3/4, so a load never
 * grows a shard, and the table is half the size of one kept under 1/2
 * (a 1M-number table: 128 MiB of slots instead of 256, every page of
 * them faulted in by the load).
 */
static cdr__submap *submap_sized(const uint32_t cnt[SUB_SHARDS], unsigned lo,
				 unsigned hi)
{
	cdr__submap *m = calloc(1, sizeof(*m));
	for (unsigned k = lo; m && k < hi; k++) {
		uint32_t cap = 16;
		while (cap < cnt[k] + cnt[k] / 2 + 16)
			cap <<= 1;
		m->s[k] = cdr__calloc_huge(cap, sizeof(subslot));
		m->mask[k] = cap - 1;
		if (!m->s[k]) {
			submap_free(m);
			return NULL;
		}
	}
	return m;
}

/* Double shard k, re-placing slots by their stored hashes. */
static int submap_grow(cdr__submap *m, unsigned k)
{
	uint32_t cap = (m->mask[k] + 1) * 2;
	subslot *ns = cdr__calloc_huge(cap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (uint32_t i = 0; i <= m->mask[k]; i++) {
		if (!m->s[k][i].nrows)
			continue;
		uint32_t j = (uint32_t)m->s[k][i].h & (cap - 1);
		while (ns[j].nrows)
			j = (j + 1) & (cap - 1);
		ns[j] = m->s[k][i];
	}
	cdr__free_huge(m->s[k]);
	m->s[k] = ns;
	m->mask[k] = cap - 1;
	return 0;
}

/*
 * While loading, a slot maps the number to its index within its shard
 * (kept in first_row, with nrows 1 marking the slot used); submap_finish
 * turns that into the row range. Returns the index, new (== next) or
 * existing, or -1 when out of memory. The packed key makes the comparison
 * exact without touching the number's text.
 */
static int64_t submap_intern(cdr__submap *m, const char *num, size_t len,
			     uint64_t h, uint32_t next)
{
	uint64_t k0, k1;
	unsigned k = (unsigned)(h >> (64 - SUB_SHARD_BITS));
	sub_key(num, len, &k0, &k1);
	if ((uint64_t)(m->n[k] + 1) * 4 > (uint64_t)(m->mask[k] + 1) * 3 &&
	    submap_grow(m, k))
		return -1;
	uint32_t j = (uint32_t)h & m->mask[k];
	for (;; j = (j + 1) & m->mask[k]) {
		subslot *sl = &m->s[k][j];
		if (!sl->nrows)
			break;
		if (sl->h == h && sl->k0 == k0 && sl->k1 == k1)
			return sl->first_row;
	}
	subslot *sl = &m->s[k][j];
	sl->h = h;
	sl->k0 = k0;
	sl->k1 = k1;
	sl->first_row = next;
	sl->nrows = 1;
	m->n[k]++;
	return next;
}

/* Shards lo..hi-1: each slot's shard index to its subscriber (gidx[k]),
 * then to the row range and the first row's fields. */
static void submap_finish(cdr__submap *m, unsigned lo, unsigned hi,
			  uint32_t *const gidx[SUB_SHARDS],
			  const cdr__subscriber *subs, const cdr__sub_row *rows)
{
	for (unsigned k = lo; k < hi; k++)
		for (uint32_t j = 0; j <= m->mask[k]; j++) {
			subslot *sl = &m->s[k][j];
			if (!sl->nrows)
				continue;
			const cdr__subscriber *sub = &subs[gidx[k][sl->first_row]];
			const cdr__sub_row *r = &rows[sub->first_row];
			sl->first_row = sub->first_row;
			sl->nrows = sub->nrows;
			sl->from_day = r->from_day;
			sl->to_day = r->to_day;
			sl->account = r->account;
			sl->plan = r->plan;
			sl->has_pkgs = r->npkg != 0;
		}
}

/* ---- CSV reading ----------------------------------------------------- */

#define MAXF 16

typedef struct csv {
	const char *name; /* file name for messages */
	char *data;
	size_t len, pos;
	uint32_t line;
	int nf;
	int bad_quote; /* the row has a quote that does not close */
	char *f[MAXF];
	size_t fl[MAXF]; /* their lengths */
	const char *const *cols; /* header names */
	int ncols, min_cols;
} csv;

typedef struct ld {
	cdr_tariff *t;
	char *err;
	size_t errlen;
	const char *file; /* the file being loaded, for out-of-memory */
	/* With shards > 0, only subscriber rows whose account is in bucket
	 * `bucket` are kept (cdr_tariff_load_bucket). */
	int shards, bucket;
} ld;

static int fail(ld *L, const char *file, uint32_t line, const char *col,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Copy s into out (size > 0) with control bytes written as \xNN: messages
 * echo values and paths from the files, and a stray ESC or CR must not
 * reach the user's terminal or split the one-line message. Shared with
 * diff.c (internal.h).
 */
void cdr__escape_ctl(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (; *s && o + 1 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 0x20 && ch != 0x7f) {
			out[o++] = (char)ch;
			continue;
		}
		if (o + 5 > size)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[ch >> 4];
		out[o++] = hex[ch & 15];
	}
	out[o] = '\0';
}

static int fail(ld *L, const char *file, uint32_t line, const char *col,
		const char *fmt, ...)
{
	char msg[CDR_ERR_MAX], whole[2 * CDR_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (col)
		snprintf(whole, sizeof(whole), "%s:%u: column %s: %s", file,
			 line, col, msg);
	else if (line)
		snprintf(whole, sizeof(whole), "%s:%u: %s", file, line, msg);
	else
		snprintf(whole, sizeof(whole), "%s: %s", file, msg);
	if (L->errlen)
		cdr__escape_ctl(L->err, L->errlen, whole);
	return -EINVAL;
}

/*
 * Longest tariff line: the CDR limit, far above any real row. It bounds
 * what an endless line (a device, a file without newlines) can make the
 * loader hold before it says where the line started.
 */
#define TARIFF_LINE_MAX CDR_LINE_MAX

/* Why read_all stopped early, for the message: the line it was on. */
typedef struct read_stop {
	uint32_t line;
	int why; /* 0, or -EFBIG (line too long), -EILSEQ (a NUL byte) */
} read_stop;

/*
 * Read a whole file, checking each line as it arrives: a NUL byte, or a
 * line longer than TARIFF_LINE_MAX, stops the read with the line's number
 * in *stop (-EINVAL returned). A directory is -EISDIR. Memory grows with
 * the file; an endless input stops after one line's worth.
 */
static int read_all(const char *path, char **out, size_t *len,
		    read_stop *stop)
{
	stop->line = 0;
	stop->why = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return -EISDIR;
	}
	size_t cap = 1 << 16, n = 0, line_start = 0;
	uint32_t line = 1;
	char *b = malloc(cap + 1);
	errno = 0; /* so that a failed fread's errno is its own */
	for (;;) {
		if (!b) {
			fclose(f);
			return -ENOMEM;
		}
		size_t got = fread(b + n, 1, cap - n, f);
		/* Check the new bytes: line ends, NULs, the line's length. */
		for (size_t i = n; i < n + got;) {
			const char *nl = memchr(b + i, '\n', n + got - i);
			size_t e = nl ? (size_t)(nl - b) : n + got;
			if (memchr(b + i, '\0', e - i)) {
				stop->why = -EILSEQ;
				break;
			}
			if (e - line_start > TARIFF_LINE_MAX) {
				stop->why = -EFBIG;
				break;
			}
			if (!nl)
				break;
			line++;
			line_start = i = e + 1;
		}
		n += got;
		if (stop->why) {
			stop->line = line;
			free(b);
			fclose(f);
			return -EINVAL;
		}
		if (n < cap)
			break;
		cap *= 2;
		char *nb = realloc(b, cap + 1);
		if (!nb)
			free(b);
		b = nb;
	}
	int bad = ferror(f) ? (errno ? -errno : -EIO) : 0;
	fclose(f);
	if (bad) {
		free(b);
		return bad;
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	return 0;
}

/*
 * The message for a file read_all refused: the path once, and for a bad
 * line the line's number, as every other tariff error.
 */
static int read_fail(ld *L, const char *name, const char *path, int rc,
		     const read_stop *stop)
{
	if (rc == -ENOMEM)
		return fail(L, name, 0, NULL, "out of memory reading %s", path);
	if (stop->why == -EILSEQ)
		return fail(L, name, stop->line, NULL,
			    "NUL byte in the line (a tariff is text)");
	if (stop->why == -EFBIG)
		return fail(L, name, stop->line, NULL,
			    "line longer than %zu bytes", TARIFF_LINE_MAX);
	if (rc == -EISDIR)
		return fail(L, path, 0, NULL, "is a directory");
	if (!strcmp(name, path))
		return fail(L, path, 0, NULL, "%s", strerror(-rc));
	return fail(L, name, 0, NULL, "cannot read %s: %s", path,
		    strerror(-rc));
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/*
 * Next non-empty line split into fields; 1 = row, 0 = end of file. Blanks
 * around fields and at the end of the line are cut (written as NULs); each
 * field's length is kept beside it, so no caller measures it again.
 */
static int csv_line(csv *c)
{
	while (c->pos < c->len) {
		char *s = c->data + c->pos;
		char *nl = memchr(s, '\n', c->len - c->pos);
		size_t n = nl ? (size_t)(nl - s) : c->len - c->pos;
		c->pos += n + (nl != NULL);
		c->line++;
		if (n && s[n - 1] == '\r')
			n--;
		s[n] = '\0';
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			s[--n] = '\0';
		if (n == 0)
			continue;
		char *const end = s + n;
		c->nf = 0;
		c->bad_quote = 0;
		for (char *p = s;;) {
			if (c->nf == MAXF)
				return c->nf = MAXF + 1, 1;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != '"') {
				char *comma = memchr(p, ',', (size_t)(end - p));
				char *fe = comma ? comma : end;
				if (comma)
					*comma = '\0';
				while (fe > p && (fe[-1] == ' ' || fe[-1] == '\t'))
					*--fe = '\0';
				c->fl[c->nf] = (size_t)(fe - p);
				c->f[c->nf++] = p;
				if (!comma)
					break;
				p = comma + 1;
				continue;
			}
			/* RFC 4180: "a, ""b""" is a, "b"; unquoted in place
			 * (the text only shrinks). Blanks after the closing
			 * quote are dropped, other text up to the comma kept
			 * as it stands, as in CDR files (SPEC 11). */
			char *w = p, *start = p;
			for (p++;; p++) {
				if (!*p) {
					c->bad_quote = 1;
					break;
				}
				if (*p == '"' && p[1] == '"')
					*w++ = *p++;
				else if (*p == '"')
					break;
				else
					*w++ = *p;
			}
			if (*p == '"')
				p++;
			while (*p == ' ' || *p == '\t')
				p++;
			while (*p && *p != ',')
				*w++ = *p++;
			int more = *p == ',';
			*w = '\0';
			c->fl[c->nf] = (size_t)(w - start);
			c->f[c->nf++] = start;
			if (!more)
				break;
			p++;
		}
		return 1;
	}
	return 0;
}

static char *join_cols(const char *const *cols, int n, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "",
				      cols[i]);
	return buf;
}

static void csv_close(csv *c)
{
	free(c->data);
	c->data = NULL;
}

/*
 * Open dir/name (or `path` when given) and check its header. A missing
 * optional file yields an empty csv. Returns 0 or a failure.
 */
static int csv_open(ld *L, csv *c, const char *name, const char *path,
		    int required, const char *const *cols, int ncols,
		    int min_cols)
{
	char buf[4096], want[512];
	memset(c, 0, sizeof(*c));
	c->name = name;
	L->file = name;
	c->cols = cols;
	c->ncols = ncols;
	c->min_cols = min_cols;
	if (!path) {
		snprintf(buf, sizeof(buf), "%s/%s", L->t->dir, name);
		path = buf;
	}
	read_stop stop;
	int rc = read_all(path, &c->data, &c->len, &stop);
	if (rc == -ENOENT && !required)
		return 0;
	if (rc)
		return read_fail(L, name, path, rc, &stop);
	/* Spreadsheets save CSV with a UTF-8 byte order mark. */
	if (c->len >= 3 && !memcmp(c->data, "\xEF\xBB\xBF", 3))
		c->pos = 3;
	if (!csv_line(c)) {
		csv_close(c);
		return fail(L, name, 1, NULL, "empty file: header '%s' missing",
			    join_cols(cols, ncols, want, sizeof(want)));
	}
	int ok = c->nf >= min_cols && c->nf <= ncols;
	for (int i = 0; ok && i < c->nf; i++)
		ok = !strcmp(c->f[i], cols[i]);
	if (!ok) {
		rc = fail(L, name, c->line, NULL, "header must be '%s'",
			  join_cols(cols, ncols, want, sizeof(want)));
		csv_close(c);
		return rc;
	}
	return 0;
}

/* Next data row with a checked column count; 1 row, 0 end, <0 failure. */
static int csv_row(ld *L, csv *c)
{
	if (!c->data || !csv_line(c))
		return 0;
	if (c->bad_quote)
		return fail(L, c->name, c->line, NULL,
			    "a quoted field does not close");
	if (c->nf < c->min_cols || c->nf > c->ncols)
		return fail(L, c->name, c->line, NULL,
			    "expected %d columns, found %d", c->ncols,
			    c->nf > MAXF ? MAXF : c->nf);
	for (int i = c->nf; i < c->ncols; i++) {
		c->f[i] = (char *)"";
		c->fl[i] = 0;
	}
	return 1;
}


/* ---- tariff.conf ----------------------------------------------------- */

static int load_conf(ld *L, char **free_zones, uint32_t *free_line)
{
	cdr_tariff *t = L->t;
	char path[4096], *data = NULL;
	size_t len = 0;
	const char *tz_name = "UTC";
	char tzbuf[256];

	snprintf(path, sizeof(path), "%s/tariff.conf", t->dir);
	L->file = "tariff.conf";
	read_stop stop;
	int rc = read_all(path, &data, &len, &stop);
	if (rc)
		return read_fail(L, "tariff.conf", path, rc, &stop);
	memcpy(t->currency, "CNY", 4);
	t->decimals = 2;
	uint32_t line = 0, tz_line = 0;
	for (char *s = data, *next; s && *s; s = next) {
		next = strchr(s, '\n');
		if (next)
			*next++ = '\0';
		line++;
		char *hash = strchr(s, '#');
		if (hash)
			*hash = '\0';
		s = trim(s);
		size_t n = strlen(s);
		if (n && s[n - 1] == '\r')
			s[--n] = '\0';
		if (!*trim(s))
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = fail(L, "tariff.conf", line, NULL,
				  "expected 'key = value'");
			break;
		}
		*eq = '\0';
		char *k = trim(s), *v = trim(eq + 1);
		if (!strcmp(k, "timezone")) {
			snprintf(tzbuf, sizeof(tzbuf), "%s", v);
			tz_name = tzbuf;
			tz_line = line;
		} else if (!strcmp(k, "currency")) {
			if (!*v || strlen(v) >= sizeof(t->currency)) {
				rc = fail(L, "tariff.conf", line, k,
					  "bad currency '%s'", v);
				break;
			}
			memcpy(t->currency, v, strlen(v) + 1);
		} else if (!strcmp(k, "decimals")) {
			if (strlen(v) != 1 || v[0] < '0' || v[0] > '6') {
				rc = fail(L, "tariff.conf", line, k,
					  "must be 0..6, not '%s'", v);
				break;
			}
			t->decimals = v[0] - '0';
		} else if (!strcmp(k, "band_split")) {
			if (!strcmp(v, "start"))
				t->band_split = 0;
			else if (!strcmp(v, "split"))
				t->band_split = 1;
			else {
				rc = fail(L, "tariff.conf", line, k,
					  "must be start or split, not '%s'",
					  v);
				break;
			}
		} else if (!strcmp(k, "proration")) {
			if (!strcmp(v, "half_month"))
				t->proration = 0;
			else if (!strcmp(v, "daily"))
				t->proration = 1;
			else if (!strcmp(v, "none"))
				t->proration = 2;
			else {
				rc = fail(L, "tariff.conf", line, k,
					  "must be half_month, daily or none, "
					  "not '%s'", v);
				break;
			}
		} else if (!strcmp(k, "free_zones")) {
			free(*free_zones);
			*free_line = line;
			/* Unchecked, out of memory would read as no free zones. */
			if (!(*free_zones = strdup(v))) {
				rc = fail(L, "tariff.conf", line, k,
					  "out of memory");
				break;
			}
		} else {
			rc = fail(L, "tariff.conf", line, k, "unknown setting");
			break;
		}
	}
	free(data);
	if (rc)
		return rc;
	char msg[CDR_ERR_MAX];
	rc = cdr__tz_load(&t->tz, tz_name, msg, sizeof(msg));
	if (rc)
		return fail(L, "tariff.conf", tz_line, "timezone", "%s", msg);
	return 0;
}

/* ---- zones ----------------------------------------------------------- */

static int sym(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c == '*' ? 10 : c == '#' ? 11 : -1;
}

static int32_t trie_node(cdr_tariff *t)
{
	if (t->ntrie == t->trie_cap) {
		uint32_t cap = t->trie_cap ? t->trie_cap * 2 : 1024;
		cdr__trie_node *n = realloc(t->trie, cap * sizeof(*n));
		if (!n)
			return -1;
		t->trie = n;
		uint32_t *ln = realloc(t->trie_line, (size_t)cap * 2 * sizeof(*ln));
		if (!ln)
			return -1;
		t->trie_line = ln;
		t->trie_cap = cap;
	}
	t->trie_line[2 * (size_t)t->ntrie] = 0;
	t->trie_line[2 * (size_t)t->ntrie + 1] = 0;
	cdr__trie_node *n = &t->trie[t->ntrie];
	memset(n->child, 0, sizeof(n->child));
	n->zone = n->exact = -1;
	return (int32_t)t->ntrie++;
}

/* Zone names are collected in first-seen order; returns the index. */
/* Index of name s, adding it when new: `keep` itself if given (it must
 * outlive the names), else a copy of s; -1 when out of memory. */
static int32_t intern_h(char ***names, uint32_t *n, cdr__map **m,
			const char *s, size_t len, uint64_t h, char *keep)
{
	mslot *sl = map_slot(*m, (const char *const *)*names, s, len, h);
	if (sl->idx)
		return (int32_t)sl->idx - 1;
	if (((*n + 1) & *n) == 0 || *n == 0) { /* grow at powers of two */
		char **nn = realloc(*names, ((size_t)*n + 1) * 2 * sizeof(char *));
		if (!nn)
			return -1;
		*names = nn;
	}
	if ((*m)->n * 2 + 2 > (*m)->mask) { /* keep the load under 1/2 */
		if (map_grow(*m))
			return -1;
		sl = map_slot(*m, (const char *const *)*names, s, len, h);
	}
	if (keep)
		(*names)[*n] = keep;
	else if (!((*names)[*n] = malloc(len + 1)))
		return -1;
	else
		memcpy((*names)[*n], s, len + 1);
	sl->h = h;
	sl->idx = *n + 1;
	(*m)->n++;
	return (int32_t)(*n)++;
}

static int32_t intern_as(char ***names, uint32_t *n, cdr__map **m,
			 const char *s, char *keep)
{
	size_t len = strlen(s);
	return intern_h(names, n, m, s, len, XXH3_64bits(s, len), keep);
}

static int32_t intern(char ***names, uint32_t *n, cdr__map **m,
		      const char *s)
{
	return intern_as(names, n, m, s, NULL);
}

/* The longest prefix, as the longest subscriber number: numbering plans
 * (E.164) stop at 15 digits; 32 leaves room for dialled codes. */
#define ZONE_PREFIX_MAX 32

/*
 * zone_tab (internal.h) from the finished trie: for each run of
 * CDR_ZONE_TAB_DIGITS digits, the zone of the longest prefix along it, and
 * whether that is final. It is final when the walk stops on the way (no
 * prefix goes on with those digits) or ends on a node with no children
 * and no `=number`: then no longer prefix can match any number starting
 * so (a longer number's `=number` would need a child; an `=number` of
 * exactly these digits is kept for the walk). Shorter `=number` rows
 * never match a number this long. 10^4 entries of 4 bytes, built in
 * 4 x 10^4 steps; the other entries walk on from the node reached.
 */
static int zone_table(cdr_tariff *t)
{
	enum { N = 10000 };
	t->zone_tab = malloc(N * sizeof(*t->zone_tab));
	if (!t->zone_tab)
		return -ENOMEM;
	uint32_t nmore = 0, cap = 0;
	for (uint32_t i = 0; i < N; i++) {
		const unsigned dig[CDR_ZONE_TAB_DIGITS] = {i / 1000, i / 100 % 10,
							   i / 10 % 10, i % 10};
		uint32_t node = 0;
		int32_t best = t->trie[0].zone;
		int final = 0;
		for (int k = 0; k < CDR_ZONE_TAB_DIGITS; k++) {
			int32_t c = t->trie[node].child[dig[k]];
			if (!c) {
				final = 1;
				break;
			}
			node = (uint32_t)c;
			if (t->trie[node].zone >= 0)
				best = t->trie[node].zone;
		}
		if (!final) {
			final = t->trie[node].exact < 0;
			for (int s = 0; s < 12 && final; s++)
				final = !t->trie[node].child[s];
		}
		if (final) {
			t->zone_tab[i] = best;
			continue;
		}
		if (nmore == cap) {
			cap = cap ? 2 * cap : 64;
			cdr__zone_more *m = realloc(t->zone_more,
						    cap * sizeof(*m));
			if (!m)
				return -ENOMEM;
			t->zone_more = m;
		}
		t->zone_more[nmore] = (cdr__zone_more){node, best};
		t->zone_tab[i] = -2 - (int32_t)nmore++;
	}
	return 0;
}

/* zones.csv: each prefix (or `=number`) into the trie; a prefix given
 * twice is an error. Zone names get indexes in first-seen order. */
static int load_zones(ld *L, cdr__map **zmap)
{
	static const char *const cols[] = {"prefix", "zone"};
	cdr_tariff *t = L->t;
	csv c;
	int rc = csv_open(L, &c, "zones.csv", NULL, 1, cols, 2, 2);
	if (rc)
		return rc;
	if (trie_node(t) < 0)
		return csv_close(&c), -ENOMEM;
	while ((rc = csv_row(L, &c)) > 0) {
		const char *p = c.f[0];
		int exact = p[0] == '=';
		p += exact;
		if (!*p) {
			rc = fail(L, c.name, c.line, "prefix", "empty prefix");
			break;
		}
		/* A trie node per character: an unbounded prefix (one of
		 * 100 MB took 5.5 GB) would cost far more than its line. */
		if (strlen(p) > ZONE_PREFIX_MAX) {
			rc = fail(L, c.name, c.line, "prefix",
				  "longer than %d characters", ZONE_PREFIX_MAX);
			break;
		}
		if (!*c.f[1] || !strcmp(c.f[1], "*")) {
			rc = fail(L, c.name, c.line, "zone", "bad zone name '%s'",
				  c.f[1]);
			break;
		}
		int32_t z = intern(&t->zone_names, &t->nzones, zmap, c.f[1]);
		if (z < 0) {
			rc = -ENOMEM;
			break;
		}
		uint32_t node = 0;
		for (; *p; p++) {
			int s = sym(*p);
			if (s < 0) {
				rc = fail(L, c.name, c.line, "prefix",
					  "'%s' may hold only 0-9 * # after an "
					  "optional '='", c.f[0]);
				goto out;
			}
			if (!t->trie[node].child[s]) {
				int32_t nn = trie_node(t);
				if (nn < 0) {
					rc = -ENOMEM;
					goto out;
				}
				t->trie[node].child[s] = nn;
			}
			node = (uint32_t)t->trie[node].child[s];
		}
		int32_t *slot = exact ? &t->trie[node].exact
				      : &t->trie[node].zone;
		if (*slot >= 0) {
			rc = fail(L, c.name, c.line, "prefix",
				  "duplicate prefix '%s'", c.f[0]);
			break;
		}
		*slot = z;
		t->trie_line[2 * (size_t)node + (size_t)exact] = c.line;
		t->nprefixes++;
	}
out:
	csv_close(&c);
	if (rc < 0)
		return rc;
	if (t->nzones == 0)
		return fail(L, "zones.csv", 0, NULL, "no zones");
	return zone_table(t);
}

/* ---- bands and holidays ---------------------------------------------- */

static const char *const day_names[CDR_NDAYTYPE] = {
	"mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"};

static int day_index(const char *s, size_t n)
{
	for (int i = 0; i < CDR_NDAYTYPE; i++)
		if (strlen(day_names[i]) == n && !memcmp(day_names[i], s, n))
			return i;
	return -1;
}

/* `days` column -> bit mask over day types; -1 when malformed. */
static int parse_days(const char *s)
{
	int mask = 0;
	while (*s) {
		const char *e = strchr(s, ';');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		const char *dash = memchr(s, '-', n);
		if (n == 1 && s[0] == '*') {
			mask |= 0xff;
		} else if (dash) {
			int a = day_index(s, (size_t)(dash - s));
			int b = day_index(dash + 1, n - (size_t)(dash - s) - 1);
			if (a < 0 || b < 0 || a == CDR_HOLIDAY ||
			    b == CDR_HOLIDAY)
				return -1;
			/* A range may wrap over the week end: sat-mon. */
			for (int d = a;; d = (d + 1) % 7) {
				mask |= 1 << d;
				if (d == b)
					break;
			}
		} else {
			int a = day_index(s, n);
			if (a < 0)
				return -1;
			mask |= 1 << a;
		}
		if (!e)
			break;
		s = e + 1;
		if (!*s)
			return -1;
	}
	return mask ? mask : -1;
}

/* HH:MM -> minutes; 24:00 allowed only when allow24. */
static int parse_hhmm(const char *s, int allow24)
{
	if (strlen(s) != 5 || s[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -1;
	int h = (s[0] - '0') * 10 + s[1] - '0';
	int m = (s[3] - '0') * 10 + s[4] - '0';
	if (m > 59 || h > 24 || (h == 24 && (m || !allow24)))
		return -1;
	return h * 60 + m;
}

/* bands.csv: fill a band per minute per day type, first matching row
 * first; then every minute must be covered, and runs are derived for
 * split pricing. */
static int load_bands(ld *L, cdr__map **bmap)
{
	static const char *const cols[] = {"band", "days", "from", "to"};
	cdr_tariff *t = L->t;
	csv c;
	int rc = csv_open(L, &c, "bands.csv", NULL, 1, cols, 4, 4);
	if (rc)
		return rc;
	memset(t->minute_band, 0xff, sizeof(t->minute_band));
	while ((rc = csv_row(L, &c)) > 0) {
		if (!*c.f[0] || !strcmp(c.f[0], "*")) {
			rc = fail(L, c.name, c.line, "band", "bad band name '%s'",
				  c.f[0]);
			break;
		}
		int32_t b = intern(&t->band_names, &t->nbands, bmap, c.f[0]);
		if (b < 0) {
			rc = -ENOMEM;
			break;
		}
		if (t->nbands >= CDR_BAND_STAR) {
			rc = fail(L, c.name, c.line, "band",
				  "more than %d bands", CDR_BAND_STAR - 1);
			break;
		}
		int mask = parse_days(c.f[1]);
		if (mask < 0) {
			rc = fail(L, c.name, c.line, "days",
				  "bad day list '%s' (mon..sun, ranges like "
				  "mon-fri, holiday, *; separated by ';')",
				  c.f[1]);
			break;
		}
		int from = parse_hhmm(c.f[2], 0), to = parse_hhmm(c.f[3], 1);
		if (from < 0) {
			rc = fail(L, c.name, c.line, "from", "bad time '%s'",
				  c.f[2]);
			break;
		}
		if (to < 0 || to <= from) {
			rc = fail(L, c.name, c.line, "to",
				  "bad time '%s' (HH:MM after from, up to "
				  "24:00)", c.f[3]);
			break;
		}
		/* The first matching row wins: fill only what is unset. */
		for (int d = 0; d < CDR_NDAYTYPE; d++)
			if (mask & (1 << d))
				for (int m = from; m < to; m++)
					if (t->minute_band[d][m] == 0xff)
						t->minute_band[d][m] =
							(uint8_t)b;
	}
	csv_close(&c);
	if (rc < 0)
		return rc;
	for (int d = 0; d < CDR_NDAYTYPE; d++)
		for (int m = 0; m < 1440; m++)
			if (t->minute_band[d][m] == 0xff) {
				int e = m;
				while (e < 1440 && t->minute_band[d][e] == 0xff)
					e++;
				/* No line: the gap is in no row. */
				return fail(L, "bands.csv", 0, NULL,
					    "gap in coverage: no row covers %s "
					    "%02d:%02d-%02d:%02d",
					    day_names[d], m / 60, m % 60,
					    e / 60, e % 60);
			}
	/* Runs of equal band per day type, for cutting split calls. */
	for (int d = 0; d < CDR_NDAYTYPE; d++) {
		uint32_t n = 0;
		for (int m = 0; m < 1440; m++)
			n += m == 0 || t->minute_band[d][m] !=
					       t->minute_band[d][m - 1];
		t->segs[d] = calloc(n, sizeof(cdr__band_seg));
		if (!t->segs[d])
			return -ENOMEM;
		n = 0;
		for (int m = 0; m < 1440; m++) {
			if (m == 0 ||
			    t->minute_band[d][m] != t->minute_band[d][m - 1]) {
				if (n)
					t->segs[d][n - 1].to_min = (uint16_t)m;
				t->segs[d][n].from_min = (uint16_t)m;
				t->segs[d][n].band = t->minute_band[d][m];
				n++;
			}
		}
		t->segs[d][n - 1].to_min = 1440;
		t->nsegs[d] = n;
	}
	return 0;
}

/* A holiday and its line, to name the line of a duplicate after sorting. */
typedef struct hol_line {
	int64_t day;
	uint32_t line;
} hol_line;

static int cmp_hol(const void *a, const void *b)
{
	const hol_line *x = a, *y = b;
	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

/*
 * holidays.csv: dates sorted once, duplicates found as equal neighbours
 * (n log n; a scan of the earlier dates per row took 14 s for 200k rows).
 * The duplicate reported is the first line, in file order, that repeats
 * an earlier date; it wins over a malformed line further down.
 */
static int load_holidays(ld *L)
{
	static const char *const cols[] = {"date", "name"};
	cdr_tariff *t = L->t;
	csv c;
	hol_line *hl = NULL;
	uint32_t n = 0, cap = 0;
	int rc = csv_open(L, &c, "holidays.csv", NULL, 0, cols, 2, 1);
	uint32_t bad_line = 0;
	char bad_date[256] = "";
	if (!rc)
		while ((rc = csv_row(L, &c)) > 0) {
		int64_t day;
		if (cdr__parse_date(c.f[0], strlen(c.f[0]), &day)) {
			bad_line = c.line;
			snprintf(bad_date, sizeof(bad_date), "%s", c.f[0]);
			rc = 0;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			hol_line *nh = realloc(hl, cap * sizeof(*nh));
			if (!nh) {
				rc = -ENOMEM;
				break;
			}
			hl = nh;
		}
		hl[n].day = day;
		hl[n++].line = c.line;
	}
	csv_close(&c);
	if (rc < 0) {
		free(hl);
		return rc;
	}
	if (n)
		qsort(hl, n, sizeof(*hl), cmp_hol);
	uint32_t dup = 0; /* index of the earliest-line repeat */
	for (uint32_t i = 1; i < n; i++)
		if (hl[i].day == hl[i - 1].day &&
		    (!dup || hl[i].line < hl[dup].line))
			dup = i;
	if (dup) {
		char d[32];
		int64_t y;
		unsigned m, dd;
		cdr__civil_from_days(hl[dup].day, &y, &m, &dd);
		snprintf(d, sizeof(d), "%04lld-%02u-%02u", (long long)y, m, dd);
		rc = fail(L, "holidays.csv", hl[dup].line, "date",
			  "duplicate date '%s'", d);
	} else if (bad_line) {
		rc = fail(L, "holidays.csv", bad_line, "date",
			  "bad date '%s' (YYYY-MM-DD)", bad_date);
	} else if (n) {
		t->holidays = malloc(n * sizeof(*t->holidays));
		if (!t->holidays)
			rc = -ENOMEM;
		for (uint32_t i = 0; t->holidays && i < n; i++)
			t->holidays[i] = hl[i].day;
		t->nholidays = t->holidays ? n : 0;
	}
	free(hl);
	return rc;
}

/* ---- plans and rates ------------------------------------------------- */

static int service_index(const char *s)
{
	if (!strcmp(s, "voice"))
		return CDR_VOICE;
	if (!strcmp(s, "sms"))
		return CDR_SMS;
	if (!strcmp(s, "data"))
		return CDR_DATA;
	return -1;
}

static const char *const service_names[CDR_NSVC] = {"voice", "sms", "data"};

/* plans.csv. *names is the array pmap points at, for the loaders after
 * this one; its strings belong to t->plans, the array to the caller. */
static int load_plans(ld *L, cdr__map **pmap, char ***names)
{
	static const char *const cols[] = {"plan", "monthly_fee"};
	cdr_tariff *t = L->t;
	csv c;
	int rc = csv_open(L, &c, "plans.csv", NULL, 1, cols, 2, 2);
	uint32_t n = 0;
	if (!rc)
		while ((rc = csv_row(L, &c)) > 0) {
		int64_t fee;
		if (!*c.f[0] || !strcmp(c.f[0], "*")) {
			rc = fail(L, c.name, c.line, "plan", "bad plan name '%s'",
				  c.f[0]);
			break;
		}
		if (cdr__parse_money(c.f[1], strlen(c.f[1]), &fee)) {
			rc = fail(L, c.name, c.line, "monthly_fee",
				  "bad amount '%s'", c.f[1]);
			break;
		}
		uint32_t before = n;
		if (intern(names, &n, pmap, c.f[0]) < 0) {
			rc = -ENOMEM;
			break;
		}
		if (n == before) {
			rc = fail(L, c.name, c.line, "plan",
				  "duplicate plan '%s'", c.f[0]);
			break;
		}
		cdr__plan *p = realloc(t->plans, n * sizeof(*p));
		if (!p) {
			rc = -ENOMEM;
			break;
		}
		t->plans = p;
		t->plans[n - 1].name = (*names)[n - 1];
		t->plans[n - 1].fee_micros = fee;
		t->nplans = n;
	}
	csv_close(&c);
	if (rc < 0)
		return rc;
	if (!t->nplans)
		return fail(L, "plans.csv", 0, NULL, "no plans");
	return 0;
}

/* Zone or band column: `*` or a known name. */
static int ref_name(const cdr__map *m, char *const *names, const char *s,
		    int32_t *out)
{
	if (!strcmp(s, "*")) {
		*out = CDR_ANY;
		return 0;
	}
	*out = map_get(m, (const char *const *)names, s, strlen(s));
	return *out < 0 ? -1 : 0;
}

#define Q_MAX 1000000000000ULL /* 10^12 */

static int load_rates(ld *L, const cdr__map *pmap, char *const *plan_names,
		      const cdr__map *zmap, const cdr__map *bmap)
{
	static const char *const cols[] = {"plan",    "service", "zone",
					   "band",    "connect", "price",
					   "unit",    "first",	 "increment",
					   "from"};
	cdr_tariff *t = L->t;
	csv c;
	uint32_t cap = 0;
	int rc = csv_open(L, &c, "rates.csv", NULL, 1, cols, 10, 9);
	if (!rc)
		while ((rc = csv_row(L, &c)) > 0) {
		cdr__rate_row r = {0};
		int32_t plan = map_get(pmap, (const char *const *)plan_names,
				       c.f[0], strlen(c.f[0]));
		int svc = service_index(c.f[1]);
		const char *bad = NULL;
		if (plan < 0) {
			rc = fail(L, c.name, c.line, "plan",
				  "unknown plan '%s'", c.f[0]);
			break;
		}
		r.plan = (uint32_t)plan;
		r.line = c.line;
		if (svc < 0)
			bad = "service";
		else if (ref_name(zmap, t->zone_names, c.f[2], &r.zone))
			bad = "zone";
		else if (ref_name(bmap, t->band_names, c.f[3], &r.band))
			bad = "band";
		if (bad) {
			int col = !strcmp(bad, "service") ? 1
				  : !strcmp(bad, "zone")  ? 2
							  : 3;
			rc = fail(L, c.name, c.line, bad, "unknown %s '%s'", bad,
				  c.f[col]);
			break;
		}
		r.service = (uint8_t)svc;
		if (cdr__parse_money(c.f[4], strlen(c.f[4]),
				     &r.connect_micros)) {
			rc = fail(L, c.name, c.line, "connect",
				  "bad amount '%s'", c.f[4]);
			break;
		}
		if (cdr__parse_money(c.f[5], strlen(c.f[5]), &r.price_micros)) {
			rc = fail(L, c.name, c.line, "price", "bad amount '%s'",
				  c.f[5]);
			break;
		}
		if (cdr__parse_u64(c.f[6], strlen(c.f[6]), Q_MAX, &r.unit) ||
		    r.unit < 1) {
			rc = fail(L, c.name, c.line, "unit",
				  "must be an integer 1..10^12, not '%s'",
				  c.f[6]);
			break;
		}
		if (cdr__parse_u64(c.f[7], strlen(c.f[7]), Q_MAX, &r.first)) {
			rc = fail(L, c.name, c.line, "first",
				  "must be an integer 0..10^12, not '%s'",
				  c.f[7]);
			break;
		}
		if (cdr__parse_u64(c.f[8], strlen(c.f[8]), Q_MAX,
				   &r.increment) ||
		    r.increment < 1) {
			rc = fail(L, c.name, c.line, "increment",
				  "must be an integer 1..10^12, not '%s'",
				  c.f[8]);
			break;
		}
		if (svc == CDR_SMS &&
		    (r.unit != 1 || r.first != 1 || r.increment != 1)) {
			rc = fail(L, c.name, c.line,
				  r.unit != 1	 ? "unit"
				  : r.first != 1 ? "first"
						 : "increment",
				  "sms rows count messages: unit, first and "
				  "increment must be 1");
			break;
		}
		r.from_day = CDR_DAY_NONE;
		if (*c.f[9] &&
		    cdr__parse_date(c.f[9], strlen(c.f[9]), &r.from_day)) {
			rc = fail(L, c.name, c.line, "from",
				  "bad date '%s' (YYYY-MM-DD)", c.f[9]);
			break;
		}
		if (t->nrates == cap) {
			cap = cap ? cap * 2 : 64;
			cdr__rate_row *n = realloc(t->rates, cap * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			t->rates = n;
		}
		t->rates[t->nrates++] = r;
	}
	csv_close(&c);
	return rc < 0 ? rc : 0;
}

/* ---- packages -------------------------------------------------------- */

static int load_packages(ld *L, cdr__map **kmap, char ***knames,
			 const cdr__map *zmap, const cdr__map *bmap)
{
	static const char *const cols[] = {"package", "monthly_fee", "service",
					   "zone",    "band",	     "amount"};
	cdr_tariff *t = L->t;
	csv c;
	uint32_t n = 0, cap = 0;
	uint32_t *owner = NULL;
	int rc = csv_open(L, &c, "packages.csv", NULL, 0, cols, 6, 6);
	if (!rc)
		while ((rc = csv_row(L, &c)) > 0) {
		cdr__allowance a;
		int64_t fee;
		if (!*c.f[0]) {
			rc = fail(L, c.name, c.line, "package", "empty name");
			break;
		}
		if (cdr__parse_money(c.f[1], strlen(c.f[1]), &fee)) {
			rc = fail(L, c.name, c.line, "monthly_fee",
				  "bad amount '%s'", c.f[1]);
			break;
		}
		int svc = service_index(c.f[2]);
		if (svc < 0) {
			rc = fail(L, c.name, c.line, "service",
				  "unknown service '%s'", c.f[2]);
			break;
		}
		a.service = (uint8_t)svc;
		if (ref_name(zmap, t->zone_names, c.f[3], &a.zone)) {
			rc = fail(L, c.name, c.line, "zone", "unknown zone '%s'",
				  c.f[3]);
			break;
		}
		if (ref_name(bmap, t->band_names, c.f[4], &a.band)) {
			rc = fail(L, c.name, c.line, "band", "unknown band '%s'",
				  c.f[4]);
			break;
		}
		if (cdr__parse_u64(c.f[5], strlen(c.f[5]), UINT64_MAX / 4,
				   &a.amount)) {
			rc = fail(L, c.name, c.line, "amount",
				  "bad amount of billed units '%s'", c.f[5]);
			break;
		}
		uint32_t before = n;
		int32_t k = intern(knames, &n, kmap, c.f[0]);
		if (k < 0) {
			rc = -ENOMEM;
			break;
		}
		if (n != before) { /* first row: it sets the fee */
			cdr__package *p = realloc(t->packages, n * sizeof(*p));
			if (!p) {
				rc = -ENOMEM;
				break;
			}
			t->packages = p;
			t->packages[k].name = (*knames)[k];
			t->packages[k].fee_micros = fee;
			t->npackages = n;
		} else if (t->packages[k].fee_micros != fee) {
			/* One fee a package: which row's would be a guess. */
			rc = fail(L, c.name, c.line, "monthly_fee",
				  "'%s' differs from the fee of package '%s' "
				  "on its first row",
				  c.f[1], c.f[0]);
			break;
		}
		if (t->nallows == cap) {
			cap = cap ? cap * 2 : 16;
			cdr__allowance *na = realloc(t->allows, cap * sizeof(*na));
			uint32_t *no = realloc(owner, cap * sizeof(*no));
			if (na)
				t->allows = na;
			if (no)
				owner = no;
			if (!na || !no) {
				rc = -ENOMEM;
				break;
			}
		}
		assert(owner != NULL);
		owner[t->nallows] = (uint32_t)k;
		t->allows[t->nallows++] = a;
	}
	csv_close(&c);
	if (rc < 0) {
		free(owner);
		return rc;
	}
	/* Group allowances by package, keeping file order inside each. */
	cdr__allowance *sorted = calloc(t->nallows + 1, sizeof(*sorted));
	if (!sorted) {
		free(owner);
		return -ENOMEM;
	}
	uint32_t o = 0;
	assert(t->nallows == 0 || owner != NULL);
	for (uint32_t k = 0; k < t->npackages; k++) {
		t->packages[k].first_allow = o;
		for (uint32_t i = 0; i < t->nallows; i++)
			if (owner[i] == k)
				sorted[o++] = t->allows[i];
		t->packages[k].nallow = o - t->packages[k].first_allow;
	}
	free(t->allows);
	free(owner);
	t->allows = sorted;
	return 0;
}

/* ---- subscribers ----------------------------------------------------- */

/*
 * subscribers.csv is the one large file of a tariff (a row per number and
 * period: millions), so its load is cut in two and run on two threads:
 *
 *   1. parse: the rows in two halves of the file (cut at a line end near
 *      the middle, the second half's line numbers counted on from the
 *      first's), each row checked as before, its number and account
 *      hashed. Each half stops at its first error; the first half's
 *      error, if any, is the file's first and is the one reported;
 *   2. intern: numbers by the top bit of their hash (shards 0-7 and
 *      8-15) and accounts by the top bit of theirs, each thread taking
 *      the rows of its half of both tables, in file order;
 *   3. number each subscriber in the order its first row appears (one
 *      pass in file order), rank the accounts bytewise (each thread sorts
 *      its names, unless they came sorted, and the two lists are merged),
 *      and place the rows by subscriber with a counting sort (rows of one
 *      number, few, ordered by first day);
 *   4. finish each half of the number table on its thread.
 *
 * The cut, the halves of the tables and every order are the same whatever
 * the number of threads (cdr__tariff_threads; one runs the halves one
 * after the other), so the tariff loaded is identical byte for byte.
 */

unsigned cdr__tariff_threads;

static unsigned load_threads(void)
{
	if (cdr__tariff_threads)
		return cdr__tariff_threads > 1 ? 2 : 1;
	return sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1;
}

/* fn(a0) here and fn(a1) on a second thread when there are two (or one
 * after the other when a thread cannot be had): the result is the same. */
static void run_two(unsigned threads, void *(*fn)(void *), void *a0, void *a1)
{
	pthread_t th;
	int two = threads > 1 && pthread_create(&th, NULL, fn, a1) == 0;
	fn(a0);
	if (two)
		pthread_join(th, NULL);
	else
		fn(a1);
}

/* Order account indexes by their names (qsort_r context: the names). */
static int cmp_name_idx(const void *a, const void *b, void *names)
{
	char *const *n = names;
	return strcmp(n[*(const uint32_t *)a], n[*(const uint32_t *)b]);
}

typedef struct raw_row {
	cdr__sub_row r; /* sub and account set from the interning below */
	char *num, *account; /* into the file's text */
	uint16_t num_len;
	uint8_t new_run; /* the account differs from the row before's */
	uint8_t pad;
	uint32_t account_len;
	uint64_t num_h, account_h;
} raw_row;

/* Where a name's slot is, to fetch it ahead of the lookup. */
static void map_prefetch(const cdr__map *m, uint64_t h)
{
	__builtin_prefetch(&m->s[(uint32_t)h & m->mask]);
}

static void submap_prefetch(const cdr__submap *m, uint64_t h)
{
	unsigned k = (unsigned)(h >> (64 - SUB_SHARD_BITS));
	__builtin_prefetch(&m->s[k][(uint32_t)h & m->mask[k]]);
}

/* One half of the file being parsed (step 1). */
typedef struct sub_part {
	ld L; /* its own message buffer: the halves fail independently */
	char err[CDR_ERR_MAX];
	csv c; /* the file's csv, limited to the half */
	raw_row *raw;
	uint32_t nraw, cap;
	uint32_t *pkgs; /* the rows' packages, first_pkg into this */
	uint32_t npk, pkcap;
	const cdr__map *pmap, *kmap;
	char *const *plan_names, *const *pkg_names;
	int shards, bucket; /* the load filter (ld) */
	int rc;
} sub_part;

static void *parse_part(void *arg)
{
	sub_part *P = arg;
	csv *c = &P->c;
	ld *L = &P->L;
	int32_t last_plan = -1;
	const char *last_account = NULL;
	int rc;
	while ((rc = csv_row(L, c)) > 0) {
		raw_row w;
		memset(&w, 0, sizeof(w));
		char *num = c->f[0];
		size_t nl = c->fl[0];
		if (*num == '+')
			num++, nl--;
		int ok = nl > 0 && nl <= 32;
		for (size_t i = 0; ok && i < nl; i++)
			ok = num[i] >= '0' && num[i] <= '9';
		if (!ok) {
			rc = fail(L, c->name, c->line, "subscriber",
				  "bad number '%s' (digits, optional leading "
				  "'+')", c->f[0]);
			break;
		}
		if (!*c->f[1]) {
			rc = fail(L, c->name, c->line, "account", "empty account");
			break;
		}
		/* Plans are few and rows repeat them: the last one first. */
		int32_t plan = last_plan >= 0 &&
					       !strcmp(P->plan_names[last_plan], c->f[2])
				       ? last_plan
				       : map_get(P->pmap,
						 (const char *const *)P->plan_names,
						 c->f[2], c->fl[2]);
		if (plan < 0) {
			rc = fail(L, c->name, c->line, "plan",
				  "unknown plan '%s'", c->f[2]);
			break;
		}
		last_plan = plan;
		w.r.plan = (uint32_t)plan;
		w.r.first_pkg = P->npk;
		for (char *p = c->f[3]; *p;) {
			char *e = strchr(p, ';');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			int32_t k = P->kmap ? map_get(P->kmap,
						      (const char *const *)
							      P->pkg_names,
						      p, n)
					    : -1;
			if (k < 0) {
				rc = fail(L, c->name, c->line, "packages",
					  "unknown package '%.*s'", (int)n, p);
				goto out;
			}
			for (uint32_t i = w.r.first_pkg; i < P->npk; i++)
				if (P->pkgs[i] == (uint32_t)k) {
					rc = fail(L, c->name, c->line,
						  "packages",
						  "package '%.*s' listed twice",
						  (int)n, p);
					goto out;
				}
			if (P->npk == P->pkcap) {
				P->pkcap = P->pkcap ? P->pkcap * 2 : 64;
				uint32_t *np = realloc(P->pkgs,
						       P->pkcap * sizeof(*np));
				if (!np) {
					rc = -ENOMEM;
					goto out;
				}
				P->pkgs = np;
			}
			P->pkgs[P->npk++] = (uint32_t)k;
			if (!e)
				break;
			p = e + 1;
		}
		w.r.npkg = P->npk - w.r.first_pkg;
		if (cdr__parse_date(c->f[4], c->fl[4], &w.r.from_day)) {
			rc = fail(L, c->name, c->line, "from",
				  "bad date '%s' (YYYY-MM-DD)", c->f[4]);
			break;
		}
		w.r.to_day = CDR_DAY_OPEN;
		if (*c->f[5] &&
		    cdr__parse_date(c->f[5], c->fl[5], &w.r.to_day)) {
			rc = fail(L, c->name, c->line, "to",
				  "bad date '%s' (YYYY-MM-DD or empty)",
				  c->f[5]);
			break;
		}
		if (w.r.to_day < w.r.from_day) {
			rc = fail(L, c->name, c->line, "to",
				  "last day %s is before first day %s",
				  c->f[5], c->f[4]);
			break;
		}
		w.r.line = c->line;
		w.account_h = XXH3_64bits(c->f[1], c->fl[1]);
		/* A shard's load: the row checked, then left out unless its
		 * account is in the bucket (cdr_shard_bucket: the same hash,
		 * XXH3-64 seed 0, mod N). */
		if (P->shards &&
		    w.account_h % (uint64_t)P->shards != (uint64_t)P->bucket) {
			P->npk = w.r.first_pkg;
			continue;
		}
		/* Numbers and accounts point into the file's text, which the
		 * tariff keeps: no copy per row. */
		w.num = num;
		w.num_len = (uint16_t)nl;
		w.account = c->f[1];
		w.account_len = (uint32_t)c->fl[1];
		w.new_run = !last_account || strcmp(last_account, w.account) != 0;
		last_account = w.account;
		w.num_h = cdr__sub_hash(w.num, nl);
		assert(P->nraw < P->cap); /* a row a line at most */
		P->raw[P->nraw++] = w;
	}
out:
	P->rc = rc < 0 ? rc : 0;
	return NULL;
}

/* One half of the number and account tables (steps 2 and 4). */
typedef struct sub_group {
	unsigned g; /* numbers and accounts whose hash has top bit g */
	const raw_row *raw;
	uint32_t nraw;
	cdr__submap *nmap; /* shards 8g..8g+7 */
	uint32_t *sub;	   /* [nraw]: the row's index in its shard, FIRST */
	uint32_t nloc[SUB_SHARDS]; /* numbers in each shard */
	cdr__map *amap;
	char **accts;
	uint32_t nacct;
	uint32_t *acct;	 /* [nraw]: the row's account, local index */
	uint32_t *order; /* local account indexes in bytewise order */
	/* step 4 */
	uint32_t *const *gidx;
	const cdr__subscriber *subs;
	const cdr__sub_row *rows;
	int rc;
} sub_group;

#define SUB_FIRST 0x80000000u /* the number's first row */

static void *intern_group(void *arg)
{
	sub_group *G = arg;
	const raw_row *raw = G->raw;
	const uint64_t g = G->g;
	uint32_t last = UINT32_MAX, batch[32];
	for (uint32_t i = 0; i < G->nraw && !G->rc;) {
		/* Up to 32 of this half's rows, their slots fetched together:
		 * each new name is a cache miss on its table slot. */
		unsigned nb = 0;
		for (; i < G->nraw && nb < 32; i++) {
			const raw_row *w = &raw[i];
			int n = w->num_h >> 63 == g, a = w->account_h >> 63 == g;
			if (n)
				submap_prefetch(G->nmap, w->num_h);
			if (a)
				map_prefetch(G->amap, w->account_h);
			if (n || a)
				batch[nb++] = i;
		}
		for (unsigned b = 0; b < nb; b++) {
			uint32_t j = batch[b];
			const raw_row *w = &raw[j];
			if (w->num_h >> 63 == g) {
				unsigned k = (unsigned)(w->num_h >>
							(64 - SUB_SHARD_BITS));
				int64_t s = submap_intern(G->nmap, w->num,
							  w->num_len, w->num_h,
							  G->nloc[k]);
				if (s < 0) {
					G->rc = -ENOMEM;
					break;
				}
				G->sub[j] = (uint32_t)s;
				if (s == G->nloc[k])
					G->sub[j] |= SUB_FIRST, G->nloc[k]++;
			}
			if (w->account_h >> 63 == g) {
				/* Rows of one account usually come together:
				 * no lookup when it repeats the last one. */
				int32_t a = last != UINT32_MAX &&
						    !strcmp(G->accts[last],
							    w->account)
						    ? (int32_t)last
						    : intern_h(&G->accts, &G->nacct,
							       &G->amap, w->account,
							       w->account_len,
							       w->account_h,
							       w->account);
				if (a < 0) {
					G->rc = -ENOMEM;
					break;
				}
				last = (uint32_t)a;
				G->acct[j] = (uint32_t)a;
			}
		}
	}
	if (G->rc)
		return NULL;
	/* This half's accounts in bytewise order; files often list them
	 * sorted already (then one pass of comparisons). */
	G->order = malloc(((size_t)G->nacct + 1) * sizeof(uint32_t));
	if (!G->order) {
		G->rc = -ENOMEM;
		return NULL;
	}
	int sorted = 1;
	for (uint32_t i = 0; i < G->nacct; i++) {
		G->order[i] = i;
		if (i && sorted && strcmp(G->accts[i - 1], G->accts[i]) > 0)
			sorted = 0;
	}
	if (!sorted)
		qsort_r(G->order, G->nacct, sizeof(*G->order), cmp_name_idx,
			G->accts);
	return NULL;
}

static void *finish_group(void *arg)
{
	sub_group *G = arg;
	submap_finish(G->nmap, G->g * SUB_SHARDS / 2, (G->g + 1) * SUB_SHARDS / 2,
		      G->gidx, G->subs, G->rows);
	return NULL;
}

/* Step 3: subscribers numbered (which 0) and accounts ranked (which 1),
 * each on its thread. */
typedef struct sub_step3 {
	int which;
	cdr_tariff *t;
	raw_row *raw;
	uint32_t nraw;
	const sub_group *G;
	uint32_t *const *gidx;
	uint32_t *rank; /* [accounts of half 0, then of half 1] */
} sub_step3;

static void number_subs(sub_step3 *S)
{
	cdr_tariff *t = S->t;
	uint32_t nnum = 0;
	for (uint32_t i = 0; i < S->nraw; i++) {
		raw_row *w = &S->raw[i];
		uint32_t s = S->G[w->num_h >> 63].sub[i];
		unsigned k = (unsigned)(w->num_h >> (64 - SUB_SHARD_BITS));
		if (s & SUB_FIRST) {
			S->gidx[k][s & ~SUB_FIRST] = nnum;
			t->subs[nnum++].num = w->num;
		}
		w->r.sub = S->gidx[k][s & ~SUB_FIRST];
		t->subs[w->r.sub].nrows++;
	}
	t->nsubs = nnum;
}

/* Accounts ranked bytewise: the two halves' sorted lists merged, "-"
 * (free calls from numbers without an active row) included. */
static void rank_accounts(sub_step3 *S)
{
	static char dash[] = "-";
	cdr_tariff *t = S->t;
	const sub_group *G = S->G;
	unsigned dg = (unsigned)(XXH3_64bits(dash, 1) >> 63);
	int32_t dloc = map_get(G[dg].amap, (const char *const *)G[dg].accts,
			       dash, 1);
	uint32_t *rk[2] = {S->rank, S->rank + G[0].nacct};
	uint32_t i0 = 0, i1 = 0, r = 0;
	int dash_left = dloc < 0;
	while (i0 < G[0].nacct || i1 < G[1].nacct || dash_left) {
		char *a = i0 < G[0].nacct ? G[0].accts[G[0].order[i0]] : NULL;
		char *b = i1 < G[1].nacct ? G[1].accts[G[1].order[i1]] : NULL;
		int src = a ? 0 : 1;
		char *best = a ? a : b;
		if (a && b && strcmp(b, a) < 0)
			src = 1, best = b;
		if (dash_left && (!best || strcmp(dash, best) < 0)) {
			t->dash_account = r;
			t->accounts[r++] = dash;
			dash_left = 0;
			continue;
		}
		uint32_t loc = src ? G[1].order[i1++] : G[0].order[i0++];
		if (src == (int)dg && (int32_t)loc == dloc)
			t->dash_account = r;
		rk[src][loc] = r;
		t->accounts[r++] = best;
	}
	t->naccounts = r;
}

static void *step3(void *arg)
{
	sub_step3 *S = arg;
	if (S->which)
		rank_accounts(S);
	else
		number_subs(S);
	return NULL;
}

/* Newlines in n bytes, eight at a time: a byte of x is zero exactly where
 * the top bit of ~(((x & 7f..) + 7f..) | x | 7f..) is set; the multiply
 * adds those eight bits up. */
static uint32_t count_nl(const char *s, size_t n)
{
	const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full, nls = 0x0a0a0a0a0a0a0a0aull;
	uint32_t k = 0;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		x ^= nls;
		uint64_t z = ~(((x & lo7) + lo7) | x | lo7) >> 7; /* 0/1 a byte */
		k += (uint32_t)((z * 0x0101010101010101ull) >> 56);
	}
	for (; i < n; i++)
		k += s[i] == '\n';
	return k;
}

/* The kept rows' numbers and accounts (NUL-terminated) copied into a text
 * of their own, which replaces the file's (cdr_tariff_load_bucket). */
static int sub_text_compact(cdr_tariff *t, sub_part P[2])
{
	size_t n = 1;
	for (int h = 0; h < 2; h++)
		for (uint32_t i = 0; i < P[h].nraw; i++)
			n += (size_t)P[h].raw[i].num_len + 1 +
			     P[h].raw[i].account_len + 1;
	char *b = malloc(n), *o = b;
	if (!b)
		return -ENOMEM;
	for (int h = 0; h < 2; h++)
		for (uint32_t i = 0; i < P[h].nraw; i++) {
			raw_row *w = &P[h].raw[i];
			memcpy(o, w->num, w->num_len);
			o[w->num_len] = '\0';
			w->num = o;
			o += w->num_len + 1;
			memcpy(o, w->account, w->account_len);
			o[w->account_len] = '\0';
			w->account = o;
			o += w->account_len + 1;
		}
	*o = '\0';
	free(t->sub_text);
	t->sub_text = b;
	return 0;
}

/*
 * subscribers.csv: parse every row (errors name line and column), intern
 * numbers and accounts, rank the accounts bytewise, place rows by number
 * and first day (overlaps are errors, a row starting the day after the
 * previous one ends is a plan change at both ends), and finish the
 * subscriber table with each number's rows. The steps are described at
 * the top of this section.
 */
static int load_subscribers(ld *L, const char *path, const cdr__map *pmap,
			    char *const *plan_names, const cdr__map *kmap,
			    char *const *pkg_names)
{
	static const char *const cols[] = {"subscriber", "account", "plan",
					   "packages",	 "from",    "to"};
	cdr_tariff *t = L->t;
	const unsigned threads = load_threads();
	csv c;
	sub_part P[2];
	sub_group G[2];
	raw_row *raw = NULL;
	uint32_t *gidx_all = NULL, *rank = NULL, *gidx[SUB_SHARDS];
	uint32_t nraw = 0, nnum = 0;
	memset(P, 0, sizeof(P));
	memset(G, 0, sizeof(G));
	int rc = csv_open(L, &c, path ? path : "subscribers.csv", path, 1, cols,
			  6, 6);
	if (rc)
		return rc;

	/* 1. Parse the two halves. */
	size_t mid = c.pos + (c.len - c.pos) / 2;
	const char *nl = memchr(c.data + mid, '\n', c.len - mid);
	size_t cut = nl ? (size_t)(nl - c.data) + 1 : c.len;
	uint32_t n0 = count_nl(c.data + c.pos, cut - c.pos);
	uint32_t n1 = count_nl(c.data + cut, c.len - cut);
	raw = malloc(((size_t)n0 + n1 + 2) * sizeof(*raw));
	if (!raw) {
		rc = -ENOMEM;
		goto done;
	}
	for (int h = 0; h < 2; h++) {
		sub_part *p = &P[h];
		p->L = (ld){.t = t,
			    .err = p->err,
			    .errlen = L->errlen < CDR_ERR_MAX ? L->errlen
							      : CDR_ERR_MAX,
			    .file = L->file};
		p->c = c;
		p->raw = h ? raw + n0 + 1 : raw;
		p->cap = h ? n1 + 1 : n0 + 1;
		p->pmap = pmap;
		p->kmap = kmap;
		p->plan_names = plan_names;
		p->pkg_names = pkg_names;
		p->shards = L->shards;
		p->bucket = L->bucket;
	}
	P[0].c.len = cut;
	P[1].c.pos = cut;
	P[1].c.line = c.line + n0;
	run_two(threads, parse_part, &P[0], &P[1]);
	t->sub_text = c.data; /* the numbers and accounts point into it */
	c.data = NULL;
	for (int h = 0; h < 2; h++)
		if (P[h].rc) {
			rc = P[h].rc;
			if (L->errlen && P[h].err[0])
				memcpy(L->err, P[h].err, strlen(P[h].err) + 1);
			goto done;
		}
	/* A bucket's load keeps the text of its own rows only: the file's
	 * is as large as every bucket's together. */
	if (L->shards && (rc = sub_text_compact(t, P)))
		goto done;
	/* The second half's rows after the first's, packages likewise. */
	if (P[1].nraw && P[0].nraw < n0 + 1)
		memmove(raw + P[0].nraw, P[1].raw, P[1].nraw * sizeof(*raw));
	nraw = P[0].nraw + P[1].nraw;
	if (P[1].npk) {
		uint32_t *np = realloc(P[0].pkgs, ((size_t)P[0].npk + P[1].npk) *
							  sizeof(*np));
		if (!np) {
			rc = -ENOMEM;
			goto done;
		}
		memcpy(np + P[0].npk, P[1].pkgs, P[1].npk * sizeof(*np));
		for (uint32_t i = P[0].nraw; i < nraw; i++)
			raw[i].r.first_pkg += P[0].npk;
		P[0].pkgs = np;
	}
	t->row_pkgs = P[0].pkgs;
	P[0].pkgs = NULL;

	/* 2. Intern each half of the numbers and of the accounts, the
	 * tables sized from the rows that hash there (accounts: the rows
	 * whose account differs from the row before's, at least as many as
	 * the distinct accounts). */
	uint32_t cnt[SUB_SHARDS] = {0}, runs[2] = {0};
	for (uint32_t i = 0; i < nraw; i++) {
		cnt[raw[i].num_h >> (64 - SUB_SHARD_BITS)]++;
		runs[raw[i].account_h >> 63] += raw[i].new_run;
	}
	for (unsigned g = 0; g < 2; g++) {
		sub_group *q = &G[g];
		q->g = g;
		q->raw = raw;
		q->nraw = nraw;
		q->nmap = submap_sized(cnt, g * SUB_SHARDS / 2,
				       (g + 1) * SUB_SHARDS / 2);
		q->amap = map_new(runs[g]);
		q->sub = malloc(((size_t)nraw + 1) * sizeof(uint32_t));
		q->acct = malloc(((size_t)nraw + 1) * sizeof(uint32_t));
		if (!q->nmap || !q->amap || !q->sub || !q->acct) {
			rc = -ENOMEM;
			goto done;
		}
	}
	run_two(threads, intern_group, &G[0], &G[1]);
	if ((rc = G[0].rc) || (rc = G[1].rc))
		goto done;

	/* 3. Subscribers numbered in the order their first rows come, and
	 * the accounts ranked, at once. */
	uint32_t nloc = 0;
	for (unsigned k = 0; k < SUB_SHARDS; k++)
		nloc += G[k >= SUB_SHARDS / 2].nloc[k];
	uint32_t na = G[0].nacct + G[1].nacct;
	gidx_all = malloc(((size_t)nloc + 1) * sizeof(uint32_t));
	t->subs = calloc((size_t)nloc + 1, sizeof(*t->subs));
	rank = malloc(((size_t)na + 1) * sizeof(uint32_t));
	t->accounts = malloc(((size_t)na + 1) * sizeof(char *));
	if (!gidx_all || !t->subs || !rank || !t->accounts) {
		rc = -ENOMEM;
		goto done;
	}
	for (unsigned k = 0, o = 0; k < SUB_SHARDS; k++) {
		gidx[k] = gidx_all + o;
		o += G[k >= SUB_SHARDS / 2].nloc[k];
	}
	sub_step3 S[2] = {{.which = 0, .t = t, .raw = raw, .nraw = nraw,
			   .G = G, .gidx = gidx},
			  {.which = 1, .t = t, .G = G, .rank = rank}};
	run_two(threads, step3, &S[0], &S[1]);
	nnum = t->nsubs;
	uint32_t *rk[2] = {rank, rank + G[0].nacct};

	/* Rows by subscriber (a counting sort, file order kept), then first
	 * day; overlaps are errors. */
	t->rows = cdr__calloc_huge((size_t)nraw + 1, sizeof(*t->rows));
	if (!t->rows) {
		rc = -ENOMEM;
		goto done;
	}
	for (uint32_t s = 0, o = 0; s < nnum; s++) {
		t->subs[s].first_row = o;
		o += t->subs[s].nrows;
		t->subs[s].nrows = 0;
	}
	for (uint32_t i = 0; i < nraw; i++) {
		cdr__subscriber *s = &t->subs[raw[i].r.sub];
		unsigned g = (unsigned)(raw[i].account_h >> 63);
		cdr__sub_row *rw = &t->rows[s->first_row + s->nrows++];
		*rw = raw[i].r;
		rw->account = rk[g][G[g].acct[i]];
	}
	for (uint32_t s = 0; s < nnum; s++) {
		cdr__sub_row *rw = &t->rows[t->subs[s].first_row];
		for (uint32_t i = 1; i < t->subs[s].nrows; i++) {
			cdr__sub_row x = rw[i];
			uint32_t j = i;
			for (; j && rw[j - 1].from_day > x.from_day; j--)
				rw[j] = rw[j - 1];
			rw[j] = x;
		}
	}
	for (uint32_t i = 1; i < nraw; i++) {
		cdr__sub_row *r1 = &t->rows[i], *prev = &t->rows[i - 1];
		if (r1->sub != prev->sub)
			continue;
		if (prev->to_day >= r1->from_day) {
			rc = fail(L, c.name,
				  r1->line > prev->line ? r1->line : prev->line,
				  "from",
				  "rows of subscriber %s overlap (lines %u and "
				  "%u)",
				  t->subs[r1->sub].num, prev->line, r1->line);
			goto done;
		}
		/* A plan change only within one account: a number passed to
		 * another account the next day is a disconnection for the old
		 * one and an installation for the new one. */
		if (prev->to_day + 1 == r1->from_day &&
		    prev->account == r1->account)
			prev->change_end = r1->change_start = 1;
	}
	t->nrows = nraw;
	/* Which services each row's allowances cover (agg.c makes no bucket
	 * for a record none of them can take from). */
	t->row_allow_svc = malloc((size_t)nraw + 1);
	if (!t->row_allow_svc) {
		rc = -ENOMEM;
		goto done;
	}
	for (uint32_t i = 0; i < nraw; i++) {
		const cdr__sub_row *rw = &t->rows[i];
		uint8_t m = 0;
		for (uint32_t k = 0; k < rw->npkg; k++) {
			const cdr__package *pk =
				&t->packages[t->row_pkgs[rw->first_pkg + k]];
			for (uint32_t j = 0; j < pk->nallow; j++)
				m |= (uint8_t)(1u << t->allows[pk->first_allow + j]
							 .service);
		}
		t->row_allow_svc[i] = m;
	}

	/* 4. Each half of the number table gets its rows. */
	for (unsigned g = 0; g < 2; g++) {
		G[g].gidx = gidx;
		G[g].subs = t->subs;
		G[g].rows = t->rows;
	}
	run_two(threads, finish_group, &G[0], &G[1]);
	cdr__submap *nmap = calloc(1, sizeof(*nmap));
	if (!nmap) {
		rc = -ENOMEM;
		goto done;
	}
	for (unsigned k = 0; k < SUB_SHARDS; k++) {
		cdr__submap *from = G[k >= SUB_SHARDS / 2].nmap;
		nmap->s[k] = from->s[k];
		nmap->mask[k] = from->mask[k];
		nmap->n[k] = from->n[k];
		from->s[k] = NULL;
	}
	t->sub_map = nmap;
done:
	csv_close(&c);
	for (int h = 0; h < 2; h++) {
		free(P[h].pkgs);
		submap_free(G[h].nmap);
		map_free(G[h].amap);
		free(G[h].accts);
		free(G[h].sub);
		free(G[h].acct);
		free(G[h].order);
	}
	free(gidx_all);
	free(rank);
	free(raw);
	return rc < 0 ? rc : 0;
}

/* ---- outages --------------------------------------------------------- */

int32_t cdr__row_in(const cdr_tariff *t, uint32_t first, uint32_t nrows,
		    int64_t day)
{
	for (uint32_t i = first; i < first + nrows; i++)
		if (t->rows[i].from_day <= day && day <= t->rows[i].to_day)
			return (int32_t)i;
	return -1;
}

int32_t cdr__row_at(const cdr_tariff *t, uint32_t sub, int64_t day)
{
	return cdr__row_in(t, t->subs[sub].first_row, t->subs[sub].nrows, day);
}

/* outages.csv: local times to instants, and the row active at each
 * outage's start (the row whose plan fee and cap apply). */
static int load_outages(ld *L)
{
	static const char *const cols[] = {"subscriber", "from", "to"};
	cdr_tariff *t = L->t;
	csv c;
	uint32_t cap = 0;
	int rc = csv_open(L, &c, "outages.csv", NULL, 0, cols, 3, 3);
	if (!rc)
		while ((rc = csv_row(L, &c)) > 0) {
		const char *num = c.f[0] + (c.f[0][0] == '+');
		int32_t s = cdr__sub_lookup(t, num, strlen(num));
		int64_t from, to;
		if (s < 0 && !L->shards) {
			rc = fail(L, c.name, c.line, "subscriber",
				  "'%s' has no rows in subscribers.csv",
				  c.f[0]);
			break;
		}
		if (cdr__parse_datetime(c.f[1], strlen(c.f[1]), &from)) {
			rc = fail(L, c.name, c.line, "from",
				  "bad time '%s' (YYYY-MM-DD HH:MM:SS)", c.f[1]);
			break;
		}
		if (cdr__parse_datetime(c.f[2], strlen(c.f[2]), &to)) {
			rc = fail(L, c.name, c.line, "to",
				  "bad time '%s' (YYYY-MM-DD HH:MM:SS)", c.f[2]);
			break;
		}
		if (s < 0) /* a shard's load: the number's rows are elsewhere */
			continue;
		cdr__outage o = {.sub = (uint32_t)s, .line = c.line};
		o.from_utc = cdr__tz_local_to_utc(t->tz, from);
		o.to_utc = cdr__tz_local_to_utc(t->tz, to);
		if (o.to_utc <= o.from_utc) {
			rc = fail(L, c.name, c.line, "to",
				  "end '%s' is not after start '%s'", c.f[2],
				  c.f[1]);
			break;
		}
		if (t->noutages == cap) {
			cap = cap ? cap * 2 : 16;
			cdr__outage *n = realloc(t->outages, cap * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			t->outages = n;
		}
		t->outages[t->noutages++] = o;
	}
	csv_close(&c);
	return rc < 0 ? rc : 0;
}

/* ---- rate resolution ------------------------------------------------- */

/* Rate rows ordered by key (plan, service, zone, band), then from day. */
static int cmp_key(const void *a, const void *b, void *rows)
{
	const cdr__rate_row *key_rows = rows;
	const cdr__rate_row *x = &key_rows[*(const uint32_t *)a];
	const cdr__rate_row *y = &key_rows[*(const uint32_t *)b];
	if (x->plan != y->plan)
		return x->plan < y->plan ? -1 : 1;
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	if (x->band != y->band)
		return x->band < y->band ? -1 : 1;
	return (x->from_day > y->from_day) - (x->from_day < y->from_day);
}

/* Nonzero when two rows have different keys (from not compared). */
static int cmp_key_only(const cdr__rate_row *x, const cdr__rate_row *y)
{
	return x->plan != y->plan || x->service != y->service ||
	       x->zone != y->zone || x->band != y->band;
}

static uint64_t rate_hash(uint32_t plan, unsigned svc, uint32_t zone1,
			  unsigned band1)
{
	/* A multiply-xorshift mix: keys are small integers, so XXH3 would
	 * cost more than the probe it places (this runs per record). */
	uint64_t h = ((uint64_t)plan * 3 + svc) * 0x9e3779b97f4a7c15ULL;
	h ^= ((uint64_t)zone1 << 8 | band1) * 0xc2b2ae3d27d4eb4fULL;
	return h ^ (h >> 29);
}

static int32_t rate_find_keys(const cdr_tariff *t, uint32_t plan,
			      unsigned svc, uint32_t zone, uint32_t band,
			      int64_t day);

static const cdr__rate_key *key_slot(const cdr_tariff *t, uint32_t plan,
				     unsigned svc, uint32_t zone1,
				     unsigned band1);

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The four keys whose rows decide cell (plan p, service s, zone z, band
 * b), most specific first: zone and band, zone, band, neither (z ==
 * nzones is the cell of a zone-less record). NULL where a key has no rows. */
static void cell_keys(const cdr_tariff *t, uint32_t p, unsigned s, uint32_t z,
		      uint32_t b, const cdr__rate_key *key[4])
{
	uint32_t z1 = z == t->nzones ? 0 : z + 1;
	key[0] = key_slot(t, p, s, z1, b + 1);
	key[1] = key_slot(t, p, s, z1, 0);
	key[2] = key_slot(t, p, s, 0, b + 1);
	key[3] = key_slot(t, p, s, 0, 0);
}

/*
 * The usual tariff is small: then each cell's timeline of rows, resolved
 * ahead of time from the keys, makes a lookup one index and a short scan
 * (the probes cost some 40 instructions per record, 2% of a run). Only
 * while the cells and the work of resolving them stay within a constant
 * factor of the rows plus a constant: the index must not grow with
 * plans x zones x bands, nor its build with cells x dated rows.
 */
static int resolve_cells(cdr_tariff *t)
{
	size_t per_plan = CDR_NSVC * ((size_t)t->nzones + 1) * t->nbands;
	size_t limit = 16 * (size_t)t->nrates + 65536;
	if (per_plan > limit || t->nplans > limit / per_plan)
		return 0;
	size_t ncells = per_plan * t->nplans, work = 0, most = 0;
	const size_t work_limit = 32 * (size_t)t->nrates + ((size_t)1 << 18);
	for (uint32_t p = 0; p < t->nplans; p++)
		for (unsigned s = 0; s < CDR_NSVC; s++)
			for (uint32_t z = 0; z <= t->nzones; z++)
				for (uint32_t b = 0; b < t->nbands; b++) {
					/* The rows of the cell's four keys:
					 * its answer changes only at their
					 * from days. */
					const cdr__rate_key *key[4];
					cell_keys(t, p, s, z, b, key);
					size_t n = 0;
					for (int i = 0; i < 4; i++)
						n += key[i] ? key[i]->n : 0;
					work += n;
					most = n > most ? n : most;
					if (work > work_limit)
						return 0;
				}
	t->cell_off = malloc((ncells + 1) * sizeof(*t->cell_off));
	t->cell_steps = malloc((work + 1) * sizeof(*t->cell_steps));
	int64_t *bp = malloc((most + 1) * sizeof(*bp));
	if (!t->cell_off || !t->cell_steps || !bp) {
		free(bp);
		return -ENOMEM;
	}
	size_t c = 0, o = 0;
	for (uint32_t p = 0; p < t->nplans; p++)
		for (unsigned s = 0; s < CDR_NSVC; s++)
			for (uint32_t z = 0; z <= t->nzones; z++)
				for (uint32_t b = 0; b < t->nbands; b++) {
					const cdr__rate_key *key[4];
					cell_keys(t, p, s, z, b, key);
					size_t n = 0;
					for (int i = 0; i < 4; i++)
						for (uint32_t j = 0; key[i] && j < key[i]->n; j++)
							bp[n++] = t->steps[key[i]->first + j]
									  .from_day;
					qsort(bp, n, sizeof(*bp), cmp_i64);
					t->cell_off[c++] = (uint32_t)o;
					int32_t prev = -1;
					for (size_t j = 0; j < n; j++) {
						if (j && bp[j] == bp[j - 1])
							continue;
						int32_t r = rate_find_keys(t, p, s, z,
									   b, bp[j]);
						if (r == prev)
							continue;
						t->cell_steps[o].from_day = bp[j];
						t->cell_steps[o++].row = (uint32_t)r;
						prev = r;
					}
				}
	t->cell_off[c] = (uint32_t)o;
	free(bp);
	/* Most cells hold one row from always: that row, without a scan. */
	t->cell_row = malloc((ncells + 1) * sizeof(*t->cell_row));
	if (!t->cell_row)
		return -ENOMEM;
	for (c = 0; c < ncells; c++) {
		uint32_t a = t->cell_off[c], n = t->cell_off[c + 1] - a;
		t->cell_row[c] = n == 0 ? -1
				 : n == 1 && t->cell_steps[a].from_day ==
						     CDR_DAY_NONE
				     ? (int32_t)t->cell_steps[a].row
				     : CDR_CELL_DATED;
	}
	return 0;
}

/*
 * Index the rate keys: rows sorted by (key, from) once, duplicate keys
 * refused, and each key written into an open-addressing table with its
 * dated rows. The index is proportional to the rows: the fallback order
 * of section 4 is followed per lookup (at most four probes, two when the
 * zone has no keys of its own), instead of resolving every plan x
 * service x zone x band cell ahead of time (100 plans, 1,000 zones and
 * 202 bands made 60M cells: 7 s and 1.2 GB for a 22 KB tariff). Sorting
 * also replaces a scan of a cell's rows per breakpoint, which made 20k
 * dated rows of one key quadratic.
 */
static int resolve_rates(ld *L)
{
	cdr_tariff *t = L->t;
	L->file = "rates.csv";
	uint32_t *ord = malloc((t->nrates + 1) * sizeof(*ord));
	if (!ord)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nrates; i++)
		ord[i] = i;
	if (t->nrates)
		qsort_r(ord, t->nrates, sizeof(*ord), cmp_key, t->rates);
	for (uint32_t i = 1; i < t->nrates; i++)
		if (!cmp_key(&ord[i - 1], &ord[i], t->rates)) {
			const cdr__rate_row *a = &t->rates[ord[i - 1]],
					    *b = &t->rates[ord[i]];
			free(ord);
			return fail(L, "rates.csv", a->line > b->line ? a->line
								      : b->line,
				    "from",
				    "duplicate key: same plan, service, zone, "
				    "band and from as line %u",
				    a->line > b->line ? b->line : a->line);
		}

	uint32_t nkeys = 0;
	for (uint32_t i = 0; i < t->nrates; i++)
		nkeys += i == 0 || cmp_key_only(&t->rates[ord[i - 1]],
						&t->rates[ord[i]]);
	uint32_t cap = 16;
	while (cap < nkeys * 2u + 16) /* load at most 1/2: short probes */
		cap <<= 1;
	t->rate_keys = calloc(cap, sizeof(*t->rate_keys));
	t->rate_mask = cap - 1;
	t->steps = malloc((t->nrates + 1) * sizeof(*t->steps));
	t->zone_keyed = calloc(t->nzones + 1, 1);
	t->plan_svc = calloc((size_t)t->nplans * CDR_NSVC, sizeof(*t->plan_svc));
	if (!t->rate_keys || !t->steps || !t->zone_keyed || !t->plan_svc) {
		free(ord);
		return -ENOMEM;
	}
	for (uint32_t i = 0, j; i < t->nrates; i = j) {
		const cdr__rate_row *r = &t->rates[ord[i]];
		for (j = i; j < t->nrates &&
			    (j == i || !cmp_key_only(r, &t->rates[ord[j]]));
		     j++) {
			t->steps[j].from_day = t->rates[ord[j]].from_day;
			t->steps[j].row = ord[j];
		}
		uint32_t zone1 = (uint32_t)(r->zone + 1);
		unsigned band1 = (unsigned)(r->band + 1);
		uint64_t h = rate_hash(r->plan, r->service, zone1, band1);
		uint32_t s = (uint32_t)h & t->rate_mask;
		while (t->rate_keys[s].n)
			s = (s + 1) & t->rate_mask;
		cdr__rate_key *k = &t->rate_keys[s];
		k->plan = r->plan;
		k->zone = zone1;
		k->svc = r->service;
		k->band = (uint8_t)band1;
		k->first = i;
		k->n = j - i;
		cdr__plan_svc *ps = &t->plan_svc[(size_t)r->plan * CDR_NSVC +
						 r->service];
		if (r->zone != CDR_ANY) {
			t->zone_keyed[r->zone] = 1;
			ps->flags |= CDR_PS_ZONE;
		} else if (r->band != CDR_ANY) {
			ps->flags |= CDR_PS_STAR_BAND;
		} else {
			ps->star_slot = s + 1;
		}
	}
	free(ord);
	return resolve_cells(t);
}

/*
 * A split call is priced exactly and rounded once: the fractions of its
 * pieces are added over the least common multiple of their units
 * (rate.c). Keep that multiple below 2^64 so the sum fits in 128 bits; a
 * tariff where it does not is refused here rather than mis-rated later.
 * The rows that may price a voice call of plan p to zone z are p's voice
 * rows of zone z and of zone `*`: the multiple of the `*` rows is taken
 * once per plan, then each zone's own rows on top (linear in the rows).
 */
static int check_split_units(ld *L)
{
	cdr_tariff *t = L->t;
	if (!t->band_split)
		return 0;
	for (uint32_t i = 0, j; i < t->nrates; i = j) {
		/* steps[] is sorted by key: one (plan, voice) run at a time,
		 * the `*` zone first (CDR_ANY sorts lowest). */
		const cdr__rate_row *r0 = &t->rates[t->steps[i].row];
		for (j = i; j < t->nrates; j++) {
			const cdr__rate_row *r = &t->rates[t->steps[j].row];
			if (r->plan != r0->plan || r->service != r0->service)
				break;
		}
		if (r0->service != CDR_VOICE)
			continue;
		u128 star = 1, l = 1;
		int32_t zone = CDR_ANY;
		for (uint32_t k = i; k < j; k++) {
			const cdr__rate_row *r = &t->rates[t->steps[k].row];
			if (r->zone != zone) {
				zone = r->zone;
				l = star;
			}
			uint64_t g = cdr__gcd((uint64_t)(l % r->unit), r->unit);
			l = l / (g ? g : r->unit) * r->unit;
			if (l > UINT64_MAX)
				return fail(L, "rates.csv", r->line, "unit",
					    "with band_split = split the units "
					    "of one plan and zone must have a "
					    "common multiple below 2^64");
			if (zone == CDR_ANY)
				star = l;
		}
	}
	return 0;
}

/* ---- load/free ------------------------------------------------------- */

static int load_all(cdr_tariff **out, const char *dir,
		    const char *subscribers_path, int shards, int bucket,
		    cdr__timg *img, int *used, char *why, size_t whylen,
		    char *err, size_t errlen);

int cdr_tariff_load(cdr_tariff **out, const char *dir,
		    const char *subscribers_path, char *err, size_t errlen)
{
	return cdr_tariff_load_bucket(out, dir, subscribers_path, 0, 0, err,
				      errlen);
}

int cdr_tariff_load_bucket(cdr_tariff **out, const char *dir,
			   const char *subscribers_path, int shards, int bucket,
			   char *err, size_t errlen)
{
	return load_all(out, dir, subscribers_path, shards, bucket, NULL, NULL,
			NULL, 0, err, errlen);
}

int cdr__tariff_load_img(cdr_tariff **out, const char *dir,
			 const char *subscribers_path, cdr__timg *img,
			 int *used, char *why, size_t whylen, char *err,
			 size_t errlen)
{
	return load_all(out, dir, subscribers_path, 0, 0, img, used, why,
			whylen, err, errlen);
}

/* The load; with img (a whole tariff's load only) the subscriber tables
 * come from it when its plans and packages are those loaded here. */
static int load_all(cdr_tariff **out, const char *dir,
		    const char *subscribers_path, int shards, int bucket,
		    cdr__timg *img, int *used, char *why, size_t whylen,
		    char *err, size_t errlen)
{
	cdr_tariff *t = calloc(1, sizeof(*t));
	ld L = {.t = t, .err = err, .errlen = errlen,
		.shards = shards > 0 ? shards : 0, .bucket = bucket};
	char *free_zones = NULL;
	cdr__map *zmap = map_new(64), *pmap = map_new(64), *bmap = map_new(16),
		 *kmap = map_new(64);
	char **pkg_names = NULL, **plan_names = NULL;
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (!t || !zmap || !pmap || !bmap || !kmap ||
	    !(t->dir = strdup(dir))) {
		rc = -ENOMEM;
		goto done;
	}
	uint32_t free_line = 0;
	if ((rc = load_conf(&L, &free_zones, &free_line)) || (rc = load_zones(&L, &zmap)) ||
	    (rc = load_bands(&L, &bmap)) || (rc = load_holidays(&L)) ||
	    (rc = load_plans(&L, &pmap, &plan_names)))
		goto done;
	rc = load_rates(&L, pmap, plan_names, zmap, bmap);
	if (!rc)
		rc = load_packages(&L, &kmap, &pkg_names, zmap, bmap);
	int from_img = 1; /* 1: not from the image */
	if (!rc && img && (from_img = cdr__timg_attach(t, img, why, whylen)) < 0)
		rc = from_img;
	if (used)
		*used = !rc && !from_img;
	if (!rc && from_img)
		rc = load_subscribers(&L, subscribers_path, pmap, plan_names,
				      kmap, pkg_names);
	free(pkg_names); /* strings owned by t->packages */
	if (rc || (rc = load_outages(&L)) || (rc = resolve_rates(&L)) ||
	    (rc = check_split_units(&L)) ||
	    (rc = cdr__norm_load(&t->norm, dir, err, errlen)))
		goto done;

	t->zone_free = calloc(t->nzones, 1);
	if (!t->zone_free) {
		rc = -ENOMEM;
		goto done;
	}
	for (char *s = free_zones, *e; s && *s; s = e) {
		e = strchr(s, ',');
		if (e)
			*e++ = '\0';
		s = trim(s);
		int32_t z = map_get(zmap, (const char *const *)t->zone_names, s,
				    strlen(s));
		if (z < 0) {
			rc = fail(&L, "tariff.conf", free_line, "free_zones",
				  "unknown zone '%s'", s);
			goto done;
		}
		t->zone_free[z] = 1;
	}
done:
	free(plan_names); /* the strings belong to t->plans */
	if (rc == -ENOMEM && !err[0] && errlen)
		fail(&L, L.file ? L.file : dir, 0, NULL, "out of memory");
	free(free_zones);
	map_free(zmap);
	map_free(pmap);
	map_free(bmap);
	map_free(kmap);
	if (rc) {
		cdr_tariff_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

void cdr_tariff_free(cdr_tariff *t)
{
	if (!t)
		return;
	if (t->img) /* the subscriber tables are the image's */
		cdr__timg_detach(t);
	cdr__tz_free(t->tz);
	for (uint32_t i = 0; i < t->nzones; i++)
		free(t->zone_names[i]);
	free(t->zone_names);
	free(t->zone_free);
	free(t->trie);
	free(t->trie_line);
	free(t->zone_tab);
	free(t->zone_more);
	for (uint32_t i = 0; i < t->nbands; i++)
		free(t->band_names[i]);
	free(t->band_names);
	for (int d = 0; d < CDR_NDAYTYPE; d++)
		free(t->segs[d]);
	free(t->holidays);
	for (uint32_t i = 0; i < t->nplans; i++)
		free(t->plans[i].name);
	free(t->plans);
	free(t->rates);
	free(t->rate_keys);
	free(t->steps);
	free(t->zone_keyed);
	free(t->plan_svc);
	free(t->cell_off);
	free(t->cell_steps);
	free(t->cell_row);
	for (uint32_t i = 0; i < t->npackages; i++)
		free(t->packages[i].name);
	free(t->packages);
	free(t->allows);
	free(t->sub_text);
	free(t->subs);
	cdr__free_huge(t->rows);
	free(t->row_pkgs);
	free(t->row_allow_svc);
	free(t->accounts); /* names point into sub_text */
	submap_free(t->sub_map);
	free(t->outages);
	cdr__norm_free(t->norm);
	free(t->dir);
	free(t);
}

/* ---- lookups --------------------------------------------------------- */

int32_t cdr__zone_lookup(const cdr_tariff *t, const char *d, size_t n)
{
	return cdr__zone_lookup_inline(t, d, n);
}

int32_t cdr__zone_lookup_trie(const cdr_tariff *t, const char *d, size_t n)
{
	return cdr__zone_walk(t, 0, t->trie[0].zone, d, d + n);
}

int32_t cdr__zone_walk(const cdr_tariff *t, uint32_t at, int32_t best,
		       const char *d, const char *e)
{
	const cdr__trie_node *tr = t->trie, *node = &tr[at];
	/* Per digit: its child, and the zone of a prefix ending there. */
	for (; d < e; d++) {
		unsigned s = (unsigned)(unsigned char)*d - '0';
		if (s > 9) {
			int x = sym(*d);
			if (x < 0)
				break;
			s = (unsigned)x;
		}
		const int32_t c = node->child[s];
		if (!c)
			break;
		node = &tr[c];
		if (node->zone >= 0)
			best = node->zone;
	}
	/* An `=number` row beats every prefix, but only for that number. */
	if (d == e && node->exact >= 0)
		return node->exact;
	return best;
}

int32_t cdr__sub_lookup(const cdr_tariff *t, const char *num, size_t n)
{
	cdr__subhit hit;
	if (!cdr__sub_find(t, num, n, cdr__sub_hash(num, n), &hit))
		return -1;
	return (int32_t)t->rows[hit.first].sub;
}

uint64_t cdr__sub_hash(const char *num, size_t n)
{
	uint64_t k[2];
	cdr__pack_key(num, n, k);
	return cdr__sub_hash_packed(k);
}

void cdr__sub_prefetch(const cdr_tariff *t, uint64_t h)
{
	cdr__submap_prefetch(t->sub_map, h);
}

int cdr__sub_find(const cdr_tariff *t, const char *num, size_t n, uint64_t h,
		  cdr__subhit *hit)
{
	uint64_t key[2];
	if (n > 32) {
		hit->known = 0;
		hit->first = hit->nrows = 0;
		return 0;
	}
	sub_key(num, n, &key[0], &key[1]);
	return cdr__sub_find_packed(t, key, h, hit);
}

/* sub_probe copies a slot's fields from first_row on as one block. */
#define SAME_AT(f, g)                                                       \
	(offsetof(cdr__subhit, f) - offsetof(cdr__subhit, first) ==         \
		 offsetof(subslot, g) - offsetof(subslot, first_row) &&     \
	 sizeof(((cdr__subhit *)0)->f) == sizeof(((subslot *)0)->g))
_Static_assert(offsetof(cdr__subhit, first) == 0 && SAME_AT(first, first_row) &&
		       SAME_AT(nrows, nrows) && SAME_AT(from_day, from_day) &&
		       SAME_AT(to_day, to_day) && SAME_AT(account, account) &&
		       SAME_AT(plan, plan) && SAME_AT(has_pkgs, has_pkgs) &&
		       offsetof(cdr__subhit, known) ==
			       offsetof(cdr__subhit, has_pkgs) + 4,
	       "cdr__subhit's block is the slot's");
#undef SAME_AT

/* The probe of cdr__sub_find_packed, inline into it and into the batch
 * below; hit's fields are written once, on the way out. */
static inline __attribute__((always_inline)) int
sub_probe(const cdr__submap *m, const uint64_t key[2], uint64_t h,
	  cdr__subhit *hit)
{
	if (m) {
		const unsigned k = (unsigned)(h >> (64 - SUB_SHARD_BITS));
		const subslot *s = m->s[k];
		const uint32_t mask = m->mask[k];
		const uint64_t k0 = key[0], k1 = key[1];
		for (uint32_t j = (uint32_t)h & mask; s[j].nrows;
		     j = (j + 1) & mask) {
			const subslot *e = &s[j];
			if (e->k0 == k0 && e->k1 == k1) { /* the key: h is of it */
				memcpy(hit, &e->first_row,
				       offsetof(cdr__subhit, known));
				return hit->known = 1;
			}
		}
	}
	hit->known = 0;
	hit->first = hit->nrows = 0;
	return 0;
}

int cdr__sub_find_packed(const cdr_tariff *t, const uint64_t key[2],
			 uint64_t h, cdr__subhit *hit)
{
	return sub_probe(t->sub_map, key, h, hit);
}

void cdr__sub_find_batch(const cdr_tariff *t, int n, uint32_t live,
			 const cdr__rec *rec, const uint64_t *h,
			 cdr__subhit *hit)
{
	const cdr__submap *m = t->sub_map;
	for (int i = 0; i < n; i++) {
		if (!(live >> i & 1))
			continue;
		cdr__subhit *x = &hit[(size_t)i * CDR_SIDES];
		/* A single row came with the slot; only numbers with
		 * several rows need the rows array. */
		if (sub_probe(m, rec[i].subk, h[i], x) && x->nrows > 1)
			__builtin_prefetch(&t->rows[x->first]);
	}
}

unsigned cdr__day_type(const cdr_tariff *t, int64_t day)
{
	uint32_t a = 0, b = t->nholidays;
	while (a < b) {
		uint32_t m = (a + b) / 2;
		if (t->holidays[m] < day)
			a = m + 1;
		else
			b = m;
	}
	if (a < t->nholidays && t->holidays[a] == day)
		return CDR_HOLIDAY;
	return cdr__weekday(day);
}

/* Latest row of key k in force on day, or -1 (none yet). */
static inline int32_t key_pick(const cdr_tariff *t, const cdr__rate_key *k,
			       int64_t day)
{
	const cdr__rate_step *st = &t->steps[k->first];
	if (st[0].from_day > day)
		return -1;
	/* The last step on or before day: usually the only one; a key with
	 * thousands of dated rows is a binary search, not a scan. */
	uint32_t lo = 0, hi = k->n;
	while (hi - lo > 1) {
		uint32_t m = lo + (hi - lo) / 2;
		if (st[m].from_day <= day)
			lo = m;
		else
			hi = m;
	}
	return (int32_t)st[lo].row;
}

/* The key (plan, svc, zone1, band1), or NULL when rates.csv has none. */
static inline const cdr__rate_key *key_slot(const cdr_tariff *t,
					    uint32_t plan, unsigned svc,
					    uint32_t zone1, unsigned band1)
{
	uint64_t h = rate_hash(plan, svc, zone1, band1);
	for (uint32_t s = (uint32_t)h & t->rate_mask;;
	     s = (s + 1) & t->rate_mask) {
		const cdr__rate_key *k = &t->rate_keys[s];
		if (!k->n)
			return NULL;
		if (k->plan == plan && k->zone == zone1 && k->svc == svc &&
		    k->band == band1)
			return k;
	}
}

/* Its latest row in force on day, or -1. */
static inline int32_t key_find(const cdr_tariff *t, uint32_t plan,
			       unsigned svc, uint32_t zone1, unsigned band1,
			       int64_t day)
{
	const cdr__rate_key *k = key_slot(t, plan, svc, zone1, band1);
	return k ? key_pick(t, k, day) : -1;
}

static int32_t rate_find_keys(const cdr_tariff *t, uint32_t plan,
			      unsigned svc, uint32_t zone, uint32_t band,
			      int64_t day)
{
	/* Section 4's order: (zone, band), (zone, *), (*, band), (*, *),
	 * the first key with a row in force winning. Only keys that the plan
	 * and zone have are probed, and (*, *) is found without a probe: a
	 * usual tariff costs one or two probes per record. The data zone `*`
	 * (index nzones) starts at (*, band). */
	const cdr__plan_svc *ps = &t->plan_svc[(size_t)plan * CDR_NSVC + svc];
	int32_t row;
	if ((ps->flags & CDR_PS_ZONE) && zone < t->nzones &&
	    t->zone_keyed[zone] &&
	    ((row = key_find(t, plan, svc, zone + 1, band + 1, day)) >= 0 ||
	     (row = key_find(t, plan, svc, zone + 1, 0, day)) >= 0))
		return row;
	if ((ps->flags & CDR_PS_STAR_BAND) &&
	    (row = key_find(t, plan, svc, 0, band + 1, day)) >= 0)
		return row;
	if (ps->star_slot)
		return key_pick(t, &t->rate_keys[ps->star_slot - 1], day);
	return -1;
}

int32_t cdr__rate_find(const cdr_tariff *t, uint32_t plan, unsigned svc,
		       uint32_t zone, uint32_t band, int64_t day)
{
	if (!t->cell_off)
		return rate_find_keys(t, plan, svc, zone, band, day);
	uint32_t cell;
	return cdr__rate_find_inline(t, plan, svc, zone, band, day, &cell);
}

/* ---- describe -------------------------------------------------------- */

static void put_day(FILE *o, int64_t day)
{
	int64_t y;
	unsigned m, d;
	cdr__civil_from_days(day, &y, &m, &d);
	fprintf(o, "%04lld-%02u-%02u", (long long)y, m, d);
}

static void put_money(FILE *o, int64_t micros)
{
	char b[64];
	size_t n = cdr__fmt_scaled(b, micros, 6);
	/* Trim trailing zeros for reading, keep at least 2 places. */
	while (n > 3 && b[n - 1] == '0' && b[n - 3] != '.')
		n--;
	fwrite(b, 1, n, o);
}

static const char *zname(const cdr_tariff *t, int32_t z)
{
	return z < 0 ? "*" : t->zone_names[z];
}

static const char *bname(const cdr_tariff *t, int32_t b)
{
	return b < 0 ? "*" : t->band_names[b];
}

/* The tariff's directory and tariff.conf settings: two lines. */
static void put_settings(FILE *o, const cdr_tariff *t)
{
	static const char *const split[] = {"start", "split"};
	static const char *const pro[] = {"half_month", "daily", "none"};
	fprintf(o, "tariff %s\n", t->dir);
	fprintf(o, "  timezone %s, currency %s, decimals %d, band_split %s, "
		   "proration %s\n",
		cdr__tz_name(t->tz), t->currency, t->decimals,
		split[t->band_split], pro[t->proration]);
}

/* The band grid: one line a day type, its bands by local time. */
static void put_band_grid(FILE *o, const cdr_tariff *t)
{
	for (int d = 0; d < CDR_NDAYTYPE; d++) {
		fprintf(o, "  %-7s", day_names[d]);
		for (uint32_t i = 0; i < t->nsegs[d]; i++) {
			const cdr__band_seg *s = &t->segs[d][i];
			fprintf(o, " %02d:%02d-%02d:%02d %s", s->from_min / 60,
				s->from_min % 60, s->to_min / 60, s->to_min % 60,
				t->band_names[s->band]);
		}
		fputc('\n', o);
	}
}

int cdr_tariff_describe(const cdr_tariff *t, FILE *o)
{
	put_settings(o, t);
	fprintf(o, "zones: %u (from %u prefixes)\n", t->nzones, t->nprefixes);
	for (uint32_t z = 0; z < t->nzones; z++)
		fprintf(o, "  %s%s\n", t->zone_names[z],
			t->zone_free[z] ? " (free)" : "");
	fprintf(o, "bands: %u\n", t->nbands);
	put_band_grid(o, t);
	fprintf(o, "holidays: %u\n", t->nholidays);
	for (uint32_t i = 0; i < t->nholidays; i++) {
		fputs("  ", o);
		put_day(o, t->holidays[i]);
		fputc('\n', o);
	}
	fprintf(o, "plans: %u\n", t->nplans);
	for (uint32_t i = 0; i < t->nplans; i++) {
		fprintf(o, "  %s monthly_fee ", t->plans[i].name);
		put_money(o, t->plans[i].fee_micros);
		fputc('\n', o);
	}
	fprintf(o, "rates: %u\n", t->nrates);
	for (uint32_t i = 0; i < t->nrates; i++) {
		const cdr__rate_row *r = &t->rates[i];
		fprintf(o, "  %s %s zone %s band %s: connect ",
			t->plans[r->plan].name, service_names[r->service],
			zname(t, r->zone), bname(t, r->band));
		put_money(o, r->connect_micros);
		fputs(" price ", o);
		put_money(o, r->price_micros);
		fprintf(o, " per %llu, first %llu, increment %llu",
			(unsigned long long)r->unit,
			(unsigned long long)r->first,
			(unsigned long long)r->increment);
		if (r->from_day != CDR_DAY_NONE) {
			fputs(", from ", o);
			put_day(o, r->from_day);
		}
		fputc('\n', o);
	}
	fprintf(o, "packages: %u\n", t->npackages);
	for (uint32_t i = 0; i < t->npackages; i++) {
		const cdr__package *p = &t->packages[i];
		fprintf(o, "  %s monthly_fee ", p->name);
		put_money(o, p->fee_micros);
		fputc('\n', o);
		for (uint32_t k = 0; k < p->nallow; k++) {
			const cdr__allowance *a = &t->allows[p->first_allow + k];
			fprintf(o, "    %llu units of %s zone %s band %s\n",
				(unsigned long long)a->amount,
				service_names[a->service], zname(t, a->zone),
				bname(t, a->band));
		}
	}
	fprintf(o, "subscribers: %u numbers, %u rows, %u accounts\n", t->nsubs,
		t->nrows, t->naccounts - 1);
	for (uint32_t i = 0; i < t->nrows; i++) {
		const cdr__sub_row *r = &t->rows[i];
		fprintf(o, "  %s account %s plan %s from ", t->subs[r->sub].num,
			t->accounts[r->account], t->plans[r->plan].name);
		put_day(o, r->from_day);
		if (r->to_day != CDR_DAY_OPEN) {
			fputs(" to ", o);
			put_day(o, r->to_day);
		}
		for (uint32_t k = 0; k < r->npkg; k++)
			fprintf(o, "%s%s", k ? ";" : " packages ",
				t->packages[t->row_pkgs[r->first_pkg + k]].name);
		fputc('\n', o);
	}
	fprintf(o, "outages: %u\n", t->noutages);
	for (uint32_t i = 0; i < t->noutages; i++)
		fprintf(o, "  %s %lld..%lld UTC (%lld s)\n",
			t->subs[t->outages[i].sub].num,
			(long long)t->outages[i].from_utc,
			(long long)t->outages[i].to_utc,
			(long long)(t->outages[i].to_utc -
				    t->outages[i].from_utc));
	cdr__norm_describe(t->norm, o); /* normalize.c */
	return ferror(o) ? -EIO : 0;
}

/* ---- check ------------------------------------------------------------ */

/* A UTC instant as local "YYYY-MM-DD HH:MM:SS" of the tariff's zone. */
static void put_local(FILE *o, const cdr_tariff *t, int64_t utc)
{
	int64_t local = utc + cdr__tz_offset_at(t->tz, utc);
	int64_t day = cdr__floor_div(local, 86400), s = local - day * 86400;
	put_day(o, day);
	fprintf(o, " %02d:%02d:%02d", (int)(s / 3600), (int)(s / 60 % 60),
		(int)(s % 60));
}

/* Every prefix of the zone trie below node `n` (prefix so far in p),
 * depth first in the order 0-9, '*', '#': "prefix,zone" lines. */
static void put_prefixes(FILE *o, const cdr_tariff *t, int32_t n, char *p,
			 size_t len)
{
	static const char digit[12] = "0123456789*#";
	const cdr__trie_node *nd = &t->trie[n];
	if (nd->exact >= 0)
		fprintf(o, "=%.*s,%s\n", (int)len, p, t->zone_names[nd->exact]);
	if (nd->zone >= 0)
		fprintf(o, "%.*s,%s\n", (int)len, p, t->zone_names[nd->zone]);
	if (len >= CDR_LINE_MAX)
		return;
	for (int c = 0; c < 12; c++)
		if (nd->child[c]) {
			p[len] = digit[c];
			put_prefixes(o, t, nd->child[c], p, len + 1);
		}
}

/* Plans some subscriber row uses: a plan nobody is on can see nothing. */
static uint8_t *plans_in_use(const cdr_tariff *t)
{
	uint8_t *used = calloc(t->nplans + 1, 1);
	for (uint32_t i = 0; used && i < t->nrows; i++)
		used[t->rows[i].plan] = 1;
	return used;
}

/*
 * Holes: for each plan in use, each service and each zone a record of it
 * can have (voice and sms: every zone that is not free; data: `*`), the
 * bands with no rate row at all, on any date. A record there is rejected
 * no_rate, which is seldom what the tariff's author meant. A plan with no
 * row of a service is one warning, not one per zone. At most 20 are
 * printed; returns the count.
 */
static int find_holes(const cdr_tariff *t, FILE *w)
{
	uint8_t *used = plans_in_use(t);
	int holes = 0, shown = 0;
	if (!used)
		return 0;
	for (uint32_t p = 0; p < t->nplans; p++) {
		if (!used[p])
			continue;
		for (unsigned s = 0; s < CDR_NSVC; s++) {
			int any = 0;
			for (uint32_t i = 0; i < t->nrates && !any; i++)
				any = t->rates[i].plan == p &&
				      t->rates[i].service == s;
			if (!any) {
				if (shown++ < 20 && w)
					fprintf(w,
						"cdrate: warning: plan %s has no %s "
						"rate: its %s records are "
						"rejected no_rate\n",
						t->plans[p].name,
						service_names[s],
						service_names[s]);
				holes++;
				continue;
			}
			uint32_t z0 = s == CDR_DATA ? t->nzones : 0;
			uint32_t z1 = s == CDR_DATA ? t->nzones + 1 : t->nzones;
			for (uint32_t z = z0; z < z1; z++) {
				if (z < t->nzones && t->zone_free[z])
					continue;
				int missing = 0;
				for (uint32_t b = 0; b < t->nbands; b++)
					missing += cdr__rate_find(
							   t, p, s, z, b,
							   CDR_DAY_OPEN - 1) < 0;
				if (!missing)
					continue;
				holes++;
				if (shown++ >= 20 || !w)
					continue;
				fprintf(w, "cdrate: warning: plan %s has no %s rate for "
					   "zone %s, band",
					t->plans[p].name, service_names[s],
					z < t->nzones ? t->zone_names[z] : "*");
				const char *sep = missing > 1 ? "s " : " ";
				for (uint32_t b = 0; b < t->nbands; b++)
					if (cdr__rate_find(t, p, s, z, b,
							   CDR_DAY_OPEN - 1) <
					    0) {
						fprintf(w, "%s%s", sep,
							t->band_names[b]);
						sep = ", ";
					}
				fputc('\n', w);
			}
		}
	}
	if (shown > 20 && w)
		fprintf(w, "cdrate: warning: ... and %d more holes\n", shown - 20);
	free(used);
	return holes;
}

static void check_summary(const cdr_tariff *t, FILE *o)
{
	put_settings(o, t);
	uint32_t dated = 0;
	for (uint32_t i = 0; i < t->nrates; i++)
		dated += t->rates[i].from_day != CDR_DAY_NONE;
	fprintf(o,
		"  %u plans, %u zones (%u prefixes), %u bands, %u holidays, "
		"%u rates (%u dated), %u packages (%u allowances),\n"
		"  %u subscribers (%u rows), %u accounts, %u outages\n",
		t->nplans, t->nzones, t->nprefixes, t->nbands, t->nholidays,
		t->nrates, dated, t->npackages, t->nallows, t->nsubs, t->nrows,
		t->naccounts - 1, t->noutages);
	fputs("zones:", o);
	for (uint32_t z = 0; z < t->nzones && z < 40; z++)
		fprintf(o, " %s%s", t->zone_names[z],
			t->zone_free[z] ? " (free)" : "");
	fputs(t->nzones > 40 ? " ... (--list zones)\n" : "\n", o);
	fputs("band grid (local time):\n", o);
	put_band_grid(o, t);
	fputs("plans:", o);
	for (uint32_t i = 0; i < t->nplans && i < 40; i++) {
		fprintf(o, " %s (", t->plans[i].name);
		put_money(o, t->plans[i].fee_micros);
		fputc(')', o);
	}
	fputs(t->nplans > 40 ? " ...\n" : "\n", o);
	if (t->npackages) {
		fputs("packages:", o);
		for (uint32_t i = 0; i < t->npackages && i < 40; i++) {
			fprintf(o, " %s (", t->packages[i].name);
			put_money(o, t->packages[i].fee_micros);
			fputc(')', o);
		}
		fputs(t->npackages > 40 ? " ...\n" : "\n", o);
	}
	/* The dates prices change on: a month's price change at a glance. */
	if (dated) {
		fputs("price changes:", o);
		int64_t last = CDR_DAY_NONE;
		for (int k = 0; k < 40; k++) {
			int64_t next = CDR_DAY_OPEN;
			for (uint32_t i = 0; i < t->nrates; i++) {
				int64_t f = t->rates[i].from_day;
				if (f != CDR_DAY_NONE && f > last && f < next)
					next = f;
			}
			if (next == CDR_DAY_OPEN)
				break;
			fputs(" from ", o);
			put_day(o, next);
			last = next;
		}
		fputc('\n', o);
	}
	if (t->noutages)
		fprintf(o, "outages (local time, %s):\n", cdr__tz_name(t->tz));
	for (uint32_t i = 0; i < t->noutages && i < 40; i++) {
		const cdr__outage *u = &t->outages[i];
		fprintf(o, "  %s ", t->subs[u->sub].num);
		put_local(o, t, u->from_utc);
		fputs(" .. ", o);
		put_local(o, t, u->to_utc);
		fprintf(o, " (%lld s)\n", (long long)(u->to_utc - u->from_utc));
	}
	if (t->noutages > 40)
		fprintf(o, "  ... %u more\n", t->noutages - 40);
	cdr__norm_describe(t->norm, o); /* normalize.c */
}

int cdr_tariff_check(const cdr_tariff *t, cdr_check_list list, FILE *o,
		     FILE *warn)
{
	if (list == CDR_CHECK_ZONES) {
		char *p = malloc(CDR_LINE_MAX + 1);
		fputs("prefix,zone\n", o);
		if (p && t->ntrie)
			put_prefixes(o, t, 0, p, 0);
		free(p);
	} else if (list == CDR_CHECK_SUBSCRIBERS) {
		fputs("subscriber,account,plan,packages,from,to\n", o);
		for (uint32_t i = 0; i < t->nrows; i++) {
			const cdr__sub_row *r = &t->rows[i];
			fprintf(o, "%s,%s,%s,", t->subs[r->sub].num,
				t->accounts[r->account],
				t->plans[r->plan].name);
			for (uint32_t k = 0; k < r->npkg; k++)
				fprintf(o, "%s%s", k ? ";" : "",
					t->packages[t->row_pkgs[r->first_pkg + k]]
						.name);
			fputc(',', o);
			put_day(o, r->from_day);
			fputc(',', o);
			if (r->to_day != CDR_DAY_OPEN)
				put_day(o, r->to_day);
			fputc('\n', o);
		}
	} else if (list == CDR_CHECK_RATES) {
		fputs("plan,service,zone,band,connect,price,unit,first,"
		      "increment,from\n",
		      o);
		for (uint32_t i = 0; i < t->nrates; i++) {
			const cdr__rate_row *r = &t->rates[i];
			fprintf(o, "%s,%s,%s,%s,", t->plans[r->plan].name,
				service_names[r->service], zname(t, r->zone),
				bname(t, r->band));
			put_money(o, r->connect_micros);
			fputc(',', o);
			put_money(o, r->price_micros);
			fprintf(o, ",%llu,%llu,%llu,",
				(unsigned long long)r->unit,
				(unsigned long long)r->first,
				(unsigned long long)r->increment);
			if (r->from_day != CDR_DAY_NONE)
				put_day(o, r->from_day);
			fputc('\n', o);
		}
	} else {
		check_summary(t, o);
	}
	return list == CDR_CHECK_SUMMARY ? find_holes(t, warn) : 0;
}
