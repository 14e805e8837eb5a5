/*
 * run.c - the rating run: inputs, reader thread, workers, duplicates.
 *
 * Shape of a run:
 *
 *   reader thread ──chunks of whole lines──> N workers ──> per-worker
 *   (one file at a time, buffers              parse, rate,   accumulators,
 *    from a fixed pool, a line that           itemize and    duplicate-check
 *    straddles two reads carried over)        rejects lines  entries
 *
 * then, on the calling thread: merge the accumulators, resolve duplicates,
 * finish the itemize/rejects files. Totals are rendered on demand.
 *
 * Formats. The reader settles each input's format from its first non-empty
 * line (check_head, through format.c) before any chunk of it is queued;
 * workers parse through that format, and count line numbers only for
 * inputs whose itemize ids may be FILE:LINE.
 *
 * Duplicates. A record's fate can depend on a line that comes much later
 * (the bytewise-smallest line of a duplicate key wins), so workers rate
 * every parsed record at once and note (hash of its key, where the line
 * is) - 16 bytes a record, the only per-record memory of a run. The key is
 * the input format's (format.h): the id of a native line or a map with an
 * id, the whole line of a switch record. Afterwards keys whose hashes
 * collide are read back from their files (in file order, one open at a
 * time, each checked to be still the file that was read), compared
 * exactly, and every line that loses is rated again and taken back out of
 * the sums, its itemize or rejects line removed and a `duplicate` reject
 * written instead. Rating is
 * a pure function, so the take-back is exact. Standard input, pipes and
 * FIFOs cannot be read back, nor can a compressed input's decoded bytes
 * (source.h), so they are spooled, end to end, to one unlinked temporary
 * file as they stream, and their offsets are offsets in the spool; a line
 * too long to be a duplicate is not spooled.
 *
 * Sections: inputs - chunk queue - output lines - workers - reader -
 * duplicates - finishing outputs - the public API.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "civil.h"
#include "format.h"
#include "internal.h"
#include "source.h"
#include "sys.h"
#include "write.h"

#define CHUNK (4u << 20)	/* bytes per read; large enough to amortise */
#define OUTBUF (1u << 20)	/* per-worker itemize/rejects buffer */
/* Duplicate-check partitions, by the key hash's top bits. Few enough that
 * every partition's open block stays in cache while records stream by
 * (1024 put a cache miss on most appends), many enough that each one's
 * table in find_candidates stays small. */
#define NPART_BITS 8
#define NPART (1u << NPART_BITS)
#define LOC_OFF_BITS 44		/* 16 TiB per input file */
#define MAX_INPUTS (1u << (64 - LOC_OFF_BITS))

/* ---- inputs ---------------------------------------------------------- */

typedef struct input {
	char *path; /* "-" for standard input */
	/* Its format, settled by the reader from its first non-empty line
	 * before any chunk of it is queued (so workers read it unlocked). */
	cdr__fmt fmt;
	/* A stream's copy, for reading lines back: one spool file holds
	 * every stream of the run end to end (a descriptor each would cap
	 * the streams a run can read), this one's bytes from spool_at. */
	int spool_fd;
	uint8_t spool_owner; /* the input that closes spool_fd */
	uint64_t spool_at;
	/* A regular file as it was read: reading back checks that the path
	 * still names these bytes. `size` is also a stream's length. */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	uint8_t comp; /* CDR_COMP_*, once read */
} input;

typedef struct chunk {
	char *buf;
	size_t len;
	uint32_t input;
	uint64_t off;	  /* file offset of buf[0] */
	uint64_t line0;	  /* line number of buf[0]'s line, when the input's
			     itemize ids may be FILE:LINE (else 0) */
	uint8_t first;	  /* buf[0] is the file's first byte */
	uint8_t too_long; /* buf holds the first CDR_LINE_MAX bytes of a
			     longer line; the rest was skipped */
} chunk;

/* Duplicate-check entries of one partition: a list of fixed blocks, so
 * appending never copies (growing one array by realloc did: 7% of a
 * 10M-record run in memcpy and page faults). */
#define DBLOCK 512

typedef struct dblock {
	struct dblock *next; /* the block filled before this one */
	uint32_t n;
	uint64_t e[2 * DBLOCK]; /* pairs: key hash, location */
} dblock;

typedef struct dvec {
	dblock *head; /* the block being filled */
	size_t n;     /* entries in all blocks */
} dvec;

/* Where the lines of FILE:LINE records are: (location, line number)
 * pairs, kept only with --itemize, so a duplicate taken back can name the
 * itemize line it removes. */
typedef struct lvec {
	uint64_t *e;
	size_t n, cap;
} lvec;

typedef struct outbuf {
	char *b;
	size_t n;
	int fd;
	int failed; /* a write failed: the error names this output */
} outbuf;

struct cdr_run;

typedef struct worker {
	struct cdr_run *r;
	pthread_t th;
	cdr__acc acc[2];
	uint64_t read;
	uint64_t by_reason[2][CDR_NREASON];
	dvec part[NPART];
	lvec lines;
	outbuf item, rej;
	int err;
} worker;

/* Rejects or itemize: the set and id it lives in; fd is the temporary
 * the workers append to, -1 when the output is not written. */
typedef struct run_output {
	cdr_outputs *set;
	int id;
	int fd;
} run_output;

struct cdr_run {
	cdr_tariff *t[2];
	int nt;
	cdr__period per[2];
	cdr_run_opts o;
	cdr__tz *in_tz; /* --input-timezone, or NULL */
	input *in;
	uint32_t nin, incap;

	pthread_mutex_t mu;
	pthread_cond_t cv_ready, cv_free;
	chunk *q; /* ring of ready chunks */
	size_t qhead, qn, qcap;
	char **freebufs;
	size_t nfree, nbufs;
	int reading_done;
	int err;
	char errmsg[CDR_ERR_MAX];
	uint64_t bytes_read;

	worker *w;
	int nw;
	cdr__acc acc[2];
	uint64_t read;
	uint64_t by_reason[2][CDR_NREASON];
	run_output item_out, rej_out;
	cdr_outputs *own; /* of rejects_path/itemize_path, committed by
			   * cdr_run_commit; NULL with opts.outputs */
	double seconds, pass_seconds, dup_seconds;
	int executed;
};

static const char *const reason_names[CDR_NREASON] = {
	"rated",
	"malformed:columns",
	"malformed:id",
	"malformed:subscriber",
	"malformed:service",
	"malformed:start",
	"malformed:destination",
	"malformed:duration",
	"malformed:volume",
	"malformed:line_too_long",
	"duplicate",
	"after_period",
	"no_zone",
	"inactive",
	"unknown_subscriber",
	"no_rate",
	"unanswered",
};

const char *cdr_reason_name(int i)
{
	return i >= 0 && i < CDR_NREASON ? reason_names[i] : NULL;
}

static int set_err(cdr_run *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record the run's first failure; every thread then winds down. */
static int set_err(cdr_run *r, int rc, const char *fmt, ...)
{
	pthread_mutex_lock(&r->mu);
	if (!r->err) {
		va_list ap;
		va_start(ap, fmt);
		r->err = rc;
		vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&r->cv_ready);
	pthread_cond_broadcast(&r->cv_free);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int add_path(cdr_run *r, const char *path)
{
	if (r->nin == MAX_INPUTS)
		return -E2BIG;
	if (r->nin == r->incap) {
		uint32_t cap = r->incap ? r->incap * 2 : 16;
		input *n = realloc(r->in, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->in = n;
		r->incap = cap;
	}
	r->in[r->nin] = (input){.path = strdup(path), .spool_fd = -1};
	if (!r->in[r->nin].path)
		return -ENOMEM;
	r->nin++;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- chunk queue ----------------------------------------------------- */

/* Take a free buffer (reader side); NULL when the run failed. */
static char *buf_get(cdr_run *r)
{
	pthread_mutex_lock(&r->mu);
	while (!r->nfree && !r->err)
		pthread_cond_wait(&r->cv_free, &r->mu);
	char *b = r->err ? NULL : r->freebufs[--r->nfree];
	pthread_mutex_unlock(&r->mu);
	return b;
}

static void buf_put(cdr_run *r, char *b)
{
	pthread_mutex_lock(&r->mu);
	r->freebufs[r->nfree++] = b;
	pthread_cond_signal(&r->cv_free);
	pthread_mutex_unlock(&r->mu);
}

static void chunk_push(cdr_run *r, const chunk *c)
{
	pthread_mutex_lock(&r->mu);
	r->q[(r->qhead + r->qn++) % r->qcap] = *c;
	r->bytes_read += c->len;
	pthread_cond_signal(&r->cv_ready);
	pthread_mutex_unlock(&r->mu);
}

/* Next chunk for a worker; 0 when reading is over (or failed). */
static int chunk_pop(cdr_run *r, chunk *c)
{
	pthread_mutex_lock(&r->mu);
	while (!r->qn && !r->reading_done && !r->err)
		pthread_cond_wait(&r->cv_ready, &r->mu);
	int got = r->qn && !r->err;
	if (got) {
		*c = r->q[r->qhead];
		r->qhead = (r->qhead + 1) % r->qcap;
		r->qn--;
	}
	pthread_mutex_unlock(&r->mu);
	return got;
}

/* Give the buffers of chunks still queued back to the pool: after a
 * failure the workers stop popping, and cdr_run_free frees only the pool
 * (a mid-file read error once leaked a 4 MiB buffer per queued chunk). */
static void queue_drain(cdr_run *r)
{
	for (; r->qn; r->qn--) {
		r->freebufs[r->nfree++] = r->q[r->qhead].buf;
		r->qhead = (r->qhead + 1) % r->qcap;
	}
}

/* ---- output lines ---------------------------------------------------- */

static int ob_flush(outbuf *o)
{
	if (o->n && cdr__write_all(o->fd, o->b, o->n)) {
		o->failed = 1;
		return -errno;
	}
	o->n = 0;
	return 0;
}

/* Room for `need` more bytes; the lines are whole, so O_APPEND writes
 * from several workers interleave only at line boundaries. */
static int ob_room(outbuf *o, size_t need)
{
	if (o->n + need > OUTBUF)
		return ob_flush(o);
	return 0;
}

static size_t fmt_reject(char *b, const char *line, size_t n, int reason)
{
	const char *rs = reason_names[reason];
	size_t rn = strlen(rs);
	memcpy(b, line, n);
	b[n] = ',';
	/* A line, not a C string: it ends in '\n', never in NUL. */
	memcpy(b + n + 1, rs, rn); // NOLINT(bugprone-not-null-terminated-result)
	b[n + 1 + rn] = '\n';
	return n + rn + 2;
}

/* id,account,subscriber,service,zone,band,quantity,charge */
static size_t fmt_item(char *b, const cdr_tariff *t, const cdr__rec *rec,
		       const cdr__rated *x)
{
	static const char *const svc[] = {"voice", "sms", "data"};
	size_t o = 0;
#define PUT(s, n)                                                             \
	do {                                                                  \
		memcpy(b + o, (s), (n));                                      \
		o += (n);                                                     \
	} while (0)
#define PUTS(s) PUT((s), strlen(s))
	PUT(rec->id, rec->id_len);
	if (rec->id_line) { /* FILE:LINE */
		b[o++] = ':';
		o += cdr__fmt_u128(b + o, rec->id_line);
	}
	b[o++] = ',';
	PUTS(t->accounts[x->account]);
	b[o++] = ',';
	PUT(rec->sub, rec->sub_len);
	b[o++] = ',';
	PUTS(svc[x->service]);
	b[o++] = ',';
	PUTS(x->zone < t->nzones ? t->zone_names[x->zone] : "*");
	b[o++] = ',';
	PUTS(x->band == CDR_BAND_STAR ? "*" : t->band_names[x->band]);
	b[o++] = ',';
	o += cdr__fmt_u128(b + o, x->quantity);
	b[o++] = ',';
	o += cdr__fmt_scaled(b + o, x->charge_micros, 6);
	b[o++] = '\n';
#undef PUT
#undef PUTS
	return o;
}

/* Upper bound of an itemize line: id, account, numbers, names, figures. */
static size_t item_bound(const cdr_tariff *t, const cdr__rec *rec,
			 const cdr__rated *x)
{
	size_t zn = x->zone < t->nzones ? strlen(t->zone_names[x->zone]) : 1;
	size_t bn = x->band == CDR_BAND_STAR ? 1
					      : strlen(t->band_names[x->band]);
	return rec->id_len + strlen(t->accounts[x->account]) + rec->sub_len +
	       zn + bn + 160;
}

/* ---- workers --------------------------------------------------------- */

static int dvec_push(dvec *v, uint64_t h, uint64_t loc)
{
	dblock *b = v->head;
	if (!b || b->n == DBLOCK) {
		b = malloc(sizeof(*b));
		if (!b)
			return -ENOMEM;
		b->next = v->head;
		b->n = 0;
		v->head = b;
	}
	b->e[2 * (size_t)b->n] = h;
	b->e[2 * (size_t)b->n + 1] = loc;
	b->n++;
	v->n++;
	return 0;
}

static void dvec_free(dvec *v)
{
	for (dblock *b = v->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	v->head = NULL;
	v->n = 0;
}

static int emit_reject(worker *w, const char *line, size_t n, int reason)
{
	if (w->rej.fd < 0)
		return 0;
	size_t rn = strlen(reason_names[reason]);
	if (ob_room(&w->rej, n + rn + 2))
		return -errno;
	w->rej.n += fmt_reject(w->rej.b + w->rej.n, line, n, reason);
	return 0;
}

/* A record rejected before rating counts the same under every tariff. */
static int reject_all(worker *w, const char *line, size_t n, int reason)
{
	for (int k = 0; k < w->r->nt; k++)
		w->by_reason[k][reason]++;
	return emit_reject(w, line, n, reason);
}

/*
 * Records are rated in batches, stage by stage, so that the cache misses
 * of one record's table lookups overlap with the others' instead of being
 * paid one after another: the subscriber slots of the whole batch are
 * prefetched after parsing, the rows they point at after probing, and the
 * account sums after rating. Each stage is a plain loop over the batch.
 */
#define BATCH 32

typedef struct batch {
	int n;
	const input *in; /* a batch holds lines of one input */
	char *scratch;	 /* [BATCH][CDR__SCRATCH(CDR_LINE_MAX)]: rebuilt
			    quoted fields, touched only by switch formats */
	uint64_t lineno[BATCH];
	const char *line[BATCH];
	size_t len[BATCH];
	uint64_t loc[BATCH];
	int status[BATCH]; /* CDR_OK, or the reason it was rejected early */
	cdr__rec rec[BATCH];
	int64_t utc[BATCH][2];
	uint64_t subh[BATCH];
	cdr__subhit hit[BATCH][2];
	cdr__rated x[BATCH][2];
} batch;

#define SCRATCH_REC CDR__SCRATCH(CDR_LINE_MAX)

/* Parse a line of input `in` and resolve its start under every tariff:
 * what the pass does, and what taking back a duplicate does again.
 * Inlined: a call per record was 9M instructions of 200k records. */
static inline __attribute__((always_inline)) int parse_rec(const cdr_run *r, const input *in, const char *p,
		     size_t n, cdr__rec *rec, char *scratch, uint64_t lineno,
		     int64_t *utc)
{
	int st;
	/* The native layout by position is the hot path: no dispatch. */
	if (in->fmt.kind == CDR_FORMAT_NATIVE && !in->fmt.bycol &&
	    !in->fmt.norm)
		st = cdr__parse_line(p, n, rec);
	else
		st = cdr__fmt_parse(&in->fmt, p, n, rec, scratch, in->path,
				    lineno);
	if (st != CDR_OK)
		return st;
	if (r->in_tz && rec->start_kind == CDR_START_LOCAL) {
		/* --input-timezone: the naive stamp is that zone's wall
		 * clock (gap forward, fold first, as section 6). */
		rec->start = cdr__tz_local_to_utc(r->in_tz, rec->start);
		rec->start_kind = CDR_START_UTC;
	}
	for (int k = 0; st == CDR_OK && k < r->nt; k++)
		st = cdr__start_utc(r->t[k], rec, &utc[k]);
	return st;
}

static int lvec_push(lvec *v, uint64_t loc, uint64_t line)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		uint64_t *e = realloc(v->e, cap * 2 * sizeof(*e));
		if (!e)
			return -ENOMEM;
		v->e = e;
		v->cap = cap;
	}
	v->e[2 * v->n] = loc;
	v->e[2 * v->n + 1] = line;
	v->n++;
	return 0;
}

/* Parse, check the start under every tariff, note the duplicate key for
 * the duplicate check, prefetch the subscriber slots. */
static int stage_parse(worker *w, batch *b)
{
	cdr_run *r = w->r;
	for (int i = 0; i < b->n; i++) {
		cdr__rec *rec = &b->rec[i];
		w->read++;
		if (b->len[i] > CDR_LINE_MAX) {
			b->status[i] = CDR_R_LINE_TOO_LONG;
			b->len[i] = CDR_LINE_MAX; /* rejects show its head */
			continue;
		}
		b->status[i] = parse_rec(r, b->in, b->line[i], b->len[i], rec,
					 b->scratch + (size_t)i * SCRATCH_REC,
					 b->lineno[i], b->utc[i]);
		if (b->status[i] != CDR_OK)
			continue;
		uint64_t h = XXH3_64bits(rec->key, rec->key_len);
		if (dvec_push(&w->part[h >> (64 - NPART_BITS)], h, b->loc[i]))
			return -ENOMEM;
		if (rec->id_line && w->item.fd >= 0 &&
		    lvec_push(&w->lines, b->loc[i], rec->id_line))
			return -ENOMEM;
		b->subh[i] = cdr__sub_hash(rec->sub, rec->sub_len);
		for (int k = 0; k < r->nt; k++)
			cdr__sub_prefetch(r->t[k], b->subh[i]);
	}
	return 0;
}

/* Probe the subscriber slots; prefetch rows where a slot is not enough. */
static void stage_lookup(worker *w, batch *b)
{
	cdr_run *r = w->r;
	for (int i = 0; i < b->n; i++) {
		if (b->status[i] != CDR_OK)
			continue;
		for (int k = 0; k < r->nt; k++) {
			cdr__subhit *hit = &b->hit[i][k];
			cdr__sub_find(r->t[k], b->rec[i].sub, b->rec[i].sub_len,
				      b->subh[i], hit);
			/* A single row came with the slot; only numbers with
			 * several rows need the rows array. */
			if (hit->nrows > 1)
				__builtin_prefetch(&r->t[k]->rows[hit->first]);
		}
	}
}

/* Rate; prefetch the account sums the records will add to. */
static void stage_rate(worker *w, batch *b)
{
	cdr_run *r = w->r;
	for (int i = 0; i < b->n; i++) {
		if (b->status[i] != CDR_OK)
			continue;
		for (int k = 0; k < r->nt; k++) {
			cdr__rated *x = &b->x[i][k];
			cdr__rate_record_hit(r->t[k], &r->per[k], &b->rec[i],
					     b->utc[i][k], &b->hit[i][k], x);
			if (x->reason == CDR_OK)
				__builtin_prefetch(&w->acc[k].acct[x->account],
						   1);
		}
	}
}

/* Add to the sums; write itemize and rejects lines; count. */
static int stage_add(worker *w, batch *b)
{
	cdr_run *r = w->r;
	for (int i = 0; i < b->n; i++) {
		const char *p = b->line[i];
		size_t n = b->len[i];
		if (b->status[i] != CDR_OK) {
			if (reject_all(w, p, n, b->status[i]))
				return -errno;
			continue;
		}
		for (int k = 0; k < r->nt; k++) {
			const cdr__rated *x = &b->x[i][k];
			w->by_reason[k][x->reason]++;
			if (x->reason == CDR_OK && cdr__acc_add(&w->acc[k], x, 1))
				return -ENOMEM;
			if (k != r->o.itemize_tariff)
				continue;
			if (x->reason != CDR_OK) {
				if (emit_reject(w, p, n, x->reason))
					return -errno;
			} else if (w->item.fd >= 0) {
				if (ob_room(&w->item,
					    item_bound(r->t[k], &b->rec[i], x)))
					return -errno;
				w->item.n += fmt_item(w->item.b + w->item.n,
						      r->t[k], &b->rec[i], x);
			}
		}
	}
	return 0;
}

/* The stages in order over one batch; the batch is empty afterwards. */
static int run_batch(worker *w, batch *b)
{
	int rc = stage_parse(w, b);
	if (!rc) {
		stage_lookup(w, b);
		stage_rate(w, b);
		rc = stage_add(w, b);
	}
	b->n = 0;
	return rc;
}

/* Split a chunk into lines (dropping \r, empty lines and the header)
 * and rate them in batches; `loc` of each line is kept for the
 * duplicate check. */
static int process_chunk(worker *w, const chunk *c, batch *b)
{
	const char *p = c->buf, *end = c->buf + c->len;
	uint64_t base = (uint64_t)c->input << LOC_OFF_BITS;

	if (c->too_long) {
		w->read++;
		return reject_all(w, c->buf, c->len, CDR_R_LINE_TOO_LONG);
	}
	if (c->first && end - p >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3; /* a UTF-8 byte order mark is not part of the data */
	int first = c->first;
	const input *in = &w->r->in[c->input];
	uint64_t lineno = c->line0;
	b->n = 0;
	b->in = in;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t n = (size_t)(e - p);
		if (n && p[n - 1] == '\r')
			n--;
		/* The header is the first non-empty line of a file, when its
		 * format said it has one (empty lines are not lines for the
		 * contract). */
		int header = first && n && in->fmt.header;
		if (n)
			first = 0;
		if (n && !header) {
			b->lineno[b->n] = lineno;
			b->line[b->n] = p;
			b->len[b->n] = n;
			b->loc[b->n] = base | (c->off + (uint64_t)(p - c->buf));
			if (++b->n == BATCH) {
				int rc = run_batch(w, b);
				if (rc)
					return rc;
			}
		}
		p = nl ? nl + 1 : end;
		lineno++;
	}
	return b->n ? run_batch(w, b) : 0;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	cdr_run *r = w->r;
	chunk c;
	batch *b = malloc(sizeof(*b));
	/* Address space only: pages are touched by switch-format lines. */
	char *scratch = malloc(BATCH * SCRATCH_REC);
	if (!b || !scratch) {
		free(b);
		free(scratch);
		set_err(r, -ENOMEM, "out of memory");
		return NULL;
	}
	b->scratch = scratch;
	int rc = 0;
	while (!rc && chunk_pop(r, &c)) {
		rc = process_chunk(w, &c, b);
		buf_put(r, c.buf);
	}
	free(b);
	free(scratch);
	if (!rc)
		rc = ob_flush(&w->item);
	if (!rc)
		rc = ob_flush(&w->rej);
	/* A failed write names its output, mid-run or at the last flush. */
	const run_output *o = w->item.failed ? &r->item_out : &r->rej_out;
	if (rc && (w->item.failed || w->rej.failed))
		set_err(r, rc, "%s: cannot write: %s",
			cdr__outputs_label(o->set, o->id), strerror(-rc));
	else if (rc)
		set_err(r, rc, "rating: %s", strerror(-rc));
	return NULL;
}

/* ---- reader ---------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(cdr_run *r, double t0, double *last)
{
	double t = now();
	if (!r->o.progress || !r->o.log || t - *last < 1.0)
		return;
	*last = t;
	pthread_mutex_lock(&r->mu);
	uint64_t b = r->bytes_read;
	pthread_mutex_unlock(&r->mu);
	fprintf(r->o.log, "\rcdrate: %.1f MB read, %.0f s", (double)b / 1e6,
		t - t0);
	fflush(r->o.log);
}

static const char *in_name(const input *in)
{
	return strcmp(in->path, "-") ? in->path : "standard input";
}

/*
 * Check a file's first non-empty line (no line end) before any of it is
 * rated, and settle the input's format from it. A bare CR in a header, or
 * in a first line that no \n ends within CDR_LINE_MAX (`open`), means the
 * file's line ends are CR alone: the whole file is one "line", which would
 * be skipped as a header or rejected whole, so the run stops. (A CR inside
 * a line that \n ends is only a bad byte, rejected with its line.) A
 * header starting `id,` that misses a native column, or a map's column
 * missing from the header, stops the run naming it (SPEC 11).
 */
static int check_head(cdr_run *r, input *in, const char *p, size_t n,
		      int open)
{
	int header = n >= 3 && !memcmp(p, "id,", 3);
	if ((header || open) && memchr(p, '\r', n))
		return set_err(r, -EINVAL,
			       "%s: line ends are bare CR (\\r); cdrate reads "
			       "\\n or \\r\\n",
			       in_name(in));
	char msg[CDR_ERR_MAX];
	int rc = cdr__fmt_head(&in->fmt, r->o.format, r->o.map, p, n, msg,
			       sizeof(msg));
	if (rc)
		return set_err(r, rc, "%s: %s", in_name(in), msg);
	in->fmt.norm = r->t[r->o.itemize_tariff]->norm;
	return 0;
}

/* While *first (no non-empty line seen yet in the file), look for the
 * first non-empty line in p[0, n), which holds whole lines (the last one
 * maybe ended by the end of the file) or the head of a cut one, and check
 * it (`at_start`: p is the file's first byte, where a UTF-8 byte order
 * mark may stand). Lines split as the workers split them: on \n, one \r
 * before it dropped, empty lines skipped. */
static int head_scan(cdr_run *r, input *in, const char *p, size_t n,
		     int at_start, int *first)
{
	size_t i = at_start && n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3) ? 3 : 0;
	while (*first && i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - p) : n, len = e - i;
		if (len && p[e - 1] == '\r')
			len--;
		if (len) {
			*first = 0;
			return check_head(r, in, p + i, len, !nl);
		}
		i = e + 1;
	}
	return 0;
}

/* Copy b[lo, hi) into the spool of a stream at its file offset. */
static int spool(cdr_run *r, const input *in, const char *b, size_t lo,
		 size_t hi, uint64_t base)
{
	while (in->spool_fd >= 0 && lo < hi) {
		ssize_t w = cdr__sys_table.pwrite(in->spool_fd, b + lo, hi - lo,
						  (off_t)(in->spool_at + base + lo));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			return set_err(r, -e, "%s: spooling: %s", in_name(in),
				       strerror(e));
		}
		lo += (size_t)w;
	}
	return 0;
}

/*
 * Read one input into chunks of whole lines. A buffer is CHUNK bytes of
 * fresh data after up to CDR_LINE_MAX bytes carried from the previous read
 * (the unfinished last line). A line longer than CDR_LINE_MAX is cut: its
 * first CDR_LINE_MAX bytes become a too_long chunk and the rest is skipped
 * up to the next newline, so a hostile line costs no memory.
 */
/* The run's spool, made by its first stream (reader thread only). */
typedef struct spool_state {
	int fd;
	uint64_t end; /* where the next stream's bytes go */
} spool_state;

static int read_input(cdr_run *r, cdr__backend *be, uint32_t idx,
		      char *carry, spool_state *sp, double t0, double *last)
{
	input *in = &r->in[idx];
	int is_stdin = !strcmp(in->path, "-");
	int fd = is_stdin ? STDIN_FILENO
			  : cdr__sys_table.open(in->path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return set_err(r, -errno, "%s: cannot open: %s", in->path,
			       strerror(errno));
	struct stat st;
	int regular = !is_stdin && !fstat(fd, &st) && S_ISREG(st.st_mode);
	if (regular) {
		in->dev = st.st_dev;
		in->ino = st.st_ino;
		in->size = st.st_size;
		in->mtime = st.st_mtim;
	}
	/* The source tells plain bytes from gzip and zstd (source.h);
	 * streams are read with read(2), one request at a time. */
	cdr__source src;
	int rc = cdr__source_open(&src, fd, regular ? be : cdr__backend_read(),
				  regular);
	if (rc) {
		cdr__source_close(&src);
		if (!is_stdin)
			close(fd);
		return set_err(r, rc, "%s: read error: %s", in_name(in),
			       strerror(-rc));
	}
	in->comp = (uint8_t)src.comp;
	int seekable = cdr__source_seekable(&src);
	if (!seekable) {
		/* Standard input, a pipe or a FIFO cannot be read again for
		 * the duplicate check, nor can decoded bytes be found again
		 * by offset: keep a copy as they stream. */
		if (sp->fd < 0) {
			const char *dir = getenv("TMPDIR");
			char path[4096];
			snprintf(path, sizeof(path), "%s/cdrate-spool-XXXXXX",
				 dir && *dir ? dir : "/tmp");
			sp->fd = mkstemp(path);
			if (sp->fd < 0) {
				int e = errno;
				cdr__source_close(&src);
				if (!is_stdin)
					close(fd);
				return set_err(r, -e, "%s: cannot spool: %s",
					       in_name(in), strerror(e));
			}
			unlink(path);
			in->spool_owner = 1;
		}
		in->spool_fd = sp->fd;
		in->spool_at = sp->end;
	}
	/* Until a first line says otherwise (an input of blank lines only
	 * keeps this): the format asked for, native for auto. */
	memset(&in->fmt, 0, sizeof(in->fmt));
	in->fmt.kind = (uint8_t)(r->o.format == CDR_FORMAT_AUTO
					 ? CDR_FORMAT_NATIVE
					 : r->o.format);
	in->fmt.norm = r->t[r->o.itemize_tariff]->norm;
	uint64_t lines = 0; /* '\n's before the next chunk, when counted */
	uint64_t off = 0;   /* offset of the next fresh byte, decoded */
	size_t carry_n = 0;
	int skipping = 0, first = 1;

	for (;;) {
		char *b = buf_get(r);
		if (!b) {
			rc = -ECANCELED;
			break;
		}
		memcpy(b, carry, carry_n);
		ssize_t n = cdr__source_fill(&src, b + carry_n, CHUNK);
		if (n < 0) {
			buf_put(r, b);
			rc = src.why[0] ? set_err(r, (int)n, "%s: %s",
						  in_name(in), src.why)
					: set_err(r, (int)n, "%s: read error: %s",
						  in->path, strerror((int)-n));
			break;
		}
		uint64_t base = off - carry_n; /* offset of b[0] */
		size_t total = carry_n + (size_t)n, fresh = carry_n;
		off += (uint64_t)n;
		carry_n = 0;
		size_t start = 0;
		if (skipping) {
			char *nl = memchr(b, '\n', total);
			if (!nl) { /* still inside the long line */
				buf_put(r, b);
				if (n == 0)
					break;
				continue;
			}
			start = (size_t)(nl - b) + 1;
			skipping = 0;
			lines++; /* the end of the line cut as too long */
		}
		size_t end = total;
		if (n > 0) { /* keep the unfinished last line for next time */
			char *nl = memrchr(b + start, '\n', total - start);
			end = nl ? (size_t)(nl - b) + 1 : start;
		}
		size_t tail = total - end;
		/* The first non-empty line is checked before it is rated: in
		 * these whole lines, or else in the head of a cut one. */
		int chunk_first = first;
		if (first)
			rc = head_scan(r, in, b + start, end - start,
				       base + start == 0, &first);
		if (!rc && first && tail > CDR_LINE_MAX)
			rc = head_scan(r, in, b + end, CDR_LINE_MAX,
				       base + end == 0, &first);
		if (rc) {
			buf_put(r, b);
			break;
		}
		/* Spool the fresh bytes that may be read back: whole lines and
		 * the unfinished one. A line past CDR_LINE_MAX is rejected,
		 * never a duplicate candidate, so none of it is spooled (its
		 * place in the spool stays a hole): /dev/zero costs no disk. */
		if ((rc = spool(r, in, b, fresh > start ? fresh : start,
				tail > CDR_LINE_MAX ? end : total, base))) {
			buf_put(r, b);
			break;
		}
		if (n > 0) {
			if (tail > CDR_LINE_MAX) {
				/* The tail alone is too long: report its
				 * head, skip the rest of that line. */
				char *lb = buf_get(r);
				if (!lb) {
					buf_put(r, b);
					rc = -ECANCELED;
					break;
				}
				memcpy(lb, b + end, CDR_LINE_MAX);
				chunk lc = {lb, CDR_LINE_MAX, idx, base + end,
					    0, 0, 1};
				chunk_push(r, &lc);
				skipping = 1;
			} else {
				memcpy(carry, b + end, tail);
				carry_n = tail;
			}
		}
		if (end > start) {
			chunk c = {b + start, end - start, idx, base + start,
				   0, (uint8_t)chunk_first, 0};
			/* FILE:LINE ids need line numbers: count the lines
			 * here, where chunks are still in file order (only
			 * for such inputs, and only with --itemize). */
			if (in->fmt.line_ids && r->item_out.id) {
				c.line0 = lines + 1;
				for (const char *q = b + start, *qe = b + end;
				     (q = memchr(q, '\n', (size_t)(qe - q)));
				     q++)
					lines++;
			}
			/* Workers give back c.buf; keep it the pool's pointer. */
			if (start) {
				memmove(b, b + start, end - start);
				c.buf = b;
			}
			/* The header is the first non-empty line: while the
			 * file has shown only blank lines, the next chunk is
			 * still its "first" (head_scan keeps `first`). */
			chunk_push(r, &c);
		} else {
			buf_put(r, b);
		}
		progress(r, t0, last);
		if (n == 0)
			break;
	}
	/* A file written to while it was read (a collector still appending,
	 * or rewriting it in place) gives sums of no file that ever was. */
	if (!rc && regular &&
	    (fstat(fd, &st) || st.st_size != in->size ||
	     (off_t)src.raw_off != in->size ||
	     st.st_mtim.tv_sec != in->mtime.tv_sec ||
	     st.st_mtim.tv_nsec != in->mtime.tv_nsec))
		rc = set_err(r, -ESTALE, "%s: changed while being rated",
			     in->path);
	if (!seekable) { /* the next stream's bytes follow this one's */
		in->size = (off_t)off;
		sp->end = in->spool_at + off;
	}
	cdr__source_close(&src);
	if (!is_stdin)
		close(fd);
	return rc;
}

typedef struct reader_arg {
	cdr_run *r;
	cdr__backend *be;
	double t0;
} reader_arg;

static void *reader_main(void *arg)
{
	reader_arg *a = arg;
	cdr_run *r = a->r;
	char *carry = malloc(CDR_LINE_MAX + 1);
	spool_state sp = {-1, 0};
	double last = now();
	if (!carry)
		set_err(r, -ENOMEM, "out of memory");
	for (uint32_t i = 0; carry && i < r->nin && !r->err; i++)
		if (read_input(r, a->be, i, carry, &sp, a->t0, &last))
			break;
	free(carry);
	pthread_mutex_lock(&r->mu);
	r->reading_done = 1;
	pthread_cond_broadcast(&r->cv_ready);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* ---- duplicates ------------------------------------------------------ */

typedef struct cand {
	uint64_t h, loc;
} cand;

typedef struct cvec {
	cand *c;
	size_t n, cap;
} cvec;

static int cvec_push(cvec *v, uint64_t h, uint64_t loc)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		cand *c = realloc(v->c, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		v->c = c;
		v->cap = cap;
	}
	v->c[v->n].h = h;
	v->c[v->n++].loc = loc;
	return 0;
}

/*
 * Every entry whose key hash occurs more than once, partition by partition:
 * a partition's open-addressing table stays small enough for the cache, so
 * this costs about one pass over the 16-byte entries.
 */
static int find_candidates(cdr_run *r, cvec *out)
{
	uint64_t *flat = NULL;
	uint32_t *slot = NULL;
	uint8_t *seen = NULL;
	size_t flat_cap = 0, slot_cap = 0;
	int rc = 0;

	for (size_t p = 0; p < NPART && !rc; p++) {
		size_t n = 0;
		for (int i = 0; i < r->nw; i++)
			n += r->w[i].part[p].n;
		if (n < 2)
			continue;
		size_t cap = 16;
		while (cap < 2 * n)
			cap <<= 1;
		if (n > flat_cap || cap > slot_cap) {
			free(flat);
			free(slot);
			free(seen);
			flat_cap = n > flat_cap ? n * 2 : flat_cap;
			slot_cap = cap > slot_cap ? cap : slot_cap;
			flat = malloc(flat_cap * 2 * sizeof(*flat));
			seen = malloc(flat_cap);
			slot = malloc(slot_cap * sizeof(*slot));
			if (!flat || !slot || !seen) {
				rc = -ENOMEM;
				break;
			}
		}
		size_t k = 0;
		for (int i = 0; i < r->nw; i++)
			for (const dblock *b = r->w[i].part[p].head; b;
			     b = b->next) {
				memcpy(flat + 2 * k, b->e,
				       2 * (size_t)b->n * sizeof(*flat));
				k += b->n;
			}
		assert(k == n); /* the blocks hold exactly the counted entries */
		memset(slot, 0, cap * sizeof(*slot));
		memset(seen, 0, n);
		for (size_t j = 0; j < n && !rc; j++) {
			uint64_t h = flat[2 * j];
			size_t s = (size_t)h & (cap - 1);
			while (slot[s] && flat[2 * (size_t)(slot[s] - 1)] != h)
				s = (s + 1) & (cap - 1);
			if (!slot[s]) {
				slot[s] = (uint32_t)(j + 1);
				continue;
			}
			size_t f = slot[s] - 1;
			if (!seen[f]) {
				seen[f] = 1;
				rc = cvec_push(out, h, flat[2 * f + 1]);
			}
			if (!rc)
				rc = cvec_push(out, h, flat[2 * j + 1]);
		}
	}
	free(flat);
	free(slot);
	free(seen);
	return rc;
}

static int cmp_cand(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return (x->loc > y->loc) - (x->loc < y->loc);
}

/*
 * Reading lines back. Candidates are read in file order, one input open at
 * a time (a run may have thousands of inputs, more than it may hold
 * descriptors for), through a block that holds any whole line: neighbouring
 * candidates - the usual case, since duplicates come in re-delivered runs
 * of lines - share one read. Each line is copied at its exact length into
 * an arena, so memory follows the lines' real sizes (a block per line once
 * made 20k copies of one id take 1.26 GB).
 */
#define RB_BLOCK (CDR_LINE_MAX + 2) /* the longest line and its \r\n */

/* A candidate line: the hash of its duplicate key and its place, then its
 * bytes in the arena (no line end) once read back, and its key: a prefix
 * of the line (a native id) or a copy after it (a map's quoted id). */
typedef struct back {
	uint64_t h, loc;
	size_t at, key_at;
	uint32_t n, key_n;
} back;

typedef struct rback {
	uint32_t idx; /* input whose descriptor is open, or UINT32_MAX */
	int fd;
	char *blk;	  /* [RB_BLOCK]: bytes blk_off .. blk_off + blk_n */
	uint64_t blk_off;
	size_t blk_n;
	char *arena;	  /* the lines read back, end to end */
	size_t an, acap;
	char *scratch;	  /* [CDR__SCRATCH(RB_BLOCK)]: a key rebuilt */
} rback;

static int cmp_loc(const void *a, const void *b)
{
	const back *x = a, *y = b;
	return (x->loc > y->loc) - (x->loc < y->loc);
}

/* By hash, then key, then whole line, then place: the bytewise smallest
 * line of a key comes first (it is kept), and of identical lines the
 * first read, so a FILE:LINE itemize id does not depend on sorting. For
 * qsort_r (glibc's, as _GNU_SOURCE gives): runs on several threads of one
 * process may resolve at once. */
static int cmp_back(const void *a, const void *b, void *arena_arg)
{
	const back *x = a, *y = b;
	const char *arena = arena_arg;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	size_t m = x->key_n < y->key_n ? x->key_n : y->key_n;
	int c = memcmp(arena + x->key_at, arena + y->key_at, m);
	if (c || x->key_n != y->key_n)
		return c ? c : (x->key_n < y->key_n ? -1 : 1);
	const char *px = arena + x->at, *py = arena + y->at;
	m = x->n < y->n ? x->n : y->n;
	c = memcmp(px, py, m);
	if (c || x->n != y->n)
		return c ? c : (x->n > y->n) - (x->n < y->n);
	return (x->loc > y->loc) - (x->loc < y->loc);
}

static void rb_close(cdr_run *r, rback *rb)
{
	if (rb->idx != UINT32_MAX && rb->fd >= 0 &&
	    rb->fd != r->in[rb->idx].spool_fd)
		close(rb->fd);
	rb->idx = UINT32_MAX;
	rb->fd = -1;
	rb->blk_n = 0;
}

/* Open input idx for reading back: its spool, or the file by path, which
 * must still be the file that was read (device, inode, size, mtime), else
 * a collector's rewrite would take out of the sums lines never added. */
static int rb_open(cdr_run *r, rback *rb, uint32_t idx)
{
	const input *in = &r->in[idx];
	struct stat st;
	rb_close(r, rb);
	rb->idx = idx;
	if (in->spool_fd >= 0) {
		rb->fd = in->spool_fd;
		return 0;
	}
	rb->fd = cdr__sys_table.open(in->path, O_RDONLY | O_CLOEXEC, 0);
	if (rb->fd < 0)
		return set_err(r, -errno, "%s: cannot reopen: %s", in->path,
			       strerror(errno));
	if (fstat(rb->fd, &st))
		return set_err(r, -errno, "%s: %s", in->path, strerror(errno));
	if (st.st_dev != in->dev || st.st_ino != in->ino ||
	    st.st_size != in->size || st.st_mtim.tv_sec != in->mtime.tv_sec ||
	    st.st_mtim.tv_nsec != in->mtime.tv_nsec)
		return set_err(r, -ESTALE, "%s: changed while being rated",
			       in->path);
	return 0;
}

/* Read the line at b->loc (input << 44 | offset) into the arena. */
static int rb_line(cdr_run *r, rback *rb, back *b)
{
	uint32_t idx = (uint32_t)(b->loc >> LOC_OFF_BITS);
	uint64_t off = b->loc & ((1ULL << LOC_OFF_BITS) - 1);
	int rc;
	if (idx != rb->idx && (rc = rb_open(r, rb, idx)))
		return rc;
	const char *p = NULL, *nl = NULL;
	if (off >= rb->blk_off && off < rb->blk_off + rb->blk_n) {
		p = rb->blk + (off - rb->blk_off);
		nl = memchr(p, '\n', rb->blk_n - (off - rb->blk_off));
	}
	if (!nl) { /* not in the block, or cut at its end: read from it */
		const input *in = &r->in[idx];
		/* Never past the input's end: in the spool, the next stream's
		 * bytes follow. */
		uint64_t left = (uint64_t)in->size > off
					? (uint64_t)in->size - off
					: 0;
		size_t want = left < RB_BLOCK ? (size_t)left : RB_BLOCK;
		ssize_t n = cdr__backend_read()->fill(
			NULL, rb->fd, rb->blk, want,
			(int64_t)(in->spool_at + off));
		if (n < 0)
			return set_err(r, (int)n, "%s: read error: %s",
				       r->in[idx].path, strerror((int)-n));
		rb->blk_off = off;
		rb->blk_n = (size_t)n;
		p = rb->blk;
		nl = memchr(p, '\n', (size_t)n);
		/* A line that parsed was at most CDR_LINE_MAX bytes. */
		if (!nl && (size_t)n == RB_BLOCK)
			return set_err(r, -ESTALE,
				       "%s: changed while being rated",
				       r->in[idx].path);
	}
	size_t len = nl ? (size_t)(nl - p) : rb->blk_n - (size_t)(p - rb->blk);
	if (len && p[len - 1] == '\r')
		len--;
	const char *key;
	size_t key_n;
	cdr__fmt_key(&r->in[idx].fmt, p, len, &key, &key_n, rb->scratch);
	int key_copy = key < p || key >= p + len; /* not inside the line */
	size_t need = len + (key_copy ? key_n : 0);
	if (!rb->arena || rb->an + need > rb->acap) {
		size_t cap = rb->acap ? rb->acap : 1 << 16;
		while (cap < rb->an + need)
			cap *= 2;
		char *a = realloc(rb->arena, cap);
		if (!a)
			return -ENOMEM;
		rb->arena = a;
		rb->acap = cap;
	}
	memcpy(rb->arena + rb->an, p, len);
	b->at = rb->an;
	b->n = (uint32_t)len;
	b->key_n = (uint32_t)key_n;
	if (key_copy) {
		memcpy(rb->arena + rb->an + len, key, key_n);
		b->key_at = rb->an + len;
	} else {
		b->key_at = rb->an + (size_t)(key - p);
	}
	rb->an += need;
	return 0;
}

/* Lines to take out of an output file, as a multiset. */
typedef struct skipset {
	char *text;
	size_t n, cap;
	size_t *off; /* line starts; off[i+1] - off[i] is its length */
	size_t nl, lcap;
} skipset;

static int skip_add(skipset *s, const char *line, size_t n)
{
	if (s->n + n > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->n + n)
			cap *= 2;
		char *t = realloc(s->text, cap);
		if (!t)
			return -ENOMEM;
		s->text = t;
		s->cap = cap;
	}
	if (s->nl + 2 > s->lcap) {
		size_t cap = s->lcap ? s->lcap * 2 : 64;
		size_t *o = realloc(s->off, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		s->off = o;
		s->lcap = cap;
	}
	if (!s->nl)
		s->off[0] = 0;
	if (n)
		memcpy(s->text + s->n, line, n);
	s->n += n;
	s->off[++s->nl] = s->n;
	return 0;
}

/* The line number of a FILE:LINE record at loc (lines: sorted pairs). */
static uint64_t line_of(const lvec *lines, uint64_t loc)
{
	size_t lo = 0, hi = lines->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lines->e[2 * mid] < loc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < lines->n && lines->e[2 * lo] == loc ? lines->e[2 * lo + 1]
							: 0;
}

/* Take a losing duplicate back out of every tariff's sums; `tmp` holds
 * 2 * CDR_LINE_MAX + 512 bytes for the output lines it removes, and
 * `scratch` SCRATCH_REC for its fields. */
static int undo_duplicate(cdr_run *r, const char *line, size_t n,
			  uint64_t loc, const lvec *lines, char *tmp,
			  char *scratch, skipset *item, skipset *rej,
			  skipset *dup)
{
	const input *in = &r->in[loc >> LOC_OFF_BITS];
	cdr__rec rec;
	int64_t utc[2];
	int rc = 0;
	/* It parsed when it was first read; the same bytes parse again. */
	if (parse_rec(r, in, line, n, &rec, scratch, line_of(lines, loc),
		      utc) != CDR_OK)
		return set_err(r, -ESTALE, "%s: changed while being rated",
			       in->path);
	for (int k = 0; k < r->nt && !rc; k++) {
		cdr__rated x;
		cdr__rate_record(r->t[k], &r->per[k], &rec, utc[k], &x);
		r->by_reason[k][x.reason]--;
		r->by_reason[k][CDR_R_DUPLICATE]++;
		if (x.reason == CDR_OK)
			rc = cdr__acc_add(&r->acc[k], &x, -1);
		if (rc || k != r->o.itemize_tariff)
			continue;
		if (x.reason == CDR_OK && r->item_out.fd >= 0)
			rc = skip_add(item, tmp,
				      fmt_item(tmp, r->t[k], &rec, &x));
		else if (x.reason != CDR_OK && r->rej_out.fd >= 0)
			rc = skip_add(rej, tmp,
				      fmt_reject(tmp, line, n, x.reason));
		if (!rc && r->rej_out.fd >= 0)
			rc = skip_add(dup, tmp,
				      fmt_reject(tmp, line, n,
						 CDR_R_DUPLICATE));
	}
	return rc;
}

/* Candidates resolved per round: the arena of a round holds its lines,
 * about 100 bytes each (25 MB), and every round opens each input it needs
 * once. An id's candidates are never split over rounds. */
#define ROUND_CANDS ((size_t)1 << 18)

/*
 * After the pass: group the entries whose key hashes collide, read their
 * lines back, group by exact key (a hash collision between different keys
 * leaves both alone), keep the bytewise smallest line of each key and take
 * every other one back out (undo_duplicate). Cost is proportional to the
 * colliding entries, which are the duplicates themselves.
 */
static int resolve_duplicates(cdr_run *r, skipset *item, skipset *rej,
			      skipset *dup)
{
	cvec cv = {0};
	rback rb = {UINT32_MAX, -1, NULL, 0, 0, NULL, 0, 0, NULL};
	back *bs = NULL;
	char *tmp = NULL, *scratch = NULL;
	lvec lines = {0};
	int rc = find_candidates(r, &cv);
	if (!rc && cv.n) {
		qsort(cv.c, cv.n, sizeof(*cv.c), cmp_cand);
		rb.blk = malloc(RB_BLOCK);
		rb.scratch = malloc(CDR__SCRATCH(RB_BLOCK));
		tmp = malloc(2 * CDR_LINE_MAX + 512);
		scratch = malloc(SCRATCH_REC);
		bs = malloc((cv.n < ROUND_CANDS ? cv.n : ROUND_CANDS) *
			    sizeof(*bs));
		if (!rb.blk || !rb.scratch || !tmp || !scratch || !bs)
			rc = -ENOMEM;
		/* The workers' line numbers, as one sorted table. */
		for (int i = 0; !rc && i < r->nw; i++)
			for (size_t k = 0; !rc && k < r->w[i].lines.n; k++)
				rc = lvec_push(&lines, r->w[i].lines.e[2 * k],
					       r->w[i].lines.e[2 * k + 1]);
		if (!rc && lines.n)
			qsort(lines.e, lines.n, 2 * sizeof(*lines.e), cmp_cand);
	}
	for (size_t i = 0; !rc && i < cv.n;) {
		/* Whole hash groups, up to ROUND_CANDS (or one larger). */
		size_t j = i + 1;
		while (j < cv.n && (cv.c[j].h == cv.c[j - 1].h ||
				    j - i < ROUND_CANDS))
			j++;
		if (j - i > ROUND_CANDS) {
			back *nb = realloc(bs, (j - i) * sizeof(*bs));
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			bs = nb;
		}
		size_t m = j - i;
		for (size_t k = 0; k < m; k++)
			bs[k] = (back){cv.c[i + k].h, cv.c[i + k].loc, 0, 0, 0,
				       0};
		qsort(bs, m, sizeof(*bs), cmp_loc);
		rb.an = 0;
		for (size_t k = 0; !rc && k < m; k++)
			rc = rb_line(r, &rb, &bs[k]);
		rb_close(r, &rb);
		if (rc)
			break;
		qsort_r(bs, m, sizeof(*bs), cmp_back, rb.arena);
		for (size_t k = 1; !rc && k < m; k++) {
			const back *x = &bs[k], *y = &bs[k - 1];
			if (x->h == y->h && x->key_n == y->key_n &&
			    !memcmp(rb.arena + x->key_at, rb.arena + y->key_at,
				    x->key_n))
				rc = undo_duplicate(r, rb.arena + x->at, x->n,
						    x->loc, &lines, tmp, scratch,
						    item, rej, dup);
		}
		i = j;
	}
	rb_close(r, &rb);
	free(rb.blk);
	free(rb.arena);
	free(rb.scratch);
	free(bs);
	free(tmp);
	free(scratch);
	free(lines.e);
	free(cv.c);
	return rc;
}

/* ---- finishing outputs ----------------------------------------------- */

static uint64_t line_hash(const char *p, size_t n)
{
	return XXH3_64bits(p, n);
}

/*
 * Remove the lines in `skip` (each once) from the worker-written
 * temporary, then append `extra`. Lines of itemize and rejects may come in
 * any order, and equal lines are interchangeable, so removing any copy of
 * a skipped line is exact. The file is compacted in place: a line kept is
 * written at an offset no later than where it was read, so nothing unread
 * is overwritten, and no second temporary doubles the disk the output
 * takes. pwrite ignores its offset on an O_APPEND file (Linux), hence the
 * flag is off meanwhile.
 */
static int finish_output(run_output *f, skipset *skip, const skipset *extra,
			 char *err, size_t errlen)
{
	int rc = 0;
	if (f->fd < 0)
		return 0;
	const char *label = cdr__outputs_label(f->set, f->id);
	int fl = fcntl(f->fd, F_GETFL);
	if (fl < 0 || fcntl(f->fd, F_SETFL, fl & ~O_APPEND)) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot reread: %s", label,
			 strerror(-rc));
		return rc;
	}
	off_t woff = lseek(f->fd, 0, SEEK_END);
	if (skip->nl) {
		size_t cap = 16;
		while (cap < 2 * skip->nl)
			cap <<= 1;
		uint64_t *hs = calloc(cap, sizeof(*hs));
		uint32_t *ix = calloc(cap, sizeof(*ix));
		uint8_t *used = calloc(skip->nl, 1);
		int rfd = dup(f->fd);
		FILE *in = rfd >= 0 && lseek(rfd, 0, SEEK_SET) == 0
				   ? fdopen(rfd, "rb")
				   : NULL;
		char *line = NULL, *ob = malloc(OUTBUF);
		size_t lcap = 0, on = 0;
		if (!hs || !ix || !used || !in || !ob) {
			rc = -(errno ? errno : ENOMEM);
			snprintf(err, errlen, "%s: cannot reread: %s", label,
				 strerror(-rc));
			if (in)
				fclose(in);
			else if (rfd >= 0)
				close(rfd);
			free(hs);
			free(ix);
			free(used);
			free(ob);
			return rc;
		}
		for (size_t i = 0; i < skip->nl; i++) {
			const char *p = skip->text + skip->off[i];
			size_t n = skip->off[i + 1] - skip->off[i];
			uint64_t h = line_hash(p, n);
			size_t s = h & (cap - 1);
			while (ix[s])
				s = (s + 1) & (cap - 1);
			hs[s] = h;
			ix[s] = (uint32_t)(i + 1);
		}
		woff = 0;
		ssize_t n;
		while (!rc && (n = getline(&line, &lcap, in)) > 0) {
			uint64_t h = line_hash(line, (size_t)n);
			int drop = 0;
			for (size_t s = h & (cap - 1); ix[s];
			     s = (s + 1) & (cap - 1)) {
				size_t i = ix[s] - 1;
				const char *p = skip->text + skip->off[i];
				size_t m = skip->off[i + 1] - skip->off[i];
				if (!used[i] && hs[s] == h && m == (size_t)n &&
				    !memcmp(p, line, m)) {
					used[i] = 1;
					drop = 1;
					break;
				}
			}
			if (drop)
				continue;
			if (on + (size_t)n > OUTBUF) {
				if (cdr__pwrite_all(f->fd, ob, on, woff))
					rc = -errno;
				woff += (off_t)on;
				on = 0;
			}
			if ((size_t)n > OUTBUF) {
				if (!rc &&
				    cdr__pwrite_all(f->fd, line, (size_t)n, woff))
					rc = -errno;
				woff += n;
			} else {
				memcpy(ob + on, line, (size_t)n);
				on += (size_t)n;
			}
		}
		if (!rc && ferror(in))
			rc = -EIO;
		if (!rc && on && cdr__pwrite_all(f->fd, ob, on, woff))
			rc = -errno;
		woff += (off_t)on;
		if (!rc && ftruncate(f->fd, woff))
			rc = -errno;
		free(ob);
		free(line);
		free(hs);
		free(ix);
		free(used);
		fclose(in);
	}
	if (!rc && extra && extra->n &&
	    cdr__pwrite_all(f->fd, extra->text, extra->n, woff))
		rc = -errno;
	if (!rc && fcntl(f->fd, F_SETFL, fl))
		rc = -errno;
	if (rc)
		snprintf(err, errlen, "%s: cannot write: %s", label,
			 strerror(-rc));
	return rc; /* put in place by the set's commit */
}

/* ---- the public API -------------------------------------------------- */

int cdr_run_create(cdr_run **out, cdr_tariff *const *tariffs, int ntariffs,
		   const cdr_run_opts *opts, char *err, size_t errlen)
{
	*out = NULL;
	if (ntariffs < 1 || ntariffs > 2 || opts->threads < 1 ||
	    opts->period_month < 1 || opts->period_month > 12 ||
	    opts->period_year < 1970 || opts->period_year > 9999 ||
	    opts->itemize_tariff < 0 || opts->itemize_tariff >= ntariffs) {
		snprintf(err, errlen, "invalid run options");
		return -EINVAL;
	}
	cdr_run *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->o = *opts;
	r->nt = ntariffs;
	for (int k = 0; k < ntariffs; k++) {
		r->t[k] = tariffs[k];
		cdr__period_init(&r->per[k], tariffs[k], opts->period_year,
				 opts->period_month);
	}
	r->item_out.fd = r->rej_out.fd = -1;
	if (opts->format == CDR_FORMAT_MAP && !opts->map) {
		snprintf(err, errlen, "format map without a map");
		free(r);
		return -EINVAL;
	}
	/* One record is parsed once for both sides of a rerate, so both
	 * tariffs must rewrite numbers alike. */
	if (ntariffs == 2 && !cdr__norm_equal(tariffs[0]->norm, tariffs[1]->norm)) {
		snprintf(err, errlen,
			 "the two tariffs' normalize.csv differ; rerate "
			 "needs the same number normalisation on both sides");
		free(r);
		return -EINVAL;
	}
	if (opts->input_timezone) {
		int rc = cdr__tz_load(&r->in_tz, opts->input_timezone, err,
				      errlen);
		if (rc) {
			free(r);
			return rc;
		}
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv_ready, NULL);
	pthread_cond_init(&r->cv_free, NULL);
	*out = r;
	/* Without the caller's set, one of the run's own, as the paths of
	 * old: created at execute, committed by cdr_run_commit. */
	r->item_out.set = r->rej_out.set = opts->outputs;
	r->item_out.id = opts->outputs ? opts->itemize_output : 0;
	r->rej_out.id = opts->outputs ? opts->rejects_output : 0;
	if (opts->outputs || (!opts->itemize_path && !opts->rejects_path))
		return 0;
	int rc = cdr_outputs_create(&r->own);
	if (!rc && opts->itemize_path)
		rc = r->item_out.id = cdr_outputs_add(
			r->own, NULL, opts->itemize_path, err, errlen);
	if (rc >= 0 && opts->rejects_path)
		rc = r->rej_out.id = cdr_outputs_add(
			r->own, NULL, opts->rejects_path, err, errlen);
	r->item_out.set = r->rej_out.set = r->own;
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		cdr_run_free(r);
		*out = NULL;
		return rc;
	}
	return 0;
}

int cdr_run_add_input(cdr_run *r, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (!strcmp(path, "-"))
		return add_path(r, path);
	if (stat(path, &st)) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	/* A regular file, or a pipe, FIFO or device (`<(zcat x.gz)`): read
	 * as a stream and spooled for the duplicate check. */
	if (!S_ISDIR(st.st_mode))
		return add_path(r, path);
	DIR *d = opendir(path);
	if (!d) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d))) {
		size_t len = strlen(path) + strlen(de->d_name) + 2;
		char *full = malloc(len);
		if (!full) {
			rc = -ENOMEM;
			break;
		}
		snprintf(full, len, "%s/%s", path, de->d_name);
		if (stat(full, &st) || !S_ISREG(st.st_mode)) {
			free(full);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				free(full);
				rc = -ENOMEM;
				break;
			}
			names = nn;
		}
		names[n++] = full;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = add_path(r, names[i]);
		free(names[i]);
	}
	free(names);
	if (rc)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

/* Workers, buffers and queue: two buffers a worker plus two, so the
 * reader can fill one while every worker holds one and one waits. */
static int setup_workers(cdr_run *r, char *err, size_t errlen)
{
	r->nw = r->o.threads;
	r->w = calloc((size_t)r->nw, sizeof(*r->w));
	r->nbufs = (size_t)r->nw * 2 + 2;
	r->freebufs = calloc(r->nbufs, sizeof(char *));
	r->qcap = r->nbufs + 1;
	r->q = calloc(r->qcap, sizeof(*r->q));
	if (!r->w || !r->freebufs || !r->q)
		goto oom;
	for (size_t i = 0; i < r->nbufs; i++) {
		/* Room for the carried line in front of a full read. */
		r->freebufs[i] = malloc(CHUNK + CDR_LINE_MAX + 64);
		if (!r->freebufs[i])
			goto oom;
		r->nfree++;
	}
	for (int i = 0; i < r->nw; i++) {
		worker *w = &r->w[i];
		w->r = r;
		w->item.fd = r->item_out.fd;
		w->rej.fd = r->rej_out.fd;
		if ((w->item.fd >= 0 && !(w->item.b = malloc(OUTBUF))) ||
		    (w->rej.fd >= 0 && !(w->rej.b = malloc(OUTBUF))))
			goto oom;
		for (int k = 0; k < r->nt; k++)
			if (cdr__acc_init(&w->acc[k], r->t[k]))
				goto oom;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

/*
 * Open the itemize/rejects temporaries, start the workers and the reader,
 * wait for them, merge the workers' sums into worker 0's, resolve
 * duplicates and finish the temporaries (committed later by
 * cdr_run_commit). Any failure aborts the temporaries.
 */
int cdr_run_execute(cdr_run *r, char *err, size_t errlen)
{
	double t0 = now();
	int rc = 0;
	skipset item = {0}, rej = {0}, dup = {0};

	err[0] = '\0';
	if (r->executed) {
		snprintf(err, errlen, "a run executes once");
		return -EINVAL;
	}
	r->executed = 1;
	/* The run's own outputs get the checks the command gives its own:
	 * no output on an input, none on another. */
	for (uint32_t i = 0; r->own && !rc && i < r->nin; i++)
		rc = cdr_outputs_protect(r->own, "the input", r->in[i].path,
					 err, errlen);
	if (r->own && (rc || (rc = cdr_outputs_check(r->own, err, errlen)) ||
		       (rc = cdr_outputs_open(r->own, err, errlen))))
		goto fail;
	r->item_out.fd = cdr__outputs_fd(r->item_out.set, r->item_out.id);
	r->rej_out.fd = cdr__outputs_fd(r->rej_out.set, r->rej_out.id);
	if ((r->item_out.id && r->item_out.fd < 0) ||
	    (r->rej_out.id && r->rej_out.fd < 0)) {
		snprintf(err, errlen, "outputs are opened before the run");
		rc = -EBADF;
		goto fail;
	}
	if ((rc = setup_workers(r, err, errlen)))
		goto fail;

	cdr__backend *be = NULL;
	if (r->o.io == CDR_IO_URING) {
		int why = 0;
		be = cdr__backend_uring(&why);
		if (!be && r->o.log)
			fprintf(r->o.log,
				"cdrate: io_uring unavailable (%s); reading "
				"with read(2)\n",
				strerror(-why));
	}
	reader_arg ra = {r, be ? be : cdr__backend_read(), t0};
	pthread_t rt;
	int started = 0;
	for (; started < r->nw; started++)
		if (pthread_create(&r->w[started].th, NULL, worker_main,
				   &r->w[started]))
			break;
	if (started < r->nw || pthread_create(&rt, NULL, reader_main, &ra)) {
		set_err(r, -EAGAIN, "cannot start threads");
		pthread_mutex_lock(&r->mu);
		r->reading_done = 1;
		pthread_cond_broadcast(&r->cv_ready);
		pthread_mutex_unlock(&r->mu);
	} else {
		pthread_join(rt, NULL);
	}
	for (int i = 0; i < started; i++)
		pthread_join(r->w[i].th, NULL);
	r->pass_seconds = now() - t0;
	if (be)
		be->close(be);
	if (r->o.progress && r->o.log)
		fputs("\r\033[K", r->o.log);
	if (r->err) {
		rc = r->err;
		snprintf(err, errlen, "%s", r->errmsg);
		goto fail;
	}

	/* Merge into worker 0's sums: no third copy of the accounts. */
	for (int k = 0; k < r->nt; k++) {
		r->acc[k] = r->w[0].acc[k];
		memset(&r->w[0].acc[k], 0, sizeof(r->w[0].acc[k]));
		for (int i = 1; i < r->nw; i++)
			if ((rc = cdr__acc_merge(&r->acc[k], &r->w[i].acc[k])))
				goto oom;
	}
	for (int i = 0; i < r->nw; i++) {
		r->read += r->w[i].read;
		for (int k = 0; k < r->nt; k++)
			for (int c = 0; c < CDR_NREASON; c++)
				r->by_reason[k][c] += r->w[i].by_reason[k][c];
	}
	double t1 = now();
	rc = resolve_duplicates(r, &item, &rej, &dup);
	r->dup_seconds = now() - t1;
	if (rc) {
		if (r->err)
			snprintf(err, errlen, "%s", r->errmsg);
		else
			snprintf(err, errlen, "resolving duplicates: %s",
				 strerror(-rc));
		goto fail;
	}
	if ((rc = finish_output(&r->item_out, &item, NULL, err, errlen)) ||
	    (rc = finish_output(&r->rej_out, &rej, &dup, err, errlen)))
		goto fail;
	r->seconds = now() - t0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	/* The run's own outputs vanish now; a caller's set at its free. */
	cdr_outputs_free(r->own);
	r->own = NULL;
	r->item_out.fd = r->rej_out.fd = -1;
done:
	free(item.text);
	free(item.off);
	free(rej.text);
	free(rej.off);
	free(dup.text);
	free(dup.off);
	return rc;
}

int cdr_run_commit(cdr_run *r, char *err, size_t errlen)
{
	int rc = r->own ? cdr_outputs_commit(r->own, err, errlen) : 0;
	cdr_outputs_free(r->own);
	r->own = NULL;
	r->item_out.fd = r->rej_out.fd = -1;
	return rc;
}

void cdr_run_stats_get(const cdr_run *r, cdr_run_stats *st)
{
	memset(st, 0, sizeof(*st));
	int k = r->o.itemize_tariff;
	st->read = r->read;
	st->rated = r->by_reason[k][CDR_OK];
	for (int c = 1; c < CDR_NREASON && c < CDR_REASON_MAX; c++) {
		st->by_reason[c] = r->by_reason[k][c];
		st->rejected += r->by_reason[k][c];
	}
	st->unanswered = r->by_reason[k][CDR_R_UNANSWERED];
	for (uint32_t i = 0; i < r->nin; i++) {
		st->files[r->in[i].fmt.kind < CDR_FORMAT_N ? r->in[i].fmt.kind
							   : 0]++;
		st->unplaced += r->in[i].fmt.guessed;
	}
	st->seconds = r->seconds;
	st->pass_seconds = r->pass_seconds;
	st->dup_seconds = r->dup_seconds;
	for (uint32_t i = 0; i < r->nin; i++)
		st->files_by_comp[r->in[i].comp]++;
}

const char *cdr_run_input(const cdr_run *r, uint32_t i, cdr_format *fmt,
			  int *unplaced)
{
	if (i >= r->nin)
		return NULL;
	if (fmt)
		*fmt = (cdr_format)r->in[i].fmt.kind;
	if (unplaced)
		*unplaced = r->in[i].fmt.guessed;
	return r->in[i].path;
}

int cdr_run_totals(const cdr_run *r, int k, char **buf, size_t *len)
{
	if (k < 0 || k >= r->nt || !r->acc[k].acct)
		return -EINVAL;
	return cdr__totals_render(&r->acc[k], &r->per[k], buf, len);
}

/* Figures of side k, for cdr_run_delta's second thread. */
typedef struct fig_job {
	const cdr_run *r;
	int k;
	cdr__figures *rows;
	size_t n;
	int rc;
} fig_job;

static void *figures_side(void *arg)
{
	fig_job *j = arg;
	j->rc = cdr__totals_figures(&j->r->acc[j->k], &j->r->per[j->k],
				    &j->rows, &j->n);
	return NULL;
}

int cdr_run_delta(const cdr_run *r, int all, char **out, size_t *out_len,
		  FILE *report)
{
	fig_job j[2] = {{r, 0, NULL, 0, 0}, {r, 1, NULL, 0, 0}};
	if (r->nt != 2 || !r->acc[0].acct || !r->acc[1].acct)
		return -EINVAL;
	pthread_t th;
	int threaded = !pthread_create(&th, NULL, figures_side, &j[1]);
	figures_side(&j[0]);
	if (threaded)
		pthread_join(th, NULL);
	else
		figures_side(&j[1]);
	int rc = j[0].rc ? j[0].rc : j[1].rc;
	if (!rc) {
		/* The places diff would see in the two totals files: a side
		 * without lines shows none. */
		int dec = -1;
		for (int k = 0; k < 2; k++)
			if (j[k].n && r->t[k]->decimals > dec)
				dec = r->t[k]->decimals;
		char period[16];
		snprintf(period, sizeof(period), "%04d-%02d", r->per[0].year,
			 r->per[0].month);
		rc = cdr__delta_render(j[0].rows, j[0].n, j[1].rows, j[1].n,
				       period, dec < 0 ? 2 : dec, all, out,
				       out_len, report);
	}
	free(j[0].rows);
	free(j[1].rows);
	return rc;
}

void cdr_run_free(cdr_run *r)
{
	if (!r)
		return;
	for (int i = 0; r->w && i < r->nw; i++) {
		worker *w = &r->w[i];
		for (int k = 0; k < r->nt; k++)
			cdr__acc_fini(&w->acc[k]);
		for (unsigned p = 0; p < NPART; p++)
			dvec_free(&w->part[p]);
		free(w->lines.e);
		free(w->item.b);
		free(w->rej.b);
	}
	free(r->w);
	for (int k = 0; k < r->nt; k++)
		cdr__acc_fini(&r->acc[k]);
	queue_drain(r);
	for (size_t i = 0; i < r->nfree; i++)
		free(r->freebufs[i]);
	free(r->freebufs);
	free(r->q);
	for (uint32_t i = 0; i < r->nin; i++) {
		free(r->in[i].path);
		if (r->in[i].spool_owner)
			close(r->in[i].spool_fd);
	}
	free(r->in);
	cdr_outputs_free(r->own);
	cdr__tz_free(r->in_tz);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv_ready);
	pthread_cond_destroy(&r->cv_free);
	free(r);
}
