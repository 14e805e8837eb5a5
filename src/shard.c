/*
 * shard.c - one run over many machines: the stages of `cdrate shard`
 * (split, dedup, rate, merge), whose outputs together are byte for byte
 * those of a single `cdrate rate` over the same inputs (README "Shards").
 *
 * Records must meet their duplicates before they meet their account:
 *
 *   split  reader task k of M takes inputs j with j mod M == k (the inputs
 *          expanded as cdr_run_add_input does) and writes each non-empty
 *          data line, framed with its input and line number, to the id
 *          bucket of its duplicate key (format.h); each input's first
 *          non-empty line (its head, which settles the format) to a
 *          heads file.
 *   dedup  id bucket k: every line is parsed as the run's pass parses it
 *          (cdr__parse_rec); the lines that parse are grouped by exact
 *          key, ordered as dedup.c orders them (line bytes, then input
 *          and place), and each whole group goes to the account bucket of
 *          the account its kept line is charged to (cdr__rate_record).
 *          Groups whose kept line is rejected, and lines that do not
 *          parse, stay in bucket k.
 *   rate   account bucket k: its lines are put back into copies of their
 *          inputs (only its lines, in order, after the input's header)
 *          with a map of their line numbers in the input, read by an
 *          ordinary run under the inputs' names, heads and line maps
 *          (cdr_run_add_input_as), so a task writes and reads bytes in
 *          proportion to its bucket, not the month. The run finds
 *          the same duplicates (a key's lines are all here), so its
 *          rejects and itemize are the single run's rows of these lines;
 *          its totals are kept for the accounts of bucket k only (every
 *          account with a subscriber row appears in each bucket's run,
 *          with its usage only in its own).
 *   merge  totals by account, itemize by account (each account lives in
 *          one part), rejects by input path then line: the single run's
 *          orders. Counts are summed from the parts.
 *
 * Placement: XXH3-64, seed 0, of the key bytes (the duplicate key; the
 * account's name), mod N. Framing: u32 input, u64 line, u32 length, the
 * bytes, each integer little-endian.
 *
 * Markers (DIR/split/part-K.ok, DIR/dedup/bucket-K.ok, DIR/rate/bucket-K.ok)
 * are written last and say which run made the parts: N, M, format, the
 * column map's and the inputs' fingerprints, and after split the tariff's
 * fingerprint, the period and the input time zone. A stage refuses
 * (CDR_SHARD_REFUSED) parts whose marker is missing or disagrees.
 *
 * Sections: bytes and files - markers - inputs - split - the stages'
 * context - dedup - rate - merge.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "format.h"
#include "internal.h"
#include "run_int.h"
#include "shard_bd.h"
#include "source.h"
#include "write.h"

/* ---- bytes and files ------------------------------------------------- */

static void put32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *b)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static uint64_t get64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

uint32_t cdr_shard_bucket(const void *key, size_t n, int shards)
{
	return (uint32_t)(XXH3_64bits_withSeed(key, n, 0) % (uint64_t)shards);
}

#define place cdr_shard_bucket

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* Map the part at `path` read-only (*map NULL for an empty one). A part
 * that cannot be opened is refused: it is missing or not this run's. */
static int map_part(const char *path, void **map, size_t *len, char *err,
		    size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	*map = NULL;
	*len = 0;
	if (fd < 0 || fstat(fd, &st)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return fail(err, errlen, CDR_SHARD_REFUSED, "%s: %s", path,
			    strerror(e));
	}
	size_t n = (size_t)st.st_size;
	void *m = n ? mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	int e = errno;
	close(fd);
	if (m == MAP_FAILED)
		return fail(err, errlen, -e, "%s: mmap: %s", path, strerror(e));
	*map = m;
	*len = n;
	return 0;
}

/* Whether a framed line (u32 input, u64 line, u32 length, the bytes)
 * starts whole at offset o of b[0, len), of an input below ninputs. */
static int frame_ok(const unsigned char *b, size_t len, size_t o,
		    uint32_t ninputs)
{
	return len - o >= 16 && get32(b + o + 12) <= len - o - 16 &&
	       get32(b + o) < ninputs;
}

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* A whole file into memory (NUL added); 0, -errno. */
static int slurp(const char *path, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap + 1);
	int rc = 0;
	for (;;) {
		if (!b) {
			rc = -ENOMEM;
			break;
		}
		if (n == cap) {
			char *nb = realloc(b, 2 * cap + 1);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, b + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			break;
		}
		if (!got)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (rc) {
		free(b);
		return rc;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

static int mkdirs(const char *dir, const char *sub, char *err, size_t errlen)
{
	char *p = pathf("%s/%s", dir, sub);
	if (!p)
		return fail(err, errlen, -ENOMEM, "out of memory");
	int rc = 0;
	if (mkdir(dir, 0777) && errno != EEXIST)
		rc = fail(err, errlen, -errno, "--dir %s: %s", dir,
			  strerror(errno));
	else if (mkdir(p, 0777) && errno != EEXIST)
		rc = fail(err, errlen, -errno, "%s: %s", p, strerror(errno));
	free(p);
	return rc;
}

/* Parts written through an output set, each with a buffer of its own, so
 * a task's files appear together at commit (temp + rename). */
#define PBUF (4 * CDR_LINE_MAX)
typedef struct parts {
	cdr_outputs *set;
	int n;
	int *id;
	char **b;
	size_t *len;
} parts;

static void fd_room(int need);

static int parts_init(parts *p, int n)
{
	memset(p, 0, sizeof(*p));
	fd_room(n + 64);
	p->n = n;
	p->id = calloc((size_t)n, sizeof(*p->id));
	p->b = calloc((size_t)n, sizeof(*p->b));
	p->len = calloc((size_t)n, sizeof(*p->len));
	if (!p->id || !p->b || !p->len || cdr_outputs_create(&p->set))
		return -ENOMEM;
	return 0;
}

static int parts_add(parts *p, int i, const char *path, char *err,
		     size_t errlen)
{
	p->id[i] = cdr_outputs_add(p->set, NULL, path, err, errlen);
	if (p->id[i] < 0)
		return p->id[i];
	if (!(p->b[i] = malloc(PBUF)))
		return fail(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

static int parts_flush(parts *p, int i, char *err, size_t errlen)
{
	int rc = p->len[i] ? cdr_outputs_write(p->set, p->id[i], p->b[i],
					       p->len[i], err, errlen)
			   : 0;
	p->len[i] = 0;
	return rc;
}

static int parts_put(parts *p, int i, const void *s, size_t n, char *err,
		     size_t errlen)
{
	if (p->len[i] + n > PBUF) {
		int rc = parts_flush(p, i, err, errlen);
		if (rc)
			return rc;
		if (n > PBUF)
			return cdr_outputs_write(p->set, p->id[i], s, n, err,
						 errlen);
	}
	memcpy(p->b[i] + p->len[i], s, n);
	p->len[i] += n;
	return 0;
}

/* One framed line: input, line number, length, bytes. */
static int parts_rec(parts *p, int i, uint32_t in, uint64_t line,
		     const char *s, size_t n, char *err, size_t errlen)
{
	unsigned char h[16];
	put32(h, in);
	put64(h + 4, line);
	put32(h + 12, (uint32_t)n);
	int rc = parts_put(p, i, h, sizeof(h), err, errlen);
	return rc ? rc : parts_put(p, i, s, n, err, errlen);
}

static int parts_commit(parts *p, char *err, size_t errlen)
{
	int rc = 0;
	for (int i = 0; !rc && i < p->n; i++)
		if (p->id[i] > 0)
			rc = parts_flush(p, i, err, errlen);
	return rc ? rc : cdr_outputs_commit(p->set, err, errlen);
}

static void parts_free(parts *p)
{
	cdr_outputs_free(p->set);
	for (int i = 0; p->b && i < p->n; i++)
		free(p->b[i]);
	free(p->b);
	free(p->id);
	free(p->len);
	memset(p, 0, sizeof(*p));
}

/* Framed records read back. */
typedef struct frec {
	uint32_t in;
	uint64_t line;
	const char *s;
	uint32_t n;
	uint32_t bucket; /* dedup: where it goes */
} frec;

typedef struct fset {
	char **bufs; /* the parts, mapped */
	size_t *lens, nbufs;
	frec *r;
	size_t n, cap;
} fset;

static int fset_load(fset *f, const char *path, uint32_t ninputs, char *err,
		     size_t errlen)
{
	void *m;
	size_t len;
	int rc = map_part(path, &m, &len, err, errlen);
	if (rc)
		return rc;
	char *b = m;
	char **nb = realloc(f->bufs, (f->nbufs + 1) * sizeof(*nb));
	size_t *nl = nb ? realloc(f->lens, (f->nbufs + 1) * sizeof(*nl)) : NULL;
	if (nb)
		f->bufs = nb;
	if (nl)
		f->lens = nl;
	if (!nb || !nl) {
		if (b)
			munmap(b, len);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	f->bufs[f->nbufs] = b;
	f->lens[f->nbufs++] = len;
	for (size_t o = 0; o < len;) {
		const unsigned char *h = (const unsigned char *)b + o;
		if (!frame_ok((const unsigned char *)b, len, o, ninputs))
			return fail(err, errlen, -EINVAL,
				    "%s: damaged at byte %zu", path, o);
		if (f->n == f->cap) {
			size_t cap = f->cap ? 2 * f->cap : 1024;
			frec *r = realloc(f->r, cap * sizeof(*r));
			if (!r)
				return fail(err, errlen, -ENOMEM,
					    "out of memory");
			f->r = r;
			f->cap = cap;
		}
		f->r[f->n++] = (frec){get32(h), get64(h + 4), b + o + 16,
				      get32(h + 12), 0};
		o += 16 + get32(h + 12);
	}
	return 0;
}

static void fset_free(fset *f)
{
	for (size_t i = 0; i < f->nbufs; i++)
		if (f->bufs[i])
			munmap(f->bufs[i], f->lens[i]);
	free(f->bufs);
	free(f->lens);
	free(f->r);
	memset(f, 0, sizeof(*f));
}

/* ---- markers --------------------------------------------------------- */

/* Which run made a part. Empty strings and zeros: not known yet. */
typedef struct ident {
	int shards, parts;
	char format[24];
	char map[CDR_FINGERPRINT_HEX];
	char inputs[CDR_FINGERPRINT_HEX];
	char tariff[CDR_FINGERPRINT_HEX];
	char period[8];
	char tz[128];
	int itemize; /* rate: -1 unknown */
	int breakdown; /* rate: 1 with a breakdown part, 2 without; 0 unknown */
} ident;

static int ident_text(char **out, size_t *len, const char *stage,
		      const ident *id, const char *extra)
{
	FILE *f = open_memstream(out, len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "cdrate shard %s\nshards %d\nparts %d\nformat %s\nmap %s\n"
		   "inputs %s\n",
		stage, id->shards, id->parts, id->format, id->map, id->inputs);
	if (id->tariff[0])
		fprintf(f, "tariff %s\nperiod %s\ntimezone %s\n", id->tariff,
			id->period, id->tz);
	if (id->itemize >= 0)
		fprintf(f, "itemize %d\n", id->itemize);
	if (id->breakdown)
		fprintf(f, "breakdown %d\n", id->breakdown == 1);
	if (extra)
		fputs(extra, f);
	return fclose(f) ? -ENOMEM : 0;
}

/* The value of `key` in marker text t (copied into v), or NULL. */
static const char *mval(const char *t, const char *key, char *v, size_t vn)
{
	size_t kn = strlen(key);
	for (const char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, key, kn) && p[kn] == ' ') {
			const char *e = strchr(p + kn + 1, '\n');
			size_t n = e ? (size_t)(e - (p + kn + 1)) : strlen(p + kn + 1);
			if (n >= vn)
				n = vn - 1;
			memcpy(v, p + kn + 1, n);
			v[n] = '\0';
			return v;
		}
	return NULL;
}

/*
 * The numbers of the markers and stats files, as the stages print them
 * (%d, %u, %llu): a decimal number from s, in [lo, hi], *end past it.
 * Anything else - no digits, a sign %llu never prints, out of range - is
 * -1, where atoi and sscanf read a 0, a prefix or a wrapped value.
 */
static int num_ll(const char *s, const char **end, long long lo, long long hi,
		  long long *out)
{
	const char *d = *s == '-' ? s + 1 : s;
	if (*d < '0' || *d > '9')
		return -1;
	char *e;
	errno = 0;
	long long v = strtoll(s, &e, 10);
	if (errno == ERANGE || v < lo || v > hi)
		return -1;
	*end = e;
	*out = v;
	return 0;
}

static int num_ull(const char *s, const char **end, unsigned long long *out)
{
	if (*s < '0' || *s > '9')
		return -1;
	char *e;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno == ERANGE)
		return -1;
	*end = e;
	*out = v;
	return 0;
}

/* A marker's value that is an int and nothing else. */
static int int_val(const char *v, int *out)
{
	const char *e;
	long long x;
	if (num_ll(v, &e, INT_MIN, INT_MAX, &x) || *e)
		return -1;
	*out = (int)x;
	return 0;
}

/* The marker's fields into *id; the key of a number that is none, or NULL. */
static const char *ident_parse(const char *t, ident *id)
{
	char v[256];
	memset(id, 0, sizeof(*id));
	id->itemize = -1;
	if (mval(t, "shards", v, sizeof(v)) && int_val(v, &id->shards))
		return "shards";
	if (mval(t, "parts", v, sizeof(v)) && int_val(v, &id->parts))
		return "parts";
	if (mval(t, "itemize", v, sizeof(v)) && int_val(v, &id->itemize))
		return "itemize";
	if (mval(t, "breakdown", v, sizeof(v)))
		id->breakdown = strtol(v, NULL, 10) ? 1 : 2;
	mval(t, "format", id->format, sizeof(id->format));
	mval(t, "map", id->map, sizeof(id->map));
	mval(t, "inputs", id->inputs, sizeof(id->inputs));
	mval(t, "tariff", id->tariff, sizeof(id->tariff));
	mval(t, "period", id->period, sizeof(id->period));
	mval(t, "timezone", id->tz, sizeof(id->tz));
	return NULL;
}

/*
 * Read marker `path` into *got (and its text into *text, when not NULL)
 * and compare with `want`: every field want knows must agree. Missing or
 * different: CDR_SHARD_REFUSED with a message naming the marker.
 */
static int marker_check(const char *path, const char *what, const ident *want,
			ident *got, char **text, char *err, size_t errlen)
{
	char *t;
	size_t n;
	int rc = slurp(path, &t, &n);
	if (rc)
		return fail(err, errlen, CDR_SHARD_REFUSED,
			    "%s: missing (%s not done)", path, what);
	ident g;
	const char *nan = ident_parse(t, &g);
	if (nan) {
		free(t);
		return fail(err, errlen, CDR_SHARD_REFUSED,
			    "%s: made by another run (%s not a number)", path,
			    nan);
	}
	const char *bad = NULL, *gv = NULL, *wv = NULL;
	char gb[16], wb[16];
	if (want->shards && g.shards != want->shards) {
		snprintf(gb, sizeof(gb), "%d", g.shards);
		snprintf(wb, sizeof(wb), "%d", want->shards);
		bad = "shards", gv = gb, wv = wb;
	} else if (want->parts && g.parts != want->parts) {
		snprintf(gb, sizeof(gb), "%d", g.parts);
		snprintf(wb, sizeof(wb), "%d", want->parts);
		bad = "reader parts", gv = gb, wv = wb;
	}
#define SAME(f, name)                                                         \
	else if (want->f[0] && strcmp(g.f, want->f) != 0)                     \
		bad = (name), gv = g.f, wv = want->f;
	SAME(format, "format")
	SAME(map, "column map")
	SAME(inputs, "input list")
	SAME(tariff, "tariff")
	SAME(period, "period")
	SAME(tz, "input time zone")
#undef SAME
	if (bad) {
		free(t);
		return fail(err, errlen, CDR_SHARD_REFUSED,
			    "%s: made by another run (%s %s, not %s)", path,
			    bad, gv[0] ? gv : "none", wv);
	}
	if (got)
		*got = g;
	if (text)
		*text = t;
	else
		free(t);
	return 0;
}

/* ---- inputs ---------------------------------------------------------- */

typedef struct sinput {
	char *path;	 /* as a single run names it */
	uint64_t size;	 /* bytes as stored */
	int comp;	 /* CDR_COMP_*, from the heads */
	int has_head;	 /* a non-empty line exists */
	uint64_t head_line;
	char *head;
	size_t head_n;
	int kind, unplaced; /* the settled format, from rate's run */
} sinput;

typedef struct slist {
	sinput *in;
	uint32_t n, cap;
} slist;

static void slist_free(slist *l)
{
	for (uint32_t i = 0; i < l->n; i++) {
		free(l->in[i].path);
		free(l->in[i].head);
	}
	free(l->in);
	memset(l, 0, sizeof(*l));
}

static int slist_add(slist *l, const char *path, uint64_t size)
{
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 16;
		sinput *n = realloc(l->in, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->in = n;
		l->cap = cap;
	}
	l->in[l->n] = (sinput){.path = strdup(path), .size = size};
	if (!l->in[l->n].path)
		return -ENOMEM;
	l->n++;
	return 0;
}

/* The inputs as cdr_run_add_input expands them (cdr__list_dir): a
 * directory's regular files by name. Only regular files: every task must
 * see the same list and sizes, so standard input and pipes are refused. */
static int expand_inputs(const cdr_shard_opts *o, slist *l, char *err,
			 size_t errlen)
{
	for (int i = 0; i < o->ninputs; i++) {
		const char *p = o->inputs[i];
		struct stat st;
		if (!strcmp(p, "-"))
			return fail(err, errlen, -EINVAL,
				    "shard split reads files, not standard "
				    "input");
		if (stat(p, &st))
			return fail(err, errlen, -errno, "%s: %s", p,
				    strerror(errno));
		if (strchr(p, '\n'))
			return fail(err, errlen, -EINVAL,
				    "%s: a newline in an input's name", p);
		if (S_ISREG(st.st_mode)) {
			if (slist_add(l, p, (uint64_t)st.st_size))
				return fail(err, errlen, -ENOMEM,
					    "out of memory");
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			return fail(err, errlen, -EINVAL,
				    "%s: shard split reads regular files and "
				    "directories",
				    p);
		char **names;
		uint64_t *sizes;
		size_t n;
		int rc = cdr__list_dir(p, &names, &sizes, &n);
		for (size_t k = 0; k < n; k++) {
			if (!rc && !strchr(names[k], '\n'))
				rc = slist_add(l, names[k], sizes[k]);
			free(names[k]);
		}
		free(sizes);
		free(names);
		if (rc)
			return fail(err, errlen, rc, "%s: %s", p, strerror(-rc));
	}
	return 0;
}

/* The fingerprint cdr_run_fingerprint gives for these inputs. */
static void list_fp(const slist *l, char hex[CDR_FINGERPRINT_HEX])
{
	XXH3_state_t *st = XXH3_createState();
	XXH3_128bits_reset(st);
	for (uint32_t i = 0; i < l->n; i++) {
		char num[24];
		int n = snprintf(num, sizeof(num), "%llu",
				 (unsigned long long)l->in[i].size);
		XXH3_128bits_update(st, l->in[i].path, strlen(l->in[i].path) + 1);
		XXH3_128bits_update(st, num, (size_t)n + 1);
	}
	XXH128_hash_t h = XXH3_128bits_digest(st);
	XXH3_freeState(st);
	snprintf(hex, CDR_FINGERPRINT_HEX, "%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
}

static void bytes_fp(const char *b, size_t n, char hex[CDR_FINGERPRINT_HEX])
{
	XXH128_hash_t h = XXH3_128bits(b, n);
	snprintf(hex, CDR_FINGERPRINT_HEX, "%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
}

/* ---- split ----------------------------------------------------------- */

/* The duplicate key a line would have if it parsed: the id for native
 * lines and maps with an id (taken from its column whether or not the
 * rest parses, so a tariff's normalize.csv cannot move it), else the
 * whole line (format.h). */
static void split_key(const cdr__fmt *f, const char *p, size_t n,
		      const char **key, size_t *kn, cdr__field *fl,
		      char *scratch)
{
	if (f->bycol && f->col[CDR__MC_ID] >= 0) {
		int nf = cdr__split(p, n, f->delim, fl, CDR__MAXF, scratch);
		if (nf > f->col[CDR__MC_ID]) {
			*key = fl[f->col[CDR__MC_ID]].s;
			*kn = fl[f->col[CDR__MC_ID]].n;
		} else {
			*key = p;
			*kn = n;
		}
		return;
	}
	cdr__fmt_key(f, p, n, key, kn, scratch);
}

typedef struct splitter {
	const cdr_shard_opts *o;
	const cdr_colmap *map;
	parts *pt;
	parts *heads; /* the one heads file, index 0 */
	uint32_t idx;
	const char *path;
	cdr__fmt fmt;
	int have_head;
	char *scratch;
	size_t scratch_n;
	cdr__field *fl;
} splitter;

static int split_line(splitter *s, const char *p, size_t n, uint64_t line,
		      int ended, char *err, size_t errlen)
{
	if (!s->have_head) {
		/* reader.c's check_head: a bare CR in a header, or in a first
		 * line no \n ends within CDR_LINE_MAX, stops the run. */
		int open_line = !ended || n > CDR_LINE_MAX;
		size_t cn = n > CDR_LINE_MAX ? CDR_LINE_MAX : n;
		if (((cn >= 3 && !memcmp(p, "id,", 3)) || open_line) &&
		    memchr(p, '\r', cn))
			return fail(err, errlen, -EINVAL,
				    "%s: line ends are bare CR (\\r); cdrate "
				    "reads \\n or \\r\\n",
				    s->path);
		/* The run checks the head of a cut first line only. */
		size_t hn = n > CDR_LINE_MAX ? CDR_LINE_MAX : n;
		char msg[CDR_ERR_MAX];
		int rc = cdr__fmt_head(&s->fmt, s->o->format, s->map, p, hn, msg,
				       sizeof(msg));
		if (rc)
			return fail(err, errlen, -EINVAL, "%s: %s", s->path, msg);
		s->have_head = 1;
		unsigned char h[17];
		put32(h, s->idx);
		h[4] = 0; /* comp, set at the end */
		put64(h + 5, line);
		put32(h + 13, (uint32_t)hn);
		/* Written with the comp once known: kept here. */
		if ((rc = parts_put(s->heads, 0, h, sizeof(h), err, errlen)) ||
		    (rc = parts_put(s->heads, 0, p, hn, err, errlen)))
			return rc;
		if (s->fmt.header)
			return 0;
	}
	if (CDR__SCRATCH(n) > s->scratch_n) {
		free(s->scratch);
		s->scratch_n = CDR__SCRATCH(n);
		if (!(s->scratch = malloc(s->scratch_n)))
			return fail(err, errlen, -ENOMEM, "out of memory");
	}
	const char *key;
	size_t kn;
	split_key(&s->fmt, p, n, &key, &kn, s->fl, s->scratch);
	return parts_rec(s->pt, (int)place(key, kn, s->o->shards), s->idx, line,
			 p, n, err, errlen);
}

/* Read one input as the reader frames it: lines on \n, one \r before it
 * dropped, a UTF-8 byte order mark at the start dropped, empty lines
 * skipped but counted. */
static int split_input(splitter *s, int *comp, char *err, size_t errlen)
{
	int fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, errlen, -errno, "%s: cannot open: %s", s->path,
			    strerror(errno));
	cdr__source src;
	int rc = cdr__source_open(&src, fd, cdr__backend_read(), 1);
	if (rc) {
		cdr__source_close(&src);
		close(fd);
		return fail(err, errlen, rc, "%s: read error: %s", s->path,
			    strerror(-rc));
	}
	*comp = src.comp;
	size_t cap = 1 << 20, have = 0;
	char *b = malloc(cap);
	if (!b) {
		cdr__source_close(&src);
		close(fd);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	uint64_t line = 1;
	int at_start = 1;
	for (int eof = 0; !rc && !eof;) {
		if (have == cap) {
			char *nb = realloc(b, 2 * cap);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t got = cdr__source_fill(&src, b + have, cap - have);
		if (got < 0) {
			rc = src.why[0] ? fail(err, errlen, (int)got, "%s: %s",
					       s->path, src.why)
					: fail(err, errlen, (int)got,
					       "%s: read error: %s", s->path,
					       strerror((int)-got));
			break;
		}
		eof = got == 0;
		have += (size_t)got;
		size_t i = 0;
		if (at_start && (have >= 3 || eof)) {
			if (have >= 3 && !memcmp(b, "\xEF\xBB\xBF", 3))
				i = 3;
			at_start = 0;
		} else if (at_start) {
			continue;
		}
		while (!rc && i < have) {
			char *nl = memchr(b + i, '\n', have - i);
			if (!nl && !eof)
				break;
			size_t e = nl ? (size_t)(nl - b) : have, n = e - i;
			if (n && b[e - 1] == '\r')
				n--;
			if (n)
				rc = split_line(s, b + i, n, line, nl != NULL,
						err, errlen);
			line++;
			i = nl ? e + 1 : have;
		}
		memmove(b, b + i, have - i);
		have -= i;
	}
	if (rc == -ENOMEM && !err[0])
		fail(err, errlen, rc, "out of memory");
	free(b);
	cdr__source_close(&src);
	close(fd);
	return rc;
}

static int load_map(const char *path, cdr_colmap **map, char *err,
		    size_t errlen)
{
	return cdr_colmap_load(map, path, err, errlen);
}

static void fmt_word(cdr_format f, char *b, size_t n)
{
	snprintf(b, n, "%s", f == CDR_FORMAT_AUTO ? "auto" : cdr_format_name(f));
}

/* split and dedup hold one open file per bucket: a soft descriptor limit below
 * that (1024 is common) is raised as far as the hard limit allows. */
static void fd_room(int need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= (rlim_t)need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)need
			      ? (rlim_t)need
			      : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int cdr_shard_split(const cdr_shard_opts *o, char *err, size_t errlen)
{
	slist l = {0};
	parts pt, heads;
	cdr_colmap *map = NULL;
	char *mapb = NULL, *text = NULL, *mk = NULL;
	size_t mapn = 0, tn = 0;
	ident id = {.shards = o->shards, .parts = o->parts, .itemize = -1};
	splitter s = {.o = o, .pt = &pt, .heads = &heads};
	err[0] = '\0';
	memset(&pt, 0, sizeof(pt));
	memset(&heads, 0, sizeof(heads));
	int rc = mkdirs(o->dir, "split", err, errlen);
	if (rc)
		goto out;
	mk = pathf("%s/split/part-%d.ok", o->dir, o->part);
	if (!mk) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	unlink(mk); /* until this task's parts are all in place again */
	if ((rc = expand_inputs(o, &l, err, errlen)))
		goto out;
	fmt_word(o->format, id.format, sizeof(id.format));
	snprintf(id.map, sizeof(id.map), "-");
	if (o->format == CDR_FORMAT_MAP) {
		if ((rc = slurp(o->map_path, &mapb, &mapn))) {
			rc = fail(err, errlen, rc, "%s: %s", o->map_path,
				  strerror(-rc));
			goto out;
		}
		bytes_fp(mapb, mapn, id.map);
		if ((rc = load_map(o->map_path, &map, err, errlen)))
			goto out;
		s.map = map;
	}
	list_fp(&l, id.inputs);
	if (parts_init(&pt, o->shards) != 0 || parts_init(&heads, 2) != 0) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (int b = 0; !rc && b < o->shards; b++) {
		char *p = pathf("%s/split/part-%d.%d.lines", o->dir, o->part, b);
		rc = p ? parts_add(&pt, b, p, err, errlen) : -ENOMEM;
		free(p);
	}
	char *hp = pathf("%s/split/part-%d.heads", o->dir, o->part);
	rc = rc ? rc : hp ? parts_add(&heads, 0, hp, err, errlen) : -ENOMEM;
	free(hp);
	char *mp = mapb ? pathf("%s/split/map", o->dir) : NULL;
	if (!rc && mp)
		rc = parts_add(&heads, 1, mp, err, errlen);
	free(mp);
	if (!rc && mapb)
		rc = parts_put(&heads, 1, mapb, mapn, err, errlen);
	if (!rc && ((rc = cdr_outputs_check(pt.set, err, errlen)) ||
		    (rc = cdr_outputs_open(pt.set, err, errlen)) ||
		    (rc = cdr_outputs_check(heads.set, err, errlen)) ||
		    (rc = cdr_outputs_open(heads.set, err, errlen))))
		goto out;
	if (!(s.fl = malloc(CDR__MAXF * sizeof(*s.fl)))) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	/* Input j belongs to task j mod M. */
	for (uint32_t j = (uint32_t)o->part; !rc && j < l.n;
	     j += (uint32_t)o->parts) {
		s.idx = j;
		s.path = l.in[j].path;
		s.have_head = 0;
		int comp = 0;
		size_t at = heads.len[0];
		int flushed = 0;
		/* The head record's comp byte is patched in place, so its
		 * buffer must not be flushed while the input is read. */
		if (at + 17 + CDR_LINE_MAX > PBUF) {
			if ((rc = parts_flush(&heads, 0, err, errlen)))
				break;
			at = 0;
		}
		(void)flushed;
		rc = split_input(&s, &comp, err, errlen);
		if (!rc && s.have_head) {
			heads.b[0][at + 4] = (char)comp;
		} else if (!rc) {
			unsigned char h[17] = {0};
			put32(h, j);
			h[4] = (unsigned char)comp;
			put32(h + 13, UINT32_MAX); /* no non-empty line */
			rc = parts_put(&heads, 0, h, sizeof(h), err, errlen);
		}
	}
	if (rc)
		goto out;
	/* The marker: the identity and the whole input list. */
	FILE *f = open_memstream(&text, &tn);
	if (!f) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t j = 0; j < l.n; j++)
		fprintf(f, "input %llu %s\n", (unsigned long long)l.in[j].size,
			l.in[j].path);
	if (fclose(f)) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	char *m;
	size_t mn;
	if ((rc = ident_text(&m, &mn, "split", &id, text))) {
		rc = fail(err, errlen, rc, "out of memory");
		goto out;
	}
	if (!(rc = parts_commit(&pt, err, errlen)) &&
	    !(rc = parts_commit(&heads, err, errlen)))
		rc = cdr_write_file_atomic(mk, m, mn, err, errlen);
	free(m);
out:
	parts_free(&pt);
	parts_free(&heads);
	cdr_colmap_free(map);
	free(mapb);
	free(text);
	free(mk);
	free(s.scratch);
	free(s.fl);
	slist_free(&l);
	return rc;
}

/* ---- the stages' context ----------------------------------------------- */

/* What dedup, rate and merge know of the run: split's identity, the
 * inputs with their heads, the format and map. */
typedef struct sctx {
	ident id;
	slist l;
	cdr_format format;
	cdr_colmap *map;
	char *map_path;
} sctx;

static void sctx_free(sctx *c)
{
	slist_free(&c->l);
	cdr_colmap_free(c->map);
	free(c->map_path);
}

/* Every split marker, agreeing with part 0's (and N); the input list from
 * it, the heads from every part. */
static int sctx_load(const cdr_shard_opts *o, sctx *c, int heads, char *err,
		     size_t errlen)
{
	memset(c, 0, sizeof(*c));
	ident want = {.shards = o->shards, .itemize = -1};
	char *p = pathf("%s/split/part-0.ok", o->dir), *t = NULL;
	if (!p)
		return fail(err, errlen, -ENOMEM, "out of memory");
	int rc = marker_check(p, "split task 0", &want, &c->id, &t, err, errlen);
	free(p);
	if (rc)
		return rc;
	for (const char *q = t; q && *q;) {
		const char *e = strchr(q, '\n');
		size_t n = e ? (size_t)(e - q) : strlen(q);
		if (n > 6 && !strncmp(q, "input ", 6)) {
			char *sp;
			unsigned long long size = strtoull(q + 6, &sp, 10);
			char *path = strndup(sp + 1, n - (size_t)(sp + 1 - q));
			if (!path || slist_add(&c->l, path, size)) {
				free(path);
				free(t);
				return fail(err, errlen, -ENOMEM, "out of memory");
			}
			free(path);
		}
		q = e ? e + 1 : NULL;
	}
	free(t);
	char fp[CDR_FINGERPRINT_HEX];
	list_fp(&c->l, fp);
	if (strcmp(fp, c->id.inputs) != 0)
		return fail(err, errlen, -EINVAL,
			    "%s/split/part-0.ok: damaged (input list)", o->dir);
	if (c->id.parts < 1)
		return fail(err, errlen, -EINVAL,
			    "%s/split/part-0.ok: damaged (parts)", o->dir);
	for (int k = 1; k < c->id.parts; k++) {
		char what[48];
		snprintf(what, sizeof(what), "split task %d", k);
		p = pathf("%s/split/part-%d.ok", o->dir, k);
		rc = p ? marker_check(p, what, &c->id, NULL, NULL, err, errlen)
		       : -ENOMEM;
		free(p);
		if (rc)
			return rc;
	}
	c->format = CDR_FORMAT_AUTO;
	if (!strcmp(c->id.format, "map"))
		c->format = CDR_FORMAT_MAP;
	else if (strcmp(c->id.format, "auto") != 0 &&
	    cdr_format_from_name(c->id.format, &c->format))
		return fail(err, errlen, -EINVAL,
			    "%s/split/part-0.ok: unknown format %s", o->dir,
			    c->id.format);
	if (c->format == CDR_FORMAT_MAP) {
		c->map_path = pathf("%s/split/map", o->dir);
		char *mb;
		size_t mn;
		char mfp[CDR_FINGERPRINT_HEX];
		if (!c->map_path || slurp(c->map_path, &mb, &mn))
			return fail(err, errlen, CDR_SHARD_REFUSED,
				    "%s/split/map: missing", o->dir);
		bytes_fp(mb, mn, mfp);
		free(mb);
		if (strcmp(mfp, c->id.map) != 0)
			return fail(err, errlen, CDR_SHARD_REFUSED,
				    "%s: made by another run (column map)",
				    c->map_path);
		if ((rc = load_map(c->map_path, &c->map, err, errlen)))
			return rc;
	}
	for (int k = 0; heads && k < c->id.parts; k++) {
		char *hb;
		size_t hn;
		p = pathf("%s/split/part-%d.heads", o->dir, k);
		rc = p ? slurp(p, &hb, &hn) : -ENOMEM;
		if (rc) {
			rc = fail(err, errlen, CDR_SHARD_REFUSED, "%s: %s", p,
				  strerror(-rc));
			free(p);
			return rc;
		}
		for (size_t at = 0; at < hn;) {
			const unsigned char *h = (const unsigned char *)hb + at;
			uint32_t idx = hn - at >= 17 ? get32(h) : UINT32_MAX;
			uint32_t n = hn - at >= 17 ? get32(h + 13) : 0;
			size_t take = n == UINT32_MAX ? 0 : n;
			if (idx >= c->l.n || take > hn - at - 17) {
				free(hb);
				rc = fail(err, errlen, -EINVAL,
					  "%s: damaged at byte %zu", p, at);
				free(p);
				return rc;
			}
			sinput *in = &c->l.in[idx];
			in->comp = h[4];
			if (n != UINT32_MAX) {
				in->has_head = 1;
				in->head_line = get64(h + 5);
				in->head = malloc(take + 1);
				if (!in->head) {
					free(hb);
					free(p);
					return fail(err, errlen, -ENOMEM,
						    "out of memory");
				}
				memcpy(in->head, hb + at + 17, take);
				in->head[take] = '\0';
				in->head_n = take;
			}
			at += 17 + take;
		}
		free(hb);
		free(p);
	}
	return 0;
}

/* The identity dedup and rate stamp: split's, with the tariff's. */
static void ident_tariff(const cdr_shard_opts *o, const sctx *c, ident *id)
{
	*id = c->id;
	snprintf(id->tariff, sizeof(id->tariff), "%s", o->tariff_fp);
	snprintf(id->period, sizeof(id->period), "%04d-%02d", o->period_year,
		 o->period_month);
	snprintf(id->tz, sizeof(id->tz), "%s",
		 o->input_timezone ? o->input_timezone : "-");
	id->itemize = -1;
}

/* A run of the stage's tariff and period, for its parse and rating. */
static int stage_run(const cdr_shard_opts *o, const sctx *c, cdr_outputs *set,
		     int rej, int item, cdr_run **r, char *err, size_t errlen)
{
	cdr_run_opts ro;
	memset(&ro, 0, sizeof(ro));
	ro.period_year = o->period_year;
	ro.period_month = o->period_month;
	ro.threads = o->threads > 0 ? o->threads : 1;
	ro.io = o->io;
	ro.format = c->format;
	ro.map = c->map;
	ro.input_timezone = o->input_timezone;
	ro.log = o->log;
	ro.outputs = set;
	ro.rejects_output = rej;
	ro.itemize_output = item;
	ro.breakdown = o->breakdown;
	cdr_tariff *t = o->tariff;
	return cdr_run_create(r, &t, 1, &ro, err, errlen);
}

/* ---- dedup ----------------------------------------------------------- */

typedef struct dcand {
	uint32_t rec; /* index in the fset */
	uint32_t key_n;
	size_t key_at; /* in the key arena */
} dcand;

typedef struct dsort {
	const fset *f;
	const char *keys;
} dsort;

/* Key, then whole line, then input and line: dedup.c's order within a
 * key (its place in a file follows the line number). */
static int cmp_dcand(const void *a, const void *b, void *arg)
{
	const dcand *x = a, *y = b;
	const dsort *d = arg;
	size_t m = x->key_n < y->key_n ? x->key_n : y->key_n;
	int c = memcmp(d->keys + x->key_at, d->keys + y->key_at, m);
	if (c || x->key_n != y->key_n)
		return c ? c : (x->key_n < y->key_n ? -1 : 1);
	const frec *p = &d->f->r[x->rec], *q = &d->f->r[y->rec];
	m = p->n < q->n ? p->n : q->n;
	c = memcmp(p->s, q->s, m);
	if (c || p->n != q->n)
		return c ? c : (p->n < q->n ? -1 : 1);
	if (p->in != q->in)
		return p->in < q->in ? -1 : 1;
	return (p->line > q->line) - (p->line < q->line);
}

/* The run's inputs with their formats settled from the heads, as the
 * reader settles them (and the tariff's normalize.csv). */
static int settle_inputs(const sctx *c, cdr_run *r, input **out, char *err,
			 size_t errlen)
{
	input *in = calloc(c->l.n ? c->l.n : 1, sizeof(*in));
	if (!in)
		return fail(err, errlen, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < c->l.n; i++) {
		const sinput *s = &c->l.in[i];
		in[i].path = s->path;
		in[i].fmt.kind = (uint8_t)(c->format == CDR_FORMAT_AUTO
						   ? CDR_FORMAT_NATIVE
						   : c->format);
		char msg[CDR_ERR_MAX];
		if (s->has_head && cdr__fmt_head(&in[i].fmt, c->format, c->map,
						  s->head, s->head_n, msg,
						  sizeof(msg))) {
			free(in);
			return fail(err, errlen, -EINVAL, "%s: %s", s->path, msg);
		}
		in[i].fmt.norm = r->t[0]->norm;
	}
	*out = in;
	return 0;
}

int cdr_shard_dedup(const cdr_shard_opts *o, char *err, size_t errlen)
{
	sctx c;
	fset f = {0};
	parts pt;
	cdr_run *r = NULL;
	input *in = NULL;
	dcand *cd = NULL;
	char *keys = NULL, *scratch = NULL, *mk = NULL, *m = NULL;
	size_t kn = 0, kcap = 0, ncd = 0, mn;
	err[0] = '\0';
	memset(&pt, 0, sizeof(pt));
	int rc = mkdirs(o->dir, "dedup", err, errlen);
	if (rc)
		return rc;
	mk = pathf("%s/dedup/bucket-%d.ok", o->dir, o->bucket);
	if (!mk)
		return fail(err, errlen, -ENOMEM, "out of memory");
	unlink(mk);
	if ((rc = sctx_load(o, &c, 1, err, errlen)))
		goto out;
	for (int k = 0; !rc && k < c.id.parts; k++) {
		char *p = pathf("%s/split/part-%d.%d.lines", o->dir, k, o->bucket);
		rc = p ? fset_load(&f, p, c.l.n, err, errlen) : -ENOMEM;
		free(p);
	}
	if (rc || (rc = stage_run(o, &c, NULL, 0, 0, &r, err, errlen)) ||
	    (rc = settle_inputs(&c, r, &in, err, errlen)))
		goto out;
	cd = malloc((f.n ? f.n : 1) * sizeof(*cd));
	scratch = malloc(SCRATCH_REC);
	if (!cd || !scratch) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	/* The lines that parse are the duplicate check's candidates. */
	for (size_t i = 0; i < f.n; i++) {
		frec *x = &f.r[i];
		x->bucket = (uint32_t)o->bucket;
		if (x->n > CDR_LINE_MAX)
			continue;
		cdr__rec rec;
		int64_t utc[2];
		if (cdr__parse_rec(r, &in[x->in], 0, 1, x->s, x->n, &rec, scratch,
				   x->line, utc) != CDR_OK)
			continue;
		if (kn + rec.key_len > kcap) {
			kcap = kcap ? 2 * kcap : 1 << 16;
			while (kcap < kn + rec.key_len)
				kcap *= 2;
			char *nk = realloc(keys, kcap);
			if (!nk) {
				rc = fail(err, errlen, -ENOMEM, "out of memory");
				goto out;
			}
			keys = nk;
		}
		memcpy(keys + kn, rec.key, rec.key_len);
		cd[ncd++] = (dcand){(uint32_t)i, rec.key_len, kn};
		kn += rec.key_len;
	}
	dsort ds = {&f, keys};
	qsort_r(cd, ncd, sizeof(*cd), cmp_dcand, &ds);
	/* Each key's lines follow the line kept to its account's bucket. */
	for (size_t g = 0; g < ncd;) {
		size_t e = g + 1;
		while (e < ncd && cd[e].key_n == cd[g].key_n &&
		       !memcmp(keys + cd[e].key_at, keys + cd[g].key_at,
			       cd[g].key_n))
			e++;
		const frec *w = &f.r[cd[g].rec];
		cdr__rec rec;
		int64_t utc[2];
		cdr__rated x;
		uint32_t b = (uint32_t)o->bucket;
		if (cdr__parse_rec(r, &in[w->in], 0, 1, w->s, w->n, &rec, scratch,
				   w->line, utc) == CDR_OK) {
			const cdr_tariff *t = r->t[0];
			cdr__rate_record(t, &r->per[0], &rec, utc[0], &x);
			/* The account whose bucket can rate the kept line as
			 * the whole tariff does, its rate task holding only
			 * that bucket's subscriber rows: the one charged; for
			 * a line rejected at its active row (no rate), that
			 * row's; for a number with rows but none active
			 * (inactive), its first row's, so the task knows the
			 * number. Other rejects need no row: they stay. */
			int32_t acct = -1;
			if (x.reason == CDR_OK)
				acct = (int32_t)x.account;
			else if (x.row >= 0)
				acct = (int32_t)t->rows[x.row].account;
			else if (x.reason == CDR_R_INACTIVE) {
				cdr__subhit hit;
				if (cdr__sub_find(t, rec.sub, rec.sub_len,
						  cdr__sub_hash(rec.sub,
								rec.sub_len),
						  &hit))
					acct = (int32_t)t->rows[hit.first].account;
			}
			if (acct >= 0) {
				const char *a = t->accounts[acct];
				b = place(a, strlen(a), o->shards);
			}
		}
		for (size_t k = g; k < e; k++)
			f.r[cd[k].rec].bucket = b;
		g = e;
	}
	if ((rc = parts_init(&pt, o->shards))) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (int b = 0; !rc && b < o->shards; b++) {
		char *p = pathf("%s/dedup/bucket-%d.%d.lines", o->dir, o->bucket, b);
		rc = p ? parts_add(&pt, b, p, err, errlen) : -ENOMEM;
		free(p);
	}
	if (rc || (rc = cdr_outputs_check(pt.set, err, errlen)) ||
	    (rc = cdr_outputs_open(pt.set, err, errlen)))
		goto out;
	for (size_t i = 0; !rc && i < f.n; i++)
		rc = parts_rec(&pt, (int)f.r[i].bucket, f.r[i].in, f.r[i].line,
			       f.r[i].s, f.r[i].n, err, errlen);
	ident id;
	ident_tariff(o, &c, &id);
	if (rc || (rc = ident_text(&m, &mn, "dedup", &id, NULL)) ||
	    (rc = parts_commit(&pt, err, errlen)))
		goto out;
	rc = cdr_write_file_atomic(mk, m, mn, err, errlen);
out:
	if (rc == -ENOMEM && !err[0])
		fail(err, errlen, rc, "out of memory");
	parts_free(&pt);
	cdr_run_free(r);
	sctx_free(&c);
	fset_free(&f);
	free(in);
	free(cd);
	free(keys);
	free(scratch);
	free(mk);
	free(m);
	return rc;
}

/* ---- rate ------------------------------------------------------------ */

static int cmp_frec(const void *a, const void *b)
{
	const frec *x = a, *y = b;
	if (x->in != y->in)
		return x->in < y->in ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

/*
 * The bucket's lines in (input, line) order without holding them: each
 * dedup part is M runs in that order (split wrote each task's inputs in
 * order, dedup kept the order), so the parts are mapped, cut into their
 * runs and merged through a heap of the runs' heads.
 */
typedef struct fcur {
	const unsigned char *p, *e; /* the rest of the run */
	frec cur;
} fcur;

typedef struct fstream {
	void **maps;
	size_t *lens, nmaps;
	fcur *c, **heap;
	size_t nc, capc, nh;
} fstream;

static void fcur_load(fcur *c)
{
	c->cur = (frec){get32(c->p), get64(c->p + 4),
			(const char *)c->p + 16, get32(c->p + 12), 0};
	c->p += 16 + c->cur.n;
}

static int fcur_less(const fcur *a, const fcur *b)
{
	return cmp_frec(&a->cur, &b->cur) < 0;
}

static void fheap_down(fstream *fs, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < fs->nh && fcur_less(fs->heap[l], fs->heap[m]))
			m = l;
		if (l + 1 < fs->nh && fcur_less(fs->heap[l + 1], fs->heap[m]))
			m = l + 1;
		if (m == i)
			return;
		fcur *t = fs->heap[i];
		fs->heap[i] = fs->heap[m];
		fs->heap[m] = t;
		i = m;
	}
}

/* Map part `path` and add its runs. */
static int fstream_add(fstream *fs, const char *path, uint32_t ninputs,
		       char *err, size_t errlen)
{
	void *m;
	size_t len;
	int rc = map_part(path, &m, &len, err, errlen);
	if (rc)
		return rc;
	fs->maps[fs->nmaps] = m;
	fs->lens[fs->nmaps++] = len;
	const unsigned char *b = m;
	uint32_t pin = 0;
	uint64_t pline = 0;
	for (size_t o = 0; o < len;) {
		const unsigned char *h = b + o;
		if (!frame_ok(b, len, o, ninputs))
			return fail(err, errlen, -EINVAL,
				    "%s: damaged at byte %zu", path, o);
		uint32_t in = get32(h);
		uint64_t line = get64(h + 4);
		if (!o || in < pin || (in == pin && line <= pline)) {
			if (fs->nc == fs->capc) {
				size_t cap = fs->capc ? 2 * fs->capc : 64;
				fcur *nc = realloc(fs->c, cap * sizeof(*nc));
				if (!nc)
					return fail(err, errlen, -ENOMEM,
						    "out of memory");
				fs->c = nc;
				fs->capc = cap;
			}
			if (o) /* the run before, in this part, ends here */
				fs->c[fs->nc - 1].e = h;
			fs->c[fs->nc++] = (fcur){h, b + len, {0}};
		}
		pin = in;
		pline = line;
		o += 16 + get32(h + 12);
	}
	return 0;
}

/* After every part is added: the heap of the runs' first lines. */
static int fstream_start(fstream *fs)
{
	fs->heap = malloc((fs->nc ? fs->nc : 1) * sizeof(fcur *));
	if (!fs->heap)
		return -ENOMEM;
	for (size_t i = 0; i < fs->nc; i++) {
		fcur_load(&fs->c[i]);
		fs->heap[fs->nh++] = &fs->c[i];
	}
	for (size_t i = fs->nh; i-- > 0;)
		fheap_down(fs, i);
	return 0;
}

/* The next line in order, or NULL. Valid until the stream is closed. */
static const frec *fstream_peek(const fstream *fs)
{
	return fs->nh ? &fs->heap[0]->cur : NULL;
}

static void fstream_pop(fstream *fs)
{
	fcur *c = fs->heap[0];
	if (c->p < c->e)
		fcur_load(c);
	else
		fs->heap[0] = fs->heap[--fs->nh];
	fheap_down(fs, 0);
}

static void fstream_close(fstream *fs)
{
	for (size_t i = 0; i < fs->nmaps; i++)
		if (fs->maps[i])
			munmap(fs->maps[i], fs->lens[i]);
	free(fs->maps);
	free(fs->lens);
	free(fs->c);
	free(fs->heap);
	memset(fs, 0, sizeof(*fs));
}

/* A line map being written (the format: cdr_run_add_input_as). */
typedef struct lmw {
	FILE *f;
	uint64_t n, prev, at; /* lines, the last one's number, bytes */
	uint64_t *idx;	      /* (first line, offset) of each block */
	size_t nidx, cap;
} lmw;

static int lmw_block(lmw *w, uint64_t first)
{
	if (w->nidx == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		uint64_t *ni = realloc(w->idx, 2 * cap * sizeof(*ni));
		if (!ni)
			return -1;
		w->idx = ni;
		w->cap = cap;
	}
	w->idx[2 * w->nidx] = first;
	w->idx[2 * w->nidx + 1] = w->at;
	w->nidx++;
	return 0;
}

static int lmw_put(lmw *w, uint64_t line)
{
	int bad = 0;
	if (w->n % CDR_LMAP_BLOCK == 0)
		bad = lmw_block(w, line);
	else
		for (uint64_t d = line - w->prev;; d >>= 7) {
			bad |= putc(d >= 0x80 ? (int)(d & 0x7f) | 0x80 : (int)d,
				    w->f) == EOF;
			w->at++;
			if (d < 0x80)
				break;
		}
	w->prev = line;
	w->n++;
	return bad;
}

/* The index and the count; closes the file. */
static int lmw_end(lmw *w)
{
	int bad = w->n % CDR_LMAP_BLOCK == 0 && lmw_block(w, 0);
	unsigned char b[8];
	for (size_t i = 0; !bad && i < 2 * w->nidx; i++) {
		put64(b, w->idx[i]);
		bad = fwrite(b, 1, 8, w->f) != 8;
	}
	put64(b, w->n);
	bad |= fwrite(b, 1, 8, w->f) != 8;
	bad |= fclose(w->f) != 0;
	free(w->idx);
	return bad;
}

/* One line of a rebuilt input, and its line number to the map. A line
 * that still ends in \r is ended \r\n, so the reader drops that pair
 * and keeps the \r. */
static int rebuild_line(FILE *f, lmw *mw, const char *s, size_t n,
			uint64_t line)
{
	return fwrite(s, 1, n, f) != n ||
	       (n && s[n - 1] == '\r' && putc('\r', f) == EOF) ||
	       putc('\n', f) == EOF || lmw_put(mw, line);
}

/* Input i again, holding only this bucket's lines (the stream's next of
 * input i) after its header, in their order, and at mpath the map of
 * their line numbers in the input (cdr_run_add_input_as): the task's
 * bytes follow its bucket, not the month. */
static int rebuild(const char *path, const char *mpath, uint32_t i,
		   const sinput *s, int header, fstream *fs, char *err,
		   size_t errlen)
{
	FILE *f = fopen(path, "we"), *mf = fopen(mpath, "we");
	lmw mw = {mf, 0, 0, 0, NULL, 0, 0};
	if (!f || !mf) {
		int e = errno;
		if (f)
			fclose(f);
		if (mf)
			fclose(mf);
		return fail(err, errlen, -e, "%s: %s", f ? mpath : path,
			    strerror(e));
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	setvbuf(mf, NULL, _IOFBF, 1 << 16);
	uint64_t at = 0; /* the last line number written */
	int bad = 0, any = 0;
	if (header) {
		bad |= rebuild_line(f, &mw, s->head, s->head_n, s->head_line);
		at = s->head_line;
		any = 1;
	}
	const frec *r;
	for (; !bad && (r = fstream_peek(fs)) && r->in == i; fstream_pop(fs)) {
		if (at >= r->line) { /* a line twice, or the header's */
			bad = 1;
			break;
		}
		bad |= rebuild_line(f, &mw, r->s, r->n, r->line);
		at = r->line;
		any = 1;
	}
	if (!any) /* no line of the bucket: a blank one, as the run expects */
		bad |= putc('\n', f) == EOF;
	int cf = fclose(f), cm = lmw_end(&mw);
	if (cf || cm || bad)
		return fail(err, errlen, -EIO, "%s: cannot write", path);
	return 0;
}

/* Keep the header and the rows of accounts in bucket k. */
static size_t totals_filter(char *b, size_t n, int k, int shards)
{
	size_t o = 0, i = 0;
	const char *nl = memchr(b, '\n', n);
	if (!nl)
		return n;
	o = i = (size_t)(nl - b) + 1;
	while (i < n) {
		nl = memchr(b + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - b) + 1 : n;
		const char *c = memchr(b + i, ',', e - i);
		size_t an = c ? (size_t)(c - b) - i : e - i;
		if ((int)place(b + i, an, shards) == k) {
			memmove(b + o, b + i, e - i);
			o += e - i;
		}
		i = e;
	}
	return o;
}

static int bd_part_write(const cdr_shard_opts *o, cdr_run *r, char **paths,
			 cdr_outputs *set, int id, char *err, size_t errlen);

int cdr_shard_rate(const cdr_shard_opts *o, char *err, size_t errlen)
{
	sctx c;
	fstream fs = {0};
	cdr_run *r = NULL;
	cdr_outputs *set = NULL;
	char *mk = NULL, *work = NULL, *tot = NULL, *stats = NULL, *m = NULL;
	char **paths = NULL, **mpaths = NULL;
	size_t totn = 0, statn = 0, mn;
	ident id;
	err[0] = '\0';
	memset(&c, 0, sizeof(c));
	int rc = mkdirs(o->dir, "rate", err, errlen);
	if (rc)
		return rc;
	mk = pathf("%s/rate/bucket-%d.ok", o->dir, o->bucket);
	if (!mk)
		return fail(err, errlen, -ENOMEM, "out of memory");
	unlink(mk);
	if ((rc = sctx_load(o, &c, 1, err, errlen)))
		goto out;
	ident_tariff(o, &c, &id);
	for (int k = 0; !rc && k < o->shards; k++) {
		char what[48];
		snprintf(what, sizeof(what), "dedup bucket %d", k);
		char *p = pathf("%s/dedup/bucket-%d.ok", o->dir, k);
		rc = p ? marker_check(p, what, &id, NULL, NULL, err, errlen)
		       : -ENOMEM;
		free(p);
	}
	fs.maps = calloc((size_t)o->shards, sizeof(*fs.maps));
	fs.lens = calloc((size_t)o->shards, sizeof(*fs.lens));
	if (!rc && (!fs.maps || !fs.lens))
		rc = fail(err, errlen, -ENOMEM, "out of memory");
	for (int k = 0; !rc && k < o->shards; k++) {
		char *p = pathf("%s/dedup/bucket-%d.%d.lines", o->dir, k, o->bucket);
		rc = p ? fstream_add(&fs, p, c.l.n, err, errlen) : -ENOMEM;
		free(p);
	}
	if (!rc && fstream_start(&fs))
		rc = fail(err, errlen, -ENOMEM, "out of memory");
	if (rc)
		goto out;
	/* The rebuilt inputs, in a directory of this task's own. */
	work = pathf("%s/rate/work-%d.%ld", o->dir, o->bucket, (long)getpid());
	paths = calloc(c.l.n ? c.l.n : 1, sizeof(*paths));
	mpaths = calloc(c.l.n ? c.l.n : 1, sizeof(*mpaths));
	if (!work || !paths || !mpaths) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	if (mkdir(work, 0777) && errno != EEXIST) {
		rc = fail(err, errlen, -errno, "%s: %s", work, strerror(errno));
		goto out;
	}
	for (uint32_t i = 0; !rc && i < c.l.n; i++) {
		const sinput *s = &c.l.in[i];
		int header = 0;
		if (s->has_head) {
			cdr__fmt fm;
			char msg[CDR_ERR_MAX];
			if (cdr__fmt_head(&fm, c.format, c.map, s->head, s->head_n,
					  msg, sizeof(msg))) {
				rc = fail(err, errlen, -EINVAL, "%s: %s", s->path,
					  msg);
				break;
			}
			header = fm.header;
		}
		if (!(paths[i] = pathf("%s/%u", work, i)) ||
		    !(mpaths[i] = pathf("%s/%u.lines", work, i))) {
			rc = fail(err, errlen, -ENOMEM, "out of memory");
			break;
		}
		rc = rebuild(paths[i], mpaths[i], i, s, header, &fs, err,
			     errlen);
	}
	fstream_close(&fs); /* the lines are in the rebuilt inputs now */
	if (rc || (rc = cdr_outputs_create(&set))) {
		if (rc == -ENOMEM)
			fail(err, errlen, rc, "out of memory");
		goto out;
	}
	const char *suffix[5] = {"totals", "rejects", "stats", "itemize",
				 "breakdown"};
	int ids[5] = {0};
	for (int k = 0; !rc && k < 5; k++) {
		if ((k == 3 && !o->itemize) || (k == 4 && !o->breakdown))
			continue;
		char *p = pathf("%s/rate/bucket-%d.%s", o->dir, o->bucket,
				suffix[k]);
		rc = p ? cdr_outputs_add(set, NULL, p, err, errlen) : -ENOMEM;
		free(p);
		if (rc > 0)
			ids[k] = rc, rc = 0;
	}
	if (rc || (rc = cdr_outputs_check(set, err, errlen)) ||
	    (rc = cdr_outputs_open(set, err, errlen)) ||
	    (rc = stage_run(o, &c, set, ids[1], ids[3], &r, err, errlen)))
		goto out;
	for (uint32_t i = 0; !rc && i < c.l.n; i++) {
		const sinput *s = &c.l.in[i];
		rc = cdr_run_add_input_as(r, paths[i], s->path,
					  s->has_head ? s->head : NULL,
					  s->head_n, mpaths[i], err, errlen);
	}
	if (rc || (rc = cdr_run_execute(r, err, errlen)))
		goto out;
	/* The breakdown part holds every account's figures: kept as the
	 * totals are made. */
	if (o->breakdown && r->acc[0].bd)
		r->acc[0].bd->keep_figs = 1;
	if ((rc = cdr_run_totals(r, 0, &tot, &totn))) {
		rc = fail(err, errlen, rc, "out of memory");
		goto out;
	}
	totn = totals_filter(tot, totn, o->bucket, o->shards);
	cdr_run_stats st;
	cdr_run_stats_get(r, &st);
	FILE *sf = open_memstream(&stats, &statn);
	if (!sf) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	fprintf(sf, "read %llu\nrated %llu\nrejected %llu\nunanswered %llu\n"
		    "decimals %d\n",
		(unsigned long long)st.read, (unsigned long long)st.rated,
		(unsigned long long)st.rejected,
		(unsigned long long)st.unanswered,
		cdr_tariff_decimals(o->tariff));
	for (int i = 1; i < CDR_REASON_MAX && cdr_reason_name(i); i++)
		fprintf(sf, "reason %d %llu\n", i,
			(unsigned long long)st.by_reason[i]);
	for (uint32_t i = 0; i < c.l.n; i++) {
		cdr_format fm;
		int unplaced;
		cdr_run_input(r, i, &fm, &unplaced);
		fprintf(sf, "input %u %d %d %d\n", i, (int)fm, unplaced,
			c.l.in[i].comp);
	}
	if (fclose(sf)) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	id.itemize = o->itemize ? 1 : 0;
	id.breakdown = o->breakdown ? 1 : 2;
	if (o->breakdown && (rc = bd_part_write(o, r, paths, set, ids[4], err,
						errlen)))
		goto out;
	if ((rc = ident_text(&m, &mn, "rate", &id, NULL)) ||
	    (rc = cdr_outputs_write(set, ids[0], tot, totn, err, errlen)) ||
	    (rc = cdr_outputs_write(set, ids[2], stats, statn, err, errlen)) ||
	    (rc = cdr_outputs_commit(set, err, errlen)))
		goto out;
	rc = cdr_write_file_atomic(mk, m, mn, err, errlen);
out:
	if (rc == -ENOMEM && !err[0])
		fail(err, errlen, rc, "out of memory");
	cdr_run_free(r);
	cdr_outputs_free(set);
	for (uint32_t i = 0; paths && mpaths && i < c.l.n; i++) {
		if (paths[i])
			unlink(paths[i]);
		if (mpaths[i])
			unlink(mpaths[i]);
		free(paths[i]);
		free(mpaths[i]);
	}
	if (work)
		rmdir(work);
	free(paths);
	free(mpaths);
	free(work);
	sctx_free(&c);
	fstream_close(&fs);
	free(mk);
	free(tot);
	free(stats);
	free(m);
	return rc;
}

/* ---- merge ----------------------------------------------------------- */

/* One row of a part, with what it sorts by. */
typedef struct mrow {
	const char *s;
	size_t n;
	const char *key; /* account bytes (totals, itemize) */
	size_t key_n;
	uint64_t rank, line; /* rejects: the input's rank, the line */
	uint32_t part;
	size_t pos;
} mrow;

/* Field `i` (0-based) of a CSV row: its bytes as written (quotes and
 * all), as [*s, *s + *n). */
static void csv_field(const char *p, size_t n, int i, const char **s,
		      size_t *fn)
{
	size_t at = 0;
	for (int k = 0;; k++) {
		size_t st = at;
		if (at < n && p[at] == '"') {
			for (at++; at < n; at++)
				if (p[at] == '"') {
					if (at + 1 < n && p[at + 1] == '"')
						at++;
					else {
						at++;
						break;
					}
				}
		}
		while (at < n && p[at] != ',')
			at++;
		if (k == i || at >= n) {
			*s = p + st;
			*fn = k == i ? at - st : 0;
			return;
		}
		at++;
	}
}

static int cmp_key(const void *a, const void *b)
{
	const mrow *x = a, *y = b;
	size_t m = x->key_n < y->key_n ? x->key_n : y->key_n;
	int c = memcmp(x->key, y->key, m);
	if (c || x->key_n != y->key_n)
		return c ? c : (x->key_n < y->key_n ? -1 : 1);
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_rej(const void *a, const void *b)
{
	const mrow *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

typedef struct rankent {
	char *text; /* the path as the rejects' file column writes it */
	size_t n;
	uint32_t rank;
} rankent;

static int cmp_rankent(const void *a, const void *b)
{
	const rankent *x = a, *y = b;
	size_t m = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->text, y->text, m);
	if (c || x->n != y->n)
		return c ? c : (x->n < y->n ? -1 : 1);
	return (x->rank > y->rank) - (x->rank < y->rank);
}

static int cmp_path_idx(const void *a, const void *b, void *arg)
{
	const slist *l = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(l->in[x].path, l->in[y].path);
	return c ? c : (x > y) - (x < y);
}

/* Where merged rows go: a buffer (the totals, which the caller adds up)
 * or an output of the caller's set, a megabyte at a time. */
typedef struct msink {
	cdr_outputs *set;
	int id; /* 0: the buffer is the result */
	char *b;
	size_t n, cap;
} msink;

static int sink_put(msink *k, const char *s, size_t n, char *err,
		    size_t errlen)
{
	if (k->id && k->n + n > k->cap && k->n) {
		int rc = cdr_outputs_write(k->set, k->id, k->b, k->n, err, errlen);
		k->n = 0;
		if (rc)
			return rc;
	}
	if (k->n + n > k->cap) {
		size_t cap = k->cap ? k->cap : 1 << 20;
		while (cap < k->n + n)
			cap *= 2;
		char *nb = realloc(k->b, cap + 1);
		if (!nb)
			return fail(err, errlen, -ENOMEM, "out of memory");
		k->b = nb;
		k->cap = cap;
	}
	memcpy(k->b + k->n, s, n);
	k->n += n;
	return 0;
}

/* One part being merged: the rest of its rows and the first of them. */
typedef struct mcur {
	const char *p, *e;
	mrow row;
} mcur;

typedef struct mctx {
	int kind; /* 0 totals, 1 rejects, 2 itemize */
	const rankent *re;
	uint32_t nre;
} mctx;

/* The input rank of a rejects row's file column. */
static uint64_t rank_of(const mctx *x, const char *fs, size_t fn)
{
	size_t lo = 0, hi = x->nre;
	while (lo < hi) { /* the first entry of that text */
		size_t mid = lo + (hi - lo) / 2;
		size_t mm = x->re[mid].n < fn ? x->re[mid].n : fn;
		int cc = memcmp(x->re[mid].text, fs, mm);
		if (!cc)
			cc = x->re[mid].n < fn ? -1 : x->re[mid].n > fn ? 1 : 0;
		if (cc < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < x->nre && x->re[lo].n == fn && !memcmp(x->re[lo].text, fs, fn)
		       ? x->re[lo].rank
		       : UINT64_MAX;
}

/* The next row of a part into m->row; 0 when it has none left. */
static int mcur_next(mcur *m, const mctx *x)
{
	if (m->p >= m->e)
		return 0;
	const char *q = m->p;
	const char *qe = memchr(q, '\n', (size_t)(m->e - q));
	size_t rn = qe ? (size_t)(qe - q) + 1 : (size_t)(m->e - q);
	mrow *r = &m->row;
	r->s = q;
	r->n = rn;
	size_t body = qe ? rn - 1 : rn;
	if (x->kind == 1) {
		const char *fs;
		size_t fn;
		csv_field(q, body, 0, &fs, &fn);
		r->rank = rank_of(x, fs, fn);
		csv_field(q, body, 1, &fs, &fn);
		r->line = strtoull(fs, NULL, 10);
	} else {
		csv_field(q, body, x->kind == 2 ? 1 : 0, &r->key, &r->key_n);
	}
	m->p = q + rn;
	return 1;
}

static int mcur_less(const mcur *a, const mcur *b, int kind)
{
	return (kind == 1 ? cmp_rej(&a->row, &b->row)
			  : cmp_key(&a->row, &b->row)) < 0;
}

static void heap_down(mcur **h, size_t n, size_t i, int kind)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && mcur_less(h[l], h[m], kind))
			m = l;
		if (l + 1 < n && mcur_less(h[l + 1], h[m], kind))
			m = l + 1;
		if (m == i)
			return;
		mcur *t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* k-way merge of every bucket's part `suffix` (each sorted, with its
 * header) into the sink: the header once, then the rows in the single
 * run's order. The parts are mapped, not read: memory stays small. */
static int merge_part(const cdr_shard_opts *o, sctx *c, const char *suffix,
		      int kind, msink *sink, char *err, size_t errlen)
{
	size_t np = (size_t)o->shards;
	mcur *cur = calloc(np, sizeof(*cur));
	mcur **heap = calloc(np, sizeof(mcur *));
	void **maps = calloc(np, sizeof(*maps));
	size_t *lens = calloc(np, sizeof(*lens));
	rankent *re = NULL;
	uint32_t *order = NULL;
	int rc = cur && heap && maps && lens ? 0 : -ENOMEM;
	int have_head = 0;
	if (!rc && kind == 1) {
		/* The rejects sort by input path bytewise, equal paths by
		 * place; rows name the path as its CSV text. */
		re = calloc(c->l.n ? c->l.n : 1, sizeof(*re));
		order = malloc((c->l.n ? c->l.n : 1) * sizeof(*order));
		if (!re || !order)
			rc = -ENOMEM;
		for (uint32_t i = 0; !rc && i < c->l.n; i++)
			order[i] = i;
		if (!rc)
			qsort_r(order, c->l.n, sizeof(*order), cmp_path_idx,
				&c->l);
		for (uint32_t i = 0; !rc && i < c->l.n; i++) {
			const char *p = c->l.in[order[i]].path;
			size_t pn = strlen(p);
			re[i].text = malloc(CDR__CSV_BOUND(pn));
			if (!re[i].text) {
				rc = -ENOMEM;
				break;
			}
			re[i].n = cdr__csv_text(re[i].text, p, pn, 0);
			re[i].rank = i;
		}
		if (!rc)
			qsort(re, c->l.n, sizeof(*re), cmp_rankent);
	}
	mctx x = {kind, re, c->l.n};
	size_t nh = 0;
	for (size_t k = 0; !rc && k < np; k++) {
		char *p = pathf("%s/rate/bucket-%zu.%s", o->dir, k, suffix);
		if (!p) {
			rc = -ENOMEM;
			break;
		}
		void *m;
		rc = map_part(p, &m, &lens[k], err, errlen);
		free(p);
		maps[k] = m;
		if (rc || !lens[k])
			continue;
		const char *b = maps[k], *e = b + lens[k];
		const char *nl = memchr(b, '\n', lens[k]);
		if (!nl)
			continue;
		if (!have_head) {
			have_head = 1;
			rc = sink_put(sink, b, (size_t)(nl - b) + 1, err, errlen);
		}
		cur[k] = (mcur){nl + 1, e, {0}};
		cur[k].row.part = (uint32_t)k;
		if (mcur_next(&cur[k], &x))
			heap[nh++] = &cur[k];
	}
	for (size_t i = nh; !rc && i-- > 0;)
		heap_down(heap, nh, i, kind);
	while (!rc && nh) {
		mcur *m = heap[0];
		rc = sink_put(sink, m->row.s, m->row.n, err, errlen);
		if (!rc && m->row.s[m->row.n - 1] != '\n')
			rc = sink_put(sink, "\n", 1, err, errlen);
		if (!mcur_next(m, &x))
			heap[0] = heap[--nh];
		heap_down(heap, nh, 0, kind);
	}
	if (!rc && sink->id && sink->n) {
		rc = cdr_outputs_write(sink->set, sink->id, sink->b, sink->n, err,
				       errlen);
		sink->n = 0;
	}
	if (rc == -ENOMEM && !err[0])
		fail(err, errlen, rc, "out of memory");
	for (size_t k = 0; maps && k < np; k++)
		if (maps[k])
			munmap(maps[k], lens[k]);
	free(maps);
	free(lens);
	free(cur);
	free(heap);
	for (uint32_t i = 0; re && i < c->l.n; i++)
		free(re[i].text);
	free(re);
	free(order);
	return rc;
}

void cdr_shard_result_free(cdr_shard_result *res)
{
	for (char **p = res->unplaced; p && *p; p++)
		free(*p);
	free(res->unplaced);
	res->unplaced = NULL;
	for (uint32_t i = 0; res->input_paths && i < res->ninputs; i++)
		free(res->input_paths[i]);
	free(res->input_paths);
	free(res->input_sizes);
	res->input_paths = NULL;
	res->input_sizes = NULL;
}

/*
 * One line of a bucket's stats file into *res (the inputs' lines of
 * bucket 0 only): -1 when a line the rate stage writes is not as it
 * writes it. Lines of other words, reasons and inputs out of range are
 * passed over, as ever.
 */
static int stats_line(const char *q, int k, const slist *l,
		      cdr_shard_result *res, size_t *nun)
{
	static const char *const word[4] = {"read ", "rated ", "rejected ",
					    "unanswered "};
	uint64_t *sum[4] = {&res->st.read, &res->st.rated, &res->st.rejected,
			    &res->st.unanswered};
	const char *e;
	unsigned long long v;
	long long x, a, b2, d;
	for (int w = 0; w < 4; w++) {
		size_t wn = strlen(word[w]);
		if (!strncmp(q, word[w], wn)) {
			if (num_ull(q + wn, &e, &v) || (*e && *e != '\n'))
				return -1;
			*sum[w] += v;
			return 0;
		}
	}
	if (!strncmp(q, "decimals ", 9)) {
		if (num_ll(q + 9, &e, INT_MIN, INT_MAX, &x) ||
		    (*e && *e != '\n'))
			return -1;
		res->decimals = (int)x;
	} else if (!strncmp(q, "reason ", 7)) {
		if (num_ll(q + 7, &e, INT_MIN, INT_MAX, &x) || *e != ' ' ||
		    num_ull(e + 1, &e, &v) || (*e && *e != '\n'))
			return -1;
		if (x > 0 && x < CDR_REASON_MAX)
			res->st.by_reason[x] += v;
	} else if (!k && !strncmp(q, "input ", 6)) {
		if (num_ull(q + 6, &e, &v) || *e != ' ' ||
		    num_ll(e + 1, &e, INT_MIN, INT_MAX, &a) || *e != ' ' ||
		    num_ll(e + 1, &e, INT_MIN, INT_MAX, &b2) || *e != ' ' ||
		    num_ll(e + 1, &e, INT_MIN, INT_MAX, &d) ||
		    (*e && *e != '\n'))
			return -1;
		if (v < l->n) {
			if (a >= 0 && a < CDR_FORMAT_N)
				res->st.files[a]++;
			if (d >= 0 && d < CDR_NCOMP)
				res->st.files_by_comp[d]++;
			if (b2) {
				res->st.unplaced++;
				res->unplaced[(*nun)++] = strdup(l->in[v].path);
			}
		}
	}
	return 0;
}

int cdr_shard_merge(const cdr_shard_opts *o, cdr_outputs *set, int rejects_id,
		    int itemize_id, char **totals, size_t *totals_len,
		    cdr_shard_result *res, char *err, size_t errlen)
{
	sctx c;
	ident first;
	char *buf = NULL;
	size_t n = 0;
	err[0] = '\0';
	memset(res, 0, sizeof(*res));
	*totals = NULL;
	int rc = sctx_load(o, &c, 0, err, errlen);
	if (rc)
		goto out;
	for (int k = 0; !rc && k < o->shards; k++) {
		char what[48], *p = pathf("%s/rate/bucket-%d.ok", o->dir, k);
		snprintf(what, sizeof(what), "rate bucket %d", k);
		ident want = c.id;
		ident got;
		if (k) {
			want = first;
			want.itemize = -1;
		}
		rc = p ? marker_check(p, what, &want, &got, NULL, err, errlen)
		       : -ENOMEM;
		if (!rc && !k)
			first = got;
		if (!rc && itemize_id && got.itemize != 1)
			rc = fail(err, errlen, CDR_SHARD_REFUSED,
				  "%s: rate bucket %d was run without "
				  "--itemize",
				  p, k);
		free(p);
	}
	if (rc)
		goto out;
	/* Counts, summed; the inputs' formats from bucket 0 (every bucket
	 * settles them from the same heads). */
	res->ninputs = c.l.n;
	res->unplaced = calloc(c.l.n + 1, sizeof(char *));
	if (!res->unplaced) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	size_t nun = 0;
	for (int k = 0; !rc && k < o->shards; k++) {
		char *p = pathf("%s/rate/bucket-%d.stats", o->dir, k);
		if (!p || (rc = slurp(p, &buf, &n))) {
			rc = fail(err, errlen, CDR_SHARD_REFUSED, "%s: missing",
				  p ? p : "stats");
			free(p);
			break;
		}
		free(p);
		int line = 0;
		for (char *q = buf; !rc && q && *q;) {
			char *e = strchr(q, '\n');
			line++;
			if ((rc = stats_line(q, k, &c.l, res, &nun)))
				rc = fail(err, errlen, CDR_SHARD_REFUSED,
					  "%s/rate/bucket-%d.stats:%d: made by "
					  "another run (not a stats line)",
					  o->dir, k, line);
			q = e ? e + 1 : NULL;
		}
		free(buf);
		buf = NULL;
	}
	if (rc)
		goto out;
	res->input_paths = calloc(c.l.n ? c.l.n : 1, sizeof(char *));
	res->input_sizes = calloc(c.l.n ? c.l.n : 1, sizeof(uint64_t));
	if (!res->input_paths || !res->input_sizes) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < c.l.n; i++) {
		res->input_bytes += c.l.in[i].size;
		res->input_sizes[i] = c.l.in[i].size;
		if (!(res->input_paths[i] = strdup(c.l.in[i].path))) {
			rc = fail(err, errlen, -ENOMEM, "out of memory");
			goto out;
		}
	}
	snprintf(res->inputs_fp, sizeof(res->inputs_fp), "%s", c.id.inputs);
	snprintf(res->tariff_fp, sizeof(res->tariff_fp), "%s", first.tariff);
	if (first.period[0]) {
		const char *e;
		long long y, m;
		if (num_ll(first.period, &e, INT_MIN, INT_MAX, &y) ||
		    *e != '-' || num_ll(e + 1, &e, INT_MIN, INT_MAX, &m) || *e) {
			rc = fail(err, errlen, CDR_SHARD_REFUSED,
				  "%s/rate/bucket-0.ok: made by another run "
				  "(period %s)",
				  o->dir, first.period);
			goto out;
		}
		res->period_year = (int)y;
		res->period_month = (int)m;
	}
	msink tk = {0};
	rc = merge_part(o, &c, "totals", 0, &tk, err, errlen);
	*totals = tk.b;
	*totals_len = tk.n;
	if (rc)
		goto out;
	const struct {
		int id;
		const char *suffix;
		int kind;
	} more[2] = {{rejects_id, "rejects", 1}, {itemize_id, "itemize", 2}};
	for (int i = 0; !rc && i < 2; i++) {
		if (!more[i].id)
			continue;
		msink sk = {set, more[i].id, NULL, 0, 0};
		rc = merge_part(o, &c, more[i].suffix, more[i].kind, &sk, err,
				errlen);
		free(sk.b);
	}
out:
	if (rc) {
		free(*totals);
		*totals = NULL;
		cdr_shard_result_free(res);
	}
	free(buf);
	sctx_free(&c);
	return rc;
}

/* ---- breakdown -------------------------------------------------------- */

/* The rate task's run and its rebuilt inputs: a sample's line number.
 * Counting line ends up to the offset gives the line of the rebuilt
 * input, which its line map turns into the original input's line, as
 * the run does for the rejects (cdr__in_line). */
typedef struct lnctx {
	const cdr_run *r;
	char **paths;
} lnctx;

static int line_of(void *ctx, uint64_t rank, uint64_t offset, uint64_t *line)
{
	const lnctx *x = ctx;
	uint32_t i = 0;
	while (i < x->r->nin && x->r->rank[i] != rank)
		i++;
	if (i == x->r->nin)
		return -1;
	FILE *f = fopen(x->paths[i], "re");
	if (!f)
		return -1;
	char b[65536];
	uint64_t at = 0, n = 1;
	while (at < offset) {
		size_t want = offset - at < sizeof(b) ? (size_t)(offset - at)
						      : sizeof(b);
		size_t got = fread(b, 1, want, f);
		if (!got)
			break;
		for (const char *p = b; (p = memchr(p, '\n', (size_t)(b + got - p)));
		     p++)
			n++;
		at += got;
	}
	fclose(f);
	*line = cdr__in_line(&x->r->in[i], n);
	return 0;
}

/* rate --breakdown: the run's exact sums as part `id` of set (written
 * while the rebuilt inputs are still there, to number the samples). */
static int bd_part_write(const cdr_shard_opts *o, cdr_run *r, char **paths,
			 cdr_outputs *set, int id, char *err, size_t errlen)
{
	char *b = NULL;
	size_t n = 0;
	lnctx x = {r, paths};
	int rc = cdr__shard_bd_part(&r->acc[0], &r->per[0], o->bucket, o->shards,
				    line_of, &x, &b, &n);
	if (rc)
		return fail(err, errlen, rc, "breakdown: %s", strerror(-rc));
	rc = cdr_outputs_write(set, id, b, n, err, errlen);
	free(b);
	return rc;
}

int cdr_shard_merge_breakdown(const cdr_shard_opts *o,
			      const cdr_shard_result *res, char **csv,
			      size_t *csv_len, const char *const *summary,
			      int nsummary, char **html, size_t *html_len,
			      char *err, size_t errlen)
{
	sctx c;
	cdr__bd *bd = NULL;
	cdr__shard_figs figs = {0};
	char *buf = NULL;
	const char **paths = NULL;
	size_t n = 0;
	int year = 0, month = 0;
	err[0] = '\0';
	int rc = sctx_load(o, &c, 0, err, errlen);
	if (rc) {
		sctx_free(&c);
		return rc;
	}
	ident want = c.id;
	snprintf(want.tariff, sizeof(want.tariff), "%s", o->tariff_fp);
	for (int k = 0; !rc && k < o->shards; k++) {
		char what[48], *p = pathf("%s/rate/bucket-%d.ok", o->dir, k);
		ident got;
		memset(&got, 0, sizeof(got));
		snprintf(what, sizeof(what), "rate bucket %d", k);
		rc = p ? marker_check(p, what, &want, &got, NULL, err, errlen)
		       : -ENOMEM;
		if (!rc && got.breakdown != 1)
			rc = fail(err, errlen, CDR_SHARD_REFUSED,
				  "%s: rate bucket %d was run without "
				  "--breakdown",
				  p, k);
		if (!rc && !k) {
			snprintf(want.period, sizeof(want.period), "%s",
				 got.period);
			char *e;
			year = (int)strtol(got.period, &e, 10);
			month = *e == '-' ? (int)strtol(e + 1, NULL, 10) : 0;
		}
		free(p);
	}
	cdr__period per;
	if (!rc && cdr__period_init(&per, o->tariff, year, month))
		rc = fail(err, errlen, -EINVAL, "period %s: cannot be set up",
			  want.period);
	if (!rc && !(bd = cdr__bd_new(o->tariff, &per, c.l.n)))
		rc = fail(err, errlen, -ENOMEM, "out of memory");
	for (int k = 0; !rc && k < o->shards; k++) {
		char *p = pathf("%s/rate/bucket-%d.breakdown", o->dir, k);
		int line = 0;
		if (!p || slurp(p, &buf, &n)) {
			rc = fail(err, errlen, CDR_SHARD_REFUSED, "%s: missing",
				  p ? p : "breakdown");
		} else if ((rc = cdr__shard_bd_load(bd, buf, &figs, &line))) {
			if (rc == -EINVAL)
				rc = fail(err, errlen, rc, "%s:%d: damaged", p,
					  line);
		}
		free(p);
		free(buf);
		buf = NULL;
	}
	if (rc || !bd)
		goto out;
	/* The figures in any order: the rows sum them, the report ranks
	 * them by total, then name. */
	bd->fig = figs.fig;
	bd->nfig = figs.n;
	bd->credited = 1;
	cdr__acc a;
	memset(&a, 0, sizeof(a));
	a.t = o->tariff;
	a.bd = bd;
	cdr__bdside side = {&a, &per, res->st.by_reason};
	paths = malloc((c.l.n ? c.l.n : 1) * sizeof(*paths));
	if (!paths) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < c.l.n; i++)
		paths[i] = c.l.in[i].path;
	cdr__bdrows rows;
	if ((rc = cdr__bd_rows(&side, 1, paths, c.l.n, &rows))) {
		fail(err, errlen, rc, "breakdown: %s", strerror(-rc));
		goto out;
	}
	rc = cdr__bd_render(&rows, csv, csv_len, summary, nsummary, html,
			    html_len);
	if (rc)
		fail(err, errlen, rc, "breakdown: %s", strerror(-rc));
out:
	if (bd) {
		bd->fig = NULL; /* figs owns them */
		cdr__bd_free(bd);
	}
	cdr__shard_figs_free(&figs);
	free(paths);
	sctx_free(&c);
	return rc;
}
