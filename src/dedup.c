/*
 * dedup.c - duplicate resolution, after the pass.
 *
 * During the pass workers note (hash of the duplicate key, location) for
 * every parsed record, in per-worker partitions (run_int.h's dvec). Here
 * the entries whose hashes collide are found (find_candidates), their
 * lines read back from their files or the spool (rb_*, in file order, one
 * input open at a time, each checked to be still the file that was read),
 * compared exactly by key then whole line (cmp_back), and every line that
 * loses is rated again and taken back out of the sums, and noted with
 * the line it duplicates, so outputs.c drops its itemize or rejects line
 * and writes a `duplicate` reject instead (undo_duplicate). Rating is a pure function, so the take-back
 * is exact; cost is proportional to the colliding entries.
 *
 * Sections: candidates - reading lines back - skip sets - taking back -
 * the rounds.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "internal.h"
#include "run_int.h"
#include "source.h"
#include "sys.h"

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
		return cdr__run_err(r, -errno, "%s: cannot reopen: %s", in->path,
			       strerror(errno));
	if (fstat(rb->fd, &st))
		return cdr__run_err(r, -errno, "%s: %s", in->path, strerror(errno));
	if (st.st_dev != in->dev || st.st_ino != in->ino ||
	    st.st_size != in->size || st.st_mtim.tv_sec != in->mtime.tv_sec ||
	    st.st_mtim.tv_nsec != in->mtime.tv_nsec)
		return cdr__run_err(r, -ESTALE, "%s: changed while being rated",
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
			return cdr__run_err(r, (int)n, "%s: read error: %s",
				       r->in[idx].path, strerror((int)-n));
		rb->blk_off = off;
		rb->blk_n = (size_t)n;
		p = rb->blk;
		nl = memchr(p, '\n', (size_t)n);
		/* A line that parsed was at most CDR_LINE_MAX bytes. */
		if (!nl && (size_t)n == RB_BLOCK)
			return cdr__run_err(r, -ESTALE,
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

static int dup_add(dupset *d, uint64_t loc, uint64_t win, const char *line,
		   size_t n)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		uint64_t *l = realloc(d->loc, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		d->loc = l;
		uint64_t *w = realloc(d->win, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		d->win = w;
		d->cap = cap;
	}
	d->loc[d->n] = loc;
	d->win[d->n++] = win;
	return skip_add(&d->text, line, n);
}

/* Take a losing duplicate (at loc; the line kept is at win) back out of
 * every tariff's sums; `scratch` holds SCRATCH_REC for its fields. Its
 * itemize or rejects line goes by its location, and its `duplicate`
 * reject is written by outputs.c from `dup`. */
static int undo_duplicate(cdr_run *r, const char *line, size_t n,
			  uint64_t loc, uint64_t win, const lvec *lines,
			  char *scratch, dupset *dup)
{
	const input *in = &r->in[loc >> LOC_OFF_BITS];
	cdr__rec rec;
	int64_t utc[2];
	int rc = 0;
	/* It parsed when it was first read; the same bytes parse again. */
	if (cdr__parse_rec(r, in, line, n, &rec, scratch, line_of(lines, loc),
		      utc) != CDR_OK)
		return cdr__run_err(r, -ESTALE, "%s: changed while being rated",
			       in->path);
	for (int k = 0; k < r->nt && !rc; k++) {
		cdr__rated x;
		cdr__rate_record(r->t[k], &r->per[k], &rec, utc[k], &x);
		r->by_reason[k][x.reason]--;
		r->by_reason[k][CDR_R_DUPLICATE]++;
		if (x.reason == CDR_OK)
			rc = cdr__acc_add(&r->acc[k], &x, -1);
	}
	if (!rc && (r->item_out.fd >= 0 || r->rej_out.fd >= 0))
		rc = dup_add(dup, loc, win, line, n);
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
int cdr__resolve_duplicates(cdr_run *r, dupset *dup)
{
	cvec cv = {0};
	rback rb = {UINT32_MAX, -1, NULL, 0, 0, NULL, 0, 0, NULL};
	back *bs = NULL;
	char *scratch = NULL;
	lvec lines = {0};
	int rc = find_candidates(r, &cv);
	if (!rc && cv.n) {
		qsort(cv.c, cv.n, sizeof(*cv.c), cmp_cand);
		rb.blk = malloc(RB_BLOCK);
		rb.scratch = malloc(CDR__SCRATCH(RB_BLOCK));
		scratch = malloc(SCRATCH_REC);
		bs = malloc((cv.n < ROUND_CANDS ? cv.n : ROUND_CANDS) *
			    sizeof(*bs));
		if (!rb.blk || !rb.scratch || !scratch || !bs)
			rc = -ENOMEM;
		/* The workers' line numbers, as one sorted table. */
		for (int i = 0; !rc && i < r->nw; i++)
			for (size_t k = 0; !rc && k < r->w[i].lines.n; k++)
				rc = cdr__lvec_push(&lines, r->w[i].lines.e[2 * k],
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
		/* keep: the first (smallest) line of the key's group */
		for (size_t k = 1, keep = 0; !rc && k < m; k++) {
			const back *x = &bs[k], *y = &bs[k - 1];
			if (x->h == y->h && x->key_n == y->key_n &&
			    !memcmp(rb.arena + x->key_at, rb.arena + y->key_at,
				    x->key_n))
				rc = undo_duplicate(r, rb.arena + x->at, x->n,
						    x->loc, bs[keep].loc, &lines,
						    scratch, dup);
			else
				keep = k;
		}
		i = j;
	}
	rb_close(r, &rb);
	free(rb.blk);
	free(rb.arena);
	free(rb.scratch);
	free(bs);
	free(scratch);
	free(lines.e);
	free(cv.c);
	return rc;
}
