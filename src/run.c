/*
 * run.c - the rating run: the run object, chunk queue, workers, execute
 * and commit. The reader thread is reader.c, duplicate resolution dedup.c;
 * what the three share is run_int.h.
 *
 * Shape of a run:
 *
 *   reader thread ──chunks of whole lines──> N workers ──> per-worker
 *   (reader.c: one file at a time,           parse, rate,   accumulators,
 *    buffers from a fixed pool, a line       itemize and    duplicate-check
 *    that straddles two reads carried over)  rejects lines  entries
 *
 * then, on the calling thread: merge the accumulators, resolve duplicates
 * (dedup.c), sort the itemize/rejects records into their files
 * (outputs.c). Totals are rendered on
 * demand.
 *
 * Formats. The reader settles each input's format from its first non-empty
 * line before any chunk of it is queued; workers parse through that
 * format, and count line numbers only for inputs whose itemize ids may be
 * FILE:LINE; with --rejects each worker notes how many lines its chunks
 * hold, which it walks anyway, so every reject gets its line (outputs.c).
 *
 * Duplicates. A record's fate can depend on a line that comes much later
 * (the bytewise-smallest line of a duplicate key wins), so workers rate
 * every parsed record at once and note (hash of its key, where the line
 * is) - 16 bytes a record, the only per-record memory of a run (but for
 * the keys outputs.c sorts itemize rows by at the finish). The key is
 * the input format's (format.h): the id of a native line or a map with an
 * id, the whole line of a switch record. Afterwards dedup.c reads the
 * colliding keys back and takes every losing line back out of the sums;
 * outputs.c drops its itemize or rejects row by its location and writes a
 * `duplicate` reject instead. Streams, which cannot be read back by
 * offset, are spooled by the reader (reader.c); compressed inputs are
 * decoded again (dedup.c).
 *
 * Sections: reasons and errors - inputs - chunk queue - workers - the
 * public API.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "breakdown.h"
#include "civil.h"
#include "format.h"
#include "internal.h"
#include "run_int.h"
#include "source.h"
#include "sys.h"
#include "tariff_image.h" /* the number table's slots, prefetched */
#include "write.h"


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

/* Record the run's first failure; every thread then winds down. */
int cdr__run_err(cdr_run *r, int rc, const char *fmt, ...)
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

/* ---- chunk queue ----------------------------------------------------- */

/* Take a free buffer (reader side); NULL when the run failed. */
char *cdr__run_buf_get(cdr_run *r)
{
	pthread_mutex_lock(&r->mu);
	while (!r->nfree && !r->err)
		pthread_cond_wait(&r->cv_free, &r->mu);
	char *b = r->err ? NULL : r->freebufs[--r->nfree];
	pthread_mutex_unlock(&r->mu);
	return b;
}

void cdr__run_buf_put(cdr_run *r, char *b)
{
	pthread_mutex_lock(&r->mu);
	r->freebufs[r->nfree++] = b;
	pthread_cond_signal(&r->cv_free);
	pthread_mutex_unlock(&r->mu);
}

void cdr__run_chunk_push(cdr_run *r, const chunk *c)
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

/* ---- workers --------------------------------------------------------- */

static __attribute__((noinline)) int dvec_grow(dvec *v)
{
	dblock *b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	dvec_sync(v);
	b->next = v->head;
	b->n = 0;
	v->head = b;
	v->cur = b->e;
	v->end = b->e + (size_t)2 * DBLOCK;
	return 0;
}

/* Inlined into stage_parse, its one caller on the hot path. */
static inline __attribute__((always_inline)) int
dvec_push(dvec *v, uint64_t h, uint64_t loc)
{
	if (v->cur == v->end && dvec_grow(v))
		return -ENOMEM;
	v->cur[0] = h;
	v->cur[1] = loc;
	v->cur += 2;
	return 0;
}

static void dvec_free(dvec *v)
{
	for (dblock *b = v->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	v->head = NULL;
	v->cur = v->end = NULL;
	v->n = 0;
}

/* A rejects record for the line at loc, `rel` lines into its chunk; its
 * words (outputs.c) made here, on the cold path. rec and x: as far as
 * rating got (NULL for a line rejected while parsing). */
static int emit_reject(worker *w, const input *in, const char *line,
		       size_t n, int reason, uint64_t loc, uint64_t rel,
		       const cdr__rec *rec, const cdr__rated *x)
{
	if (w->rej.fd < 0)
		return 0;
	cdr_run *r = w->r;
	int k = r->o.itemize_tariff;
	char detail[CDR__DETAIL_MAX];
	size_t dn = cdr__reject_detail(detail, sizeof(detail), r->t[k],
				       &r->per[k], &in->fmt, line, n, reason,
				       rec, x);
	return cdr__rej_put(r, &w->rej, loc, rel, reason, detail, dn, line, n);
}

/* A record rejected before rating, under tariffs [k0, k1); the rejects
 * record describes the itemize tariff's side. */
static int reject_for(worker *w, int k0, int k1, const input *in,
		      const char *line, size_t n, int reason, uint64_t loc,
		      uint64_t rel)
{
	for (int k = k0; k < k1; k++) {
		w->by_reason[k][reason]++;
		if (w->acc[k].bd)
			cdr__bd_reject(w->acc[k].bd, (uint32_t)(loc >> LOC_OFF_BITS),
				       cdr__loc_order(w->r, loc), reason, line, n);
	}
	int it = w->r->o.itemize_tariff;
	return it >= k0 && it < k1 ? emit_reject(w, in, line, n, reason, loc,
						 rel, NULL, NULL)
				   : 0;
}

/* A record rejected before parsing counts the same under every tariff. */
static int reject_all(worker *w, const input *in, const char *line, size_t n,
		      int reason, uint64_t loc, uint64_t rel)
{
	return reject_for(w, 0, w->r->nt, in, line, n, reason, loc, rel);
}

/*
 * Records are rated in batches, stage by stage, so that the cache misses
 * of one record's table lookups overlap with the others' instead of being
 * paid one after another: the subscriber slots of the whole batch are
 * prefetched after parsing, the rows they point at after probing, and the
 * account sums after rating. Each stage is a plain loop over the batch,
 * kept out of line (noinline) so that profiles show each stage's cost:
 * callgrind measured that neutral (1,246 -> 1,249 instructions a record).
 */
#define BATCH 32

typedef struct batch {
	int n;
	uint32_t walked; /* lines parsed while splitting (bit i): rec[i] */
	uint32_t ok0;	 /* lines that parsed for tariff 0 (bit i) */
	uint32_t toolong; /* lines longer than CDR_LINE_MAX (bit i) */
	uint32_t live;	   /* lines parsed, status CDR_OK (bit i) */
	uint32_t rated[2]; /* lines rated CDR_OK under tariff k (bit i) */
	const input *in; /* a batch holds lines of one chunk */
	uint64_t line0;	 /* lineno of the chunk's first line */
	char *scratch;	 /* [BATCH][CDR__SCRATCH(CDR_LINE_MAX)]: rebuilt
			    quoted fields, touched only by switch formats */
	uint64_t lineno[BATCH];
	const char *line[BATCH];
	size_t len[BATCH];
	uint64_t loc[BATCH];
	int status[BATCH]; /* CDR_OK, or the reason it was rejected early */
	cdr__rec rec[BATCH];
	/* a record's values under each tariff side by side (CDR_SIDES) */
	int64_t utc[BATCH][CDR_SIDES];
	uint64_t subh[BATCH];
	cdr__subhit hit[BATCH][CDR_SIDES];
	cdr__rated x[BATCH][CDR_SIDES];
} batch;


int cdr__lvec_push(lvec *v, uint64_t loc, uint64_t line)
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

/*
 * The duplicate key's hash. dedup.c uses it only to partition and group
 * the entries (it compares the keys themselves, read back), so any good
 * mix will do: keys of 4 to 16 bytes (native ids) are read as two words,
 * overlapping, and folded by one 128-bit multiply, as XXH3 does for them
 * but without its call and length dispatch (29 instructions a record, 8
 * now); longer keys (a switch record's whole line) go to XXH3.
 */
static inline uint64_t key_hash(const char *s, size_t n)
{
	uint64_t a, b;
	if (n > 16)
		return XXH3_64bits(s, n);
	if (n >= 8) {
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
	} else if (n >= 4 && n < 8) {
		uint32_t x, y;
		memcpy(&x, s, 4);
		memcpy(&y, s + n - 4, 4);
		a = (uint64_t)x << 32 | y;
		b = a;
	} else {
		a = n ? (uint64_t)(unsigned char)s[0] << 16 |
				(uint64_t)(unsigned char)s[n / 2] << 8 |
				(unsigned char)s[n - 1]
		      : 0;
		b = a;
	}
	const unsigned __int128 m =
		(unsigned __int128)(a ^ 0x9E3779B97F4A7C15ULL) *
		(b ^ 0xC2B2AE3D27D4EB4FULL ^ n);
	return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* A walked line's start and length are in its record, and go to the
 * batch's line[] and len[] only where they are read: a reject, or the
 * general loop below. */
static inline void walked_line(batch *b, int i)
{
	if (b->walked >> i & 1) {
		b->line[i] = b->rec[i].line;
		b->len[i] = b->rec[i].line_len;
	}
}

/*
 * stage_parse for a whole batch of lines the walk parsed (the common
 * case of a rate: one tariff, no --input-timezone): each line is short
 * (the walk accepts none near CDR_LINE_MAX) and has no FILE:LINE id
 * (id_line 0), so only the start, the duplicate entry and the hash are
 * left to do. The same results as the general loop below.
 */
static inline __attribute__((always_inline)) int
parse_walked(worker *w, batch *b)
{
	const cdr__period *per = &w->r->per[0];
	const cdr__submap *sm = w->r->t[0]->sub_map;
	uint32_t live = (uint32_t)(((uint64_t)1 << b->n) - 1);
	w->read += (uint64_t)b->n;
	for (int i = 0; i < b->n; i++) {
		const cdr__rec *rec = &b->rec[i];
		if ((b->status[i] = cdr__period_start_utc(per, rec,
							  &b->utc[i][0]))) {
			live &= ~(1u << i);
			continue;
		}
		const uint64_t h = key_hash(rec->key, rec->key_len);
		if (dvec_push(&w->part[h >> (64 - NPART_BITS)], h, b->loc[i]))
			return -ENOMEM;
		cdr__submap_prefetch(sm, b->subh[i] =
						 cdr__sub_hash_packed(rec->subk));
	}
	b->live = live;
	return 0;
}

/* Parse, check the start under every tariff, note the duplicate key for
 * the duplicate check, prefetch the subscriber slots. */
static __attribute__((noinline)) int
stage_parse(worker *w, batch *b, int k0, int k1, int sided)
{
	cdr_run *r = w->r;
	if (k0 == 0 && k1 == 1 && !sided && !r->in_tz &&
	    b->walked == (uint32_t)(((uint64_t)1 << b->n) - 1))
		return parse_walked(w, b);
	/* A shard's rebuilt input: FILE:LINE ids take the original line
	 * numbers from its map (only when lines are counted: line0). */
	const input *lin = b->line0 && b->in->lmap ? b->in : NULL;
	for (int i = 0; i < b->n; i++) {
		cdr__rec *rec = &b->rec[i];
		uint32_t bit = 1u << i;
		walked_line(b, i);
		if (k0 == 0) { /* once a line, not once a side */
			w->read++;
			if (b->len[i] > CDR_LINE_MAX) {
				b->toolong |= bit;
				b->len[i] = CDR_LINE_MAX; /* rejects show its head */
				b->status[i] = CDR_R_LINE_TOO_LONG;
				continue;
			}
		} else if (b->toolong & bit) {
			b->status[i] = CDR_R_LINE_TOO_LONG;
			continue;
		}
		if (b->walked & bit) /* parsed while splitting */
			b->status[i] = cdr__rec_utc(r, k0, k1, rec, b->utc[i]);
		else
			b->status[i] = cdr__parse_rec(
				r, b->in, k0, k1, b->line[i], b->len[i], rec,
				b->scratch + (size_t)i * SCRATCH_REC,
				lin ? cdr__in_line(lin, b->lineno[i])
				    : b->lineno[i],
				b->utc[i]);
		if (b->status[i] != CDR_OK)
			continue;
		/* The duplicate key is the line's as read, the same for each
		 * side: one entry for a line that parses for any tariff. */
		if (k0 == 0 || !(b->ok0 & bit)) {
			uint64_t h = key_hash(rec->key, rec->key_len);
			if (dvec_push(&w->part[h >> (64 - NPART_BITS)], h,
				      b->loc[i]))
				return -ENOMEM;
			if (rec->id_line && w->item.fd >= 0 &&
			    cdr__lvec_push(&w->lines, b->loc[i], rec->id_line))
				return -ENOMEM;
		}
		if (sided && k0 == 0)
			b->ok0 |= bit;
		b->subh[i] = cdr__sub_hash_packed(rec->subk);
		for (int k = k0; k < k1; k++)
			cdr__sub_prefetch(r->t[k], b->subh[i]);
	}
	b->live = 0;
	for (int i = 0; i < b->n; i++)
		b->live |= (uint32_t)(b->status[i] == CDR_OK) << i;
	return 0;
}

/* Probe the subscriber slots, one tariff at a time (tariff.c, which also
 * prefetches the rows where a slot is not enough). */
static __attribute__((noinline)) void
stage_lookup(worker *w, batch *b, int k0, int k1)
{
	for (int k = k0; k < k1; k++)
		cdr__sub_find_batch(w->r->t[k], b->n, b->live, b->rec,
				    b->subh, &b->hit[0][k]);
}

/* Rate, one tariff at a time (rate.c, which also prefetches the account
 * sums the records will add to). */
static __attribute__((noinline)) void
stage_rate(worker *w, batch *b, int k0, int k1)
{
	for (int k = k0; k < k1; k++)
		b->rated[k] = cdr__rate_batch(
			w->r->t[k], &w->r->per[k], b->n, b->live, b->rec,
			&b->utc[0][k], &b->hit[0][k], &b->x[0][k],
			w->acc[k].acct);
}

/* A record rating rejected under tariff k: counted, kept in the
 * breakdown, written to the rejects when k is the itemize tariff. */
static __attribute__((noinline)) int rated_reject(worker *w, batch *b, int i,
						  int k)
{
	cdr_run *r = w->r;
	const cdr__rated *x = &b->x[i][k];
	w->by_reason[k][x->reason]++;
	if (w->acc[k].bd)
		cdr__bd_reject(w->acc[k].bd,
			       (uint32_t)(b->loc[i] >> LOC_OFF_BITS),
			       cdr__loc_order(r, b->loc[i]), x->reason,
			       b->line[i], b->len[i]);
	if (k == r->o.itemize_tariff &&
	    emit_reject(w, b->in, b->line[i], b->len[i], x->reason, b->loc[i],
			b->lineno[i] - b->line0, &b->rec[i], x))
		return -errno;
	return 0;
}

/*
 * Write itemize and rejects lines, count, add to the sums. The records
 * rated under each tariff are rating's mask of the batch, counted as
 * the lines less the rejects (by popcount for a rerate's two tariffs)
 * and added by one cdr__acc_add_batch (no call a record); rejects are out
 * of line, and whether itemize lines are written is read once a batch
 * (`item`: the tariff whose lines are, or -1).
 */
static __attribute__((noinline)) int
stage_add(worker *w, batch *b, int k0, int k1)
{
	cdr_run *r = w->r;
	const int item = w->item.fd >= 0 ? r->o.itemize_tariff : -1;
	uint32_t ok[2] = {0, 0};
	int rc;
	if (k0 < 0 || k1 > 2 || k0 >= k1) /* one tariff, or a rerate's two */
		return -EINVAL;
	if (k1 == k0 + 1) { /* one tariff: rate, or one side of a rerate */
		const int k = k0, it = item == k;
		/* rating's mask: only the rejects are visited, in line order */
		const uint32_t m = b->rated[k],
			       all = (uint32_t)(((uint64_t)1 << b->n) - 1);
		int nbad = 0; /* the rated count without a popcount call */
		for (uint32_t bad = all & ~m; bad; bad &= bad - 1, nbad++) {
			const int i = __builtin_ctz(bad);
			walked_line(b, i);
			if (b->status[i] != CDR_OK) {
				if (reject_for(w, k0, k1, b->in, b->line[i],
					       b->len[i], b->status[i],
					       b->loc[i],
					       b->lineno[i] - b->line0))
					return -errno;
			} else if ((rc = rated_reject(w, b, i, k))) {
				return rc;
			}
		}
		for (uint32_t im = it ? m : 0; im; im &= im - 1) {
			const int i = __builtin_ctz(im);
			if (cdr__item_put(&w->item, r->t[k], &b->rec[i],
					  &b->x[i][k], b->loc[i]))
				return -errno;
		}
		w->by_reason[k][CDR_OK] += (unsigned)(b->n - nbad);
		return m && cdr__acc_add_batch(&w->acc[k], &b->x[0][k], m)
			       ? -ENOMEM
			       : 0;
	}
	for (int i = 0; i < b->n; i++) {
		if (b->status[i] != CDR_OK) {
			if (reject_for(w, k0, k1, b->in, b->line[i], b->len[i],
				       b->status[i], b->loc[i],
				       b->lineno[i] - b->line0))
				return -errno;
			continue;
		}
		for (int k = k0; k < k1; k++) {
			const cdr__rated *x = &b->x[i][k];
			if (x->reason != CDR_OK) {
				if ((rc = rated_reject(w, b, i, k)))
					return rc;
				continue;
			}
			ok[k] |= 1u << i;
			if (k == item && cdr__item_put(&w->item, r->t[k],
						       &b->rec[i], x, b->loc[i]))
				return -errno;
		}
	}
	for (int k = k0; k < k1; k++) {
		w->by_reason[k][CDR_OK] += (unsigned)__builtin_popcount(ok[k]);
		if (ok[k] && cdr__acc_add_batch(&w->acc[k], &b->x[0][k], ok[k]))
			return -ENOMEM;
	}
	return 0;
}

/* The stages in order over one batch, for the tariffs [k0, k1) (`sided`:
 * one side of a rerate whose normalize.csv differ). */
static int run_stages(worker *w, batch *b, int k0, int k1, int sided)
{
	int rc = stage_parse(w, b, k0, k1, sided);
	if (!rc) {
		stage_lookup(w, b, k0, k1);
		stage_rate(w, b, k0, k1);
		rc = stage_add(w, b, k0, k1);
	}
	return rc;
}

/* One batch under every tariff; the batch is empty afterwards. When the
 * two tariffs of a rerate normalise numbers differently, a line is a
 * different record for each, so the stages run once a side. */
static int run_batch(worker *w, batch *b)
{
	const cdr_run *r = w->r;
	int rc;
	b->toolong = 0;
	if (!r->norm2) {
		rc = run_stages(w, b, 0, r->nt, 0);
	} else {
		b->ok0 = 0;
		if (!(rc = run_stages(w, b, 0, 1, 1)))
			rc = run_stages(w, b, 1, 2, 1);
	}
	b->n = 0;
	b->walked = 0;
	return rc;
}

/* Split a chunk into lines (dropping \r, empty lines and the header)
 * and rate them in batches; `loc` of each line is kept for the
 * duplicate check. A native line by position is parsed as it is split
 * (cdr__walk_line finds its end); any other line, or one the walk leaves,
 * is found by a newline search and parsed in stage_parse. */
static int process_chunk(worker *w, const chunk *c, batch *b)
{
	const char *p = c->buf, *end = c->buf + c->len;
	uint64_t base = (uint64_t)c->input << LOC_OFF_BITS;

	const input *in = &w->r->in[c->input];
	/* Lines per chunk, for the rejects' line numbers (outputs.c): a cut
	 * line is one line whatever its length. */
	if (w->rej.fd >= 0 && c->too_long &&
	    cdr__lvec_push(&w->chunks, base | c->off, 1))
		return -ENOMEM;
	if (c->too_long) {
		w->read++;
		return reject_all(w, in, c->buf, c->len, CDR_R_LINE_TOO_LONG,
				  base | c->off, 0);
	}
	if (c->first && end - p >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3; /* a UTF-8 byte order mark is not part of the data */
	int first = c->first;
	uint64_t lineno = c->line0;
	b->n = 0;
	b->walked = 0;
	b->in = in;
	b->line0 = c->line0;
	/* The sides of a rerate whose normalize.csv differ parse apart. */
	const int walk = in->fmt.kind == CDR_FORMAT_NATIVE && !in->fmt.bycol &&
			 !in->fmt.norm && !w->r->norm2;
	while (p < end) {
		/* Once the file's header (if any) is behind: as many lines
		 * at a time as the walk takes and the batch holds. (Other
		 * formats skip this on a branch the loop is versioned on.) */
		int k = 0;
		if (__builtin_expect(walk, 1) && !first)
			k = cdr__walk_lines(p, end, BATCH - b->n, &b->rec[b->n],
					    &p);
		if (k) {
			/* base | (off + (line - buf)), as one add: base holds
			 * the input above LOC_OFF_BITS, the offset below them
			 * (and in locals: the stores below may alias c) */
			const uint64_t lb =
				base + c->off - (uint64_t)(uintptr_t)c->buf;
			const int j1 = b->n + k;
			for (int j = b->n; j < j1; j++) {
				/* line[j], len[j]: in rec[j] (walked_line) */
				b->lineno[j] = lineno++;
				b->loc[j] = lb + (uint64_t)(uintptr_t)b->rec[j].line;
			}
			b->walked |= (uint32_t)(((uint64_t)1 << k) - 1) << b->n;
			b->n += k;
			if (b->n == BATCH) {
				int rc = run_batch(w, b);
				if (rc)
					return rc;
			}
			continue;
		}
		/* The line the walk left, or every line of other formats. */
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		const char *next = nl ? nl + 1 : end;
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
		p = next;
		lineno++;
	}
	if (w->rej.fd >= 0 &&
	    cdr__lvec_push(&w->chunks, base | c->off, lineno - c->line0))
		return -ENOMEM;
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
		cdr__run_err(r, -ENOMEM, "out of memory");
		return NULL;
	}
	b->scratch = scratch;
	int rc = 0;
	while (!rc && chunk_pop(r, &c)) {
		uint64_t before = w->read;
		rc = process_chunk(w, &c, b);
		atomic_fetch_add_explicit(&r->prog_records, w->read - before,
					  memory_order_relaxed);
		cdr__run_buf_put(r, c.buf);
	}
	for (unsigned p = 0; p < NPART; p++) /* the duplicate check reads them */
		dvec_sync(&w->part[p]);
	free(b);
	free(scratch);
	if (!rc)
		rc = cdr__ob_flush(&w->item);
	if (!rc)
		rc = cdr__ob_flush(&w->rej);
	/* A failed write names its output, mid-run or at the last flush. */
	const run_output *o = w->item.failed ? &r->item_out : &r->rej_out;
	if (rc && (w->item.failed || w->rej.failed))
		cdr__run_err(r, rc, "%s: cannot write: %s",
			cdr__outputs_label(o->set, o->id), strerror(-rc));
	else if (rc)
		cdr__run_err(r, rc, "rating: %s", strerror(-rc));
	return NULL;
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
	r->item_tmp = r->rej_tmp = -1;
	if (opts->format == CDR_FORMAT_MAP && !opts->map) {
		snprintf(err, errlen, "format map without a map");
		free(r);
		return -EINVAL;
	}
	/* A record is parsed once for both sides of a rerate, unless the
	 * tariffs rewrite numbers differently: then each side parses it with
	 * its own normalize.csv, as `rate` with that tariff would. */
	r->norm2 = ntariffs == 2 &&
		   !cdr__norm_equal(tariffs[0]->norm, tariffs[1]->norm);
	if (opts->input_timezone) {
		int rc = cdr__tz_load(&r->in_tz, opts->input_timezone, err,
				      errlen);
		if (rc) {
			free(r);
			return rc;
		}
	}
	r->all_known = 1;
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
	if (!strcmp(path, "-")) {
		r->all_known = 0;
		return add_path(r, path);
	}
	if (stat(path, &st)) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	/* A regular file, or a pipe, FIFO or device (`<(zcat x.gz)`): read
	 * as a stream and spooled for the duplicate check. */
	if (!S_ISDIR(st.st_mode)) {
		if (S_ISREG(st.st_mode))
			r->known_bytes += (uint64_t)st.st_size;
		else
			r->all_known = 0;
		return add_path(r, path);
	}
	char **names;
	uint64_t *sizes;
	size_t n;
	int rc = cdr__list_dir(path, &names, &sizes, &n);
	for (size_t i = 0; i < n; i++) {
		r->known_bytes += sizes[i];
		if (!rc)
			rc = add_path(r, names[i]);
		free(names[i]);
	}
	free(names);
	free(sizes);
	if (rc)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

/* ---- line maps (cdr_run_add_input_as) ---------------------------------- */

static uint64_t lm_get64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* Map the line map at path for input in: 0, -errno, -EINVAL when it is
 * not one (its trailer and index do not fit its length). */
static int lmap_open(input *in, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return e;
	}
	size_t len = (size_t)st.st_size;
	void *m = len >= 8 ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)
			   : NULL;
	int e = m == MAP_FAILED ? -errno : 0;
	close(fd);
	if (e)
		return e;
	if (!m)
		return -EINVAL;
	const unsigned char *b = m;
	uint64_t n = lm_get64(b + len - 8), nb = n / CDR_LMAP_BLOCK + 1;
	if (n > len * (uint64_t)CDR_LMAP_BLOCK || 16 * nb > len - 8) {
		munmap(m, len);
		return -EINVAL;
	}
	in->lmap = m;
	in->lmap_len = len;
	in->lmap_n = n;
	in->lmap_idx = b + len - 8 - 16 * nb;
	return 0;
}

/* Line l of the rebuilt file: its block's first line, plus the deltas up
 * to it (at most CDR_LMAP_BLOCK - 1 of them). A line past the map, or a
 * damaged block, keeps its own number. */
uint64_t cdr__lmap_line(const input *in, uint64_t l)
{
	if (!l || l > in->lmap_n)
		return l;
	uint64_t i = l - 1, blk = i / CDR_LMAP_BLOCK;
	const unsigned char *x = in->lmap_idx + 16 * blk;
	uint64_t v = lm_get64(x), off = lm_get64(x + 8);
	const unsigned char *p = in->lmap + off, *e = in->lmap_idx;
	if (off > (uint64_t)(e - in->lmap))
		return l;
	for (uint64_t k = i % CDR_LMAP_BLOCK; k > 0; k--) {
		uint64_t d = 0;
		for (unsigned sh = 0;; sh += 7) {
			if (p == e || sh > 63)
				return l;
			d |= (uint64_t)(*p & 0x7f) << sh;
			if (!(*p++ & 0x80))
				break;
		}
		v += d;
	}
	return v;
}

int cdr_run_add_input_as(cdr_run *r, const char *path, const char *name,
			 const char *head, size_t head_n,
			 const char *line_map, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st)) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	r->known_bytes += (uint64_t)st.st_size;
	int rc = add_path(r, name);
	input *in = rc ? NULL : &r->in[r->nin - 1];
	if (in && !(in->open_path = strdup(path)))
		rc = -ENOMEM;
	if (in && !rc && head) {
		in->head = malloc(head_n + 1);
		if (!in->head)
			rc = -ENOMEM;
		else {
			memcpy(in->head, head, head_n);
			in->head[head_n] = '\0';
			in->head_n = head_n;
		}
	}
	if (in && !rc && line_map && (rc = lmap_open(in, line_map)))
		path = line_map;
	if (rc)
		snprintf(err, errlen, "%s: %s", path,
			 rc == -EINVAL ? "not a line map" : strerror(-rc));
	return rc;
}

/* Inputs by path, bytewise (equal paths by place): the rejects' order. */
static int cmp_rank(const void *a, const void *b, void *run)
{
	const cdr_run *r = run;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(r->in[x].path, r->in[y].path);
	return c ? c : (x > y) - (x < y);
}

/* The temporaries workers write itemize and rejects records to, and the
 * inputs' ranks the rejects sort by. */
static int open_tmps(cdr_run *r, char *err, size_t errlen)
{
	if (r->item_out.fd >= 0 && (r->item_tmp = cdr__out_tmp()) < 0) {
		int rc = r->item_tmp;
		r->item_tmp = -1;
		snprintf(err, errlen, "itemize: cannot make a temporary: %s",
			 strerror(-rc));
		return rc;
	}
	if (r->rej_out.fd >= 0 && (r->rej_tmp = cdr__out_tmp()) < 0) {
		int rc = r->rej_tmp;
		r->rej_tmp = -1;
		snprintf(err, errlen, "rejects: cannot make a temporary: %s",
			 strerror(-rc));
		return rc;
	}
	uint32_t *order = malloc((r->nin ? r->nin : 1) * sizeof(*order));
	r->rank = malloc((r->nin ? r->nin : 1) * sizeof(*r->rank));
	if (!order || !r->rank) {
		free(order);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < r->nin; i++)
		order[i] = i;
	qsort_r(order, r->nin, sizeof(*order), cmp_rank, r);
	for (uint32_t i = 0; i < r->nin; i++)
		r->rank[order[i]] = i;
	free(order);
	return 0;
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
		w->item.fd = r->item_tmp;
		w->rej.fd = r->rej_tmp;
		if ((w->item.fd >= 0 && !(w->item.b = malloc(OUTBUF))) ||
		    (w->rej.fd >= 0 && !(w->rej.b = malloc(OUTBUF))))
			goto oom;
		for (int k = 0; k < r->nt; k++) {
			if (cdr__acc_init(&w->acc[k], r->t[k]))
				goto oom;
			if (r->o.breakdown &&
			    !(w->acc[k].bd = cdr__bd_new(r->t[k], &r->per[k],
							 r->nin)))
				goto oom;
			/* a rerate's report compares every account */
			if (w->acc[k].bd)
				w->acc[k].bd->keep_figs = r->nt > 1;
		}
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
	double t0 = cdr__now();
	int rc = 0;
	dupset dup = {0};

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
	if ((rc = open_tmps(r, err, errlen)) ||
	    (rc = setup_workers(r, err, errlen)))
		goto fail;
	atomic_store_explicit(&r->prog_stage, CDR_STAGE_READING,
			      memory_order_relaxed);

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
	if (started < r->nw || pthread_create(&rt, NULL, cdr__reader_main, &ra)) {
		cdr__run_err(r, -EAGAIN, "cannot start threads");
		pthread_mutex_lock(&r->mu);
		r->reading_done = 1;
		pthread_cond_broadcast(&r->cv_ready);
		pthread_mutex_unlock(&r->mu);
	} else {
		pthread_join(rt, NULL);
	}
	for (int i = 0; i < started; i++)
		pthread_join(r->w[i].th, NULL);
	r->pass_seconds = cdr__now() - t0;
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
	double tm = cdr__now();
	for (int k = 0; k < r->nt; k++) {
		r->acc[k] = r->w[0].acc[k];
		memset(&r->w[0].acc[k], 0, sizeof(r->w[0].acc[k]));
		for (int i = 1; i < r->nw; i++) {
			if ((rc = cdr__acc_merge(&r->acc[k], &r->w[i].acc[k])))
				goto oom;
			cdr__acc_fini(&r->w[i].acc[k]); /* its sums are merged */
		}
		r->acc[k].threads = r->nw; /* monthly charges and totals too */
	}
	for (int i = 0; i < r->nw; i++) {
		r->read += r->w[i].read;
		for (int k = 0; k < r->nt; k++)
			for (int c = 0; c < CDR_NREASON; c++)
				r->by_reason[k][c] += r->w[i].by_reason[k][c];
	}
	double t1 = cdr__now();
	r->sums_seconds = t1 - tm;
	atomic_store_explicit(&r->prog_stage, CDR_STAGE_DUPLICATES,
			      memory_order_relaxed);
	rc = cdr__resolve_duplicates(r, &dup);
	/* The duplicate check's entries (16 bytes a record) are done with:
	 * give them back before the monthly charges need memory. */
	for (int i = 0; i < r->nw; i++)
		for (unsigned p = 0; p < NPART; p++)
			dvec_free(&r->w[i].part[p]);
	r->dup_seconds = cdr__now() - t1;
	/* The allowance logs sorted now, their chunks freed as they are
	 * read: the monthly charges then need no second copy. */
	double ts = cdr__now();
	for (int k = 0; !rc && k < r->nt; k++)
		rc = cdr__acc_seal(&r->acc[k]);
	r->sums_seconds += cdr__now() - ts;
	if (rc) {
		if (r->err)
			snprintf(err, errlen, "%s", r->errmsg);
		else
			snprintf(err, errlen, "resolving duplicates: %s",
				 strerror(-rc));
		goto fail;
	}
	if ((r->item_out.fd >= 0 &&
	     (rc = cdr__finish_itemize(r, &dup, err, errlen))) ||
	    (r->rej_out.fd >= 0 &&
	     (rc = cdr__finish_rejects(r, &dup, err, errlen))))
		goto fail;
	r->seconds = cdr__now() - t0;
	atomic_store_explicit(&r->prog_stage, CDR_STAGE_DONE,
			      memory_order_relaxed);
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	/* The run's own outputs vanish now; a caller's set at its free. */
	cdr_outputs_free(r->own);
	r->own = NULL;
	r->item_out.fd = r->rej_out.fd = -1;
done:
	free(dup.loc);
	free(dup.win);
	free(dup.lline);
	free(dup.text.text);
	free(dup.text.off);
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
	st->sums_seconds = r->sums_seconds;
	for (uint32_t i = 0; i < r->nin; i++)
		st->files_by_comp[r->in[i].comp]++;
}

void cdr_run_progress_get(const cdr_run *r, cdr_run_progress *p)
{
	p->stage = (cdr_run_stage)atomic_load_explicit(&r->prog_stage,
						       memory_order_relaxed);
	p->bytes_done = atomic_load_explicit(&r->prog_raw, memory_order_relaxed);
	p->records =
		atomic_load_explicit(&r->prog_records, memory_order_relaxed);
	p->bytes_known = r->known_bytes;
	p->all_known = r->all_known;
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

/* The rows of the breakdown: the new side first (tariff nt - 1). */
static int bd_rows(const cdr_run *r, cdr__bdrows *rows)
{
	if (!r->executed || !r->acc[0].acct || !r->acc[0].bd)
		return -EINVAL;
	cdr__bdside side[2];
	for (int s = 0; s < r->nt; s++) {
		int k = r->nt - 1 - s;
		if (!r->acc[k].bd)
			return -EINVAL;
		side[s] = (cdr__bdside){&r->acc[k], &r->per[k], r->by_reason[k]};
	}
	const char **paths = malloc((r->nin ? r->nin : 1) * sizeof(*paths));
	if (!paths)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nin; i++)
		paths[i] = r->in[i].path;
	int rc = cdr__bd_rows(side, r->nt, paths, r->nin, rows);
	free(paths);
	return rc;
}

int cdr_run_breakdown(const cdr_run *r, char **csv, size_t *csv_len,
		      const char *const *summary, int nsummary, char **html,
		      size_t *html_len)
{
	cdr__bdrows rows;
	int rc = bd_rows(r, &rows);
	if (rc)
		return rc;
	return cdr__bd_render(&rows, csv, csv_len, summary, nsummary, html,
			      html_len);
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
		free(w->chunks.e);
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
		free(r->in[i].open_path);
		if (r->in[i].lmap)
			munmap(r->in[i].lmap, r->in[i].lmap_len);
		free(r->in[i].head);
		if (r->in[i].spool_owner)
			close(r->in[i].spool_fd);
	}
	free(r->in);
	free(r->rank);
	if (r->item_tmp >= 0)
		close(r->item_tmp);
	if (r->rej_tmp >= 0)
		close(r->rej_tmp);
	cdr_outputs_free(r->own);
	cdr__tz_free(r->in_tz);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv_ready);
	pthread_cond_destroy(&r->cv_free);
	free(r);
}
