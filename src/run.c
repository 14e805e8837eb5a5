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
 * (dedup.c), finish the itemize/rejects files. Totals are rendered on
 * demand.
 *
 * Formats. The reader settles each input's format from its first non-empty
 * line before any chunk of it is queued; workers parse through that
 * format, and count line numbers only for inputs whose itemize ids may be
 * FILE:LINE.
 *
 * Duplicates. A record's fate can depend on a line that comes much later
 * (the bytewise-smallest line of a duplicate key wins), so workers rate
 * every parsed record at once and note (hash of its key, where the line
 * is) - 16 bytes a record, the only per-record memory of a run. The key is
 * the input format's (format.h): the id of a native line or a map with an
 * id, the whole line of a switch record. Afterwards dedup.c reads the
 * colliding keys back and takes every losing line back out of the sums;
 * here its itemize or rejects line is removed from the output and a
 * `duplicate` reject written instead. Inputs that cannot be read back by
 * offset are spooled by the reader (reader.c).
 *
 * Sections: reasons and errors - inputs - chunk queue - output lines -
 * workers - finishing outputs - the public API.
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
#include "run_int.h"
#include "source.h"
#include "sys.h"
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

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
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

size_t cdr__reject_fmt(char *b, const char *line, size_t n, int reason)
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
size_t cdr__item_fmt(char *b, const cdr_tariff *t, const cdr__rec *rec,
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
	w->rej.n += cdr__reject_fmt(w->rej.b + w->rej.n, line, n, reason);
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
		b->status[i] = cdr__parse_rec(r, b->in, b->line[i], b->len[i], rec,
					 b->scratch + (size_t)i * SCRATCH_REC,
					 b->lineno[i], b->utc[i]);
		if (b->status[i] != CDR_OK)
			continue;
		uint64_t h = XXH3_64bits(rec->key, rec->key_len);
		if (dvec_push(&w->part[h >> (64 - NPART_BITS)], h, b->loc[i]))
			return -ENOMEM;
		if (rec->id_line && w->item.fd >= 0 &&
		    cdr__lvec_push(&w->lines, b->loc[i], rec->id_line))
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
				w->item.n += cdr__item_fmt(w->item.b + w->item.n,
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
		cdr__run_err(r, -ENOMEM, "out of memory");
		return NULL;
	}
	b->scratch = scratch;
	int rc = 0;
	while (!rc && chunk_pop(r, &c)) {
		rc = process_chunk(w, &c, b);
		cdr__run_buf_put(r, c.buf);
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
		cdr__run_err(r, rc, "%s: cannot write: %s",
			cdr__outputs_label(o->set, o->id), strerror(-rc));
	else if (rc)
		cdr__run_err(r, rc, "rating: %s", strerror(-rc));
	return NULL;
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
	double t0 = cdr__now();
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
	rc = cdr__resolve_duplicates(r, &item, &rej, &dup);
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
	if ((rc = finish_output(&r->item_out, &item, NULL, err, errlen)) ||
	    (rc = finish_output(&r->rej_out, &rej, &dup, err, errlen)))
		goto fail;
	r->seconds = cdr__now() - t0;
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
	st->sums_seconds = r->sums_seconds;
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
