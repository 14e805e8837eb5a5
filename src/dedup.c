/*
 * dedup.c - duplicate resolution, after the pass.
 *
 * During the pass workers note (hash of the duplicate key, location) for
 * every parsed record, in per-worker partitions (run_int.h's dvec). Here
 * the entries whose hashes collide are found (find_candidates), their
 * lines read back from their files or the spool (rb_*, in file order, one
 * input open at a time, each checked to be still the file that was read;
 * a compressed input's lines were first decoded again into a file of
 * candidate lines, cx_*),
 * compared exactly by key then whole line (cmp_back), and every line that
 * loses is rated again and taken back out of the sums, and noted with
 * the line it duplicates, so outputs.c drops its itemize or rejects line
 * and writes a `duplicate` reject instead (undo_duplicate). Rating is a pure function, so the take-back
 * is exact; cost is proportional to the colliding entries.
 *
 * Sections: candidates - compressed inputs decoded again - reading lines
 * back - skip sets - taking back - the rounds.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "internal.h"
#include "breakdown.h"
#include "run_int.h"
#include "source.h"
#include "sys.h"
#include "write.h"

/* ---- duplicates ------------------------------------------------------ */

typedef struct cand {
	uint64_t h, loc;
} cand;

#define RB_BLOCK (CDR_LINE_MAX + 2) /* the longest line and its \r\n */

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
 * this costs about one pass over the 16-byte entries. Partitions [p0, p1)
 * into out.
 */
typedef struct cand_job {
	const cdr_run *r;
	size_t p0, p1;
	cvec out;
	int rc;
} cand_job;

static void *find_candidates_range(void *arg)
{
	cand_job *j = arg;
	const cdr_run *r = j->r;
	uint64_t *flat = NULL;
	uint32_t *slot = NULL;
	uint8_t *seen = NULL;
	size_t flat_cap = 0, slot_cap = 0;
	int rc = 0;

	for (size_t p = j->p0; p < j->p1 && !rc; p++) {
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
		for (size_t q = 0; q < n && !rc; q++) {
			uint64_t h = flat[2 * q];
			size_t s = (size_t)h & (cap - 1);
			while (slot[s] && flat[2 * (size_t)(slot[s] - 1)] != h)
				s = (s + 1) & (cap - 1);
			if (!slot[s]) {
				slot[s] = (uint32_t)(q + 1);
				continue;
			}
			size_t f = slot[s] - 1;
			if (!seen[f]) {
				seen[f] = 1;
				rc = cvec_push(&j->out, h, flat[2 * f + 1]);
			}
			if (!rc)
				rc = cvec_push(&j->out, h, flat[2 * q + 1]);
		}
	}
	free(flat);
	free(slot);
	free(seen);
	j->rc = rc;
	return NULL;
}

/* Below this many entries one thread finds the candidates faster than
 * two start. */
#define CAND_SPLIT_MIN 65536

/* The candidates of every partition: on two threads (each half of the
 * partitions) when the pass had two workers. They are sorted afterwards
 * by (hash, location), a total order, so the halves' order is no matter. */
static int find_candidates(cdr_run *r, cvec *out)
{
	size_t total = 0;
	for (int i = 0; i < r->nw; i++)
		for (size_t p = 0; p < NPART; p++)
			total += r->w[i].part[p].n;
	cand_job j[2] = {{r, 0, NPART, {0}, 0}, {r, NPART, NPART, {0}, 0}};
	pthread_t th;
	int started = 0;
	if (r->nw > 1 && total >= CAND_SPLIT_MIN) {
		j[0].p1 = j[1].p0 = NPART / 2;
		started = !pthread_create(&th, NULL, find_candidates_range, &j[1]);
	}
	find_candidates_range(&j[0]);
	if (started)
		pthread_join(th, NULL);
	else if (j[1].p0 < j[1].p1)
		find_candidates_range(&j[1]);
	int rc = j[0].rc ? j[0].rc : j[1].rc;
	*out = j[0].out;
	if (!rc && j[1].out.n) {
		for (size_t k = 0; !rc && k < j[1].out.n; k++)
			rc = cvec_push(out, j[1].out.c[k].h, j[1].out.c[k].loc);
	}
	free(j[1].out.c);
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
 * Compressed inputs decoded again. Decoded bytes have no offsets in the
 * file, and copying them all to a spool during the pass cost more than
 * decoding them (bench/README.md, "Compressed inputs"). So before the
 * rounds, every compressed input that holds candidates is decoded once
 * more, from its path (checked to be the file that was read) or, for a
 * stream, from its compressed bytes in the spool, and the candidates'
 * lines are copied, in location order, to one unlinked temporary: the
 * rounds then read them from there by offset, however many rounds there
 * are. Cost: one decode of each such input up to its last candidate,
 * after the pass; inputs without candidates cost nothing.
 */
typedef struct cxline {
	uint64_t loc, at; /* a candidate's location; its line in the file */
	uint64_t line;	  /* its line number in the input, counted while
			     decoding (the rejects' `duplicate of` detail) */
} cxline;

typedef struct cextract {
	int fd;		/* the candidate lines, or -1 */
	uint64_t end;	/* bytes written */
	cxline *m;	/* sorted by loc */
	size_t n;
} cextract;

/* Decoded bytes looked at a time: large enough that ISA-L and libzstd
 * decode at full speed, and to hold any line after the one before it. */
#define CX_WIN ((size_t)1 << 20)

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Open input idx by path for reading back: it must still be the file
 * that was read (device, inode, size, mtime), else a collector's rewrite
 * would take out of the sums lines never added. */
static int reopen(cdr_run *r, uint32_t idx, int *fd)
{
	const input *in = &r->in[idx];
	struct stat st;
	*fd = cdr__sys_table.open(cdr__in_open_path(in), O_RDONLY | O_CLOEXEC, 0);
	if (*fd < 0)
		return cdr__run_err(r, -errno, "%s: cannot reopen: %s", in->path,
			       strerror(errno));
	if (fstat(*fd, &st))
		return cdr__run_err(r, -errno, "%s: %s", in->path, strerror(errno));
	if (st.st_dev != in->dev || st.st_ino != in->ino ||
	    st.st_size != in->size || st.st_mtim.tv_sec != in->mtime.tv_sec ||
	    st.st_mtim.tv_nsec != in->mtime.tv_nsec)
		return cdr__run_err(r, -ESTALE, "%s: changed while being rated",
			       in->path);
	return 0;
}

static const char *cx_name(const input *in)
{
	return strcmp(in->path, "-") ? in->path : "standard input";
}

/* Newlines in n bytes. */
static uint64_t count_nl(const char *p, size_t n)
{
	uint64_t c = 0;
	for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
		c++;
	return c;
}

/* Decode input idx again and copy the lines at m[0, n) (its candidates,
 * by offset) to the extract, noting each one's line number; win holds
 * CX_WIN bytes. */
static int cx_input(cdr_run *r, cextract *cx, uint32_t idx, cxline *m,
		    size_t n, char *win)
{
	const input *in = &r->in[idx];
	int fd = in->spool_fd, rc = 0;
	if (fd < 0 && (rc = reopen(r, idx, &fd))) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	cdr__source src;
	rc = in->spool_fd >= 0
		     ? cdr__source_open_region(&src, fd, in->spool_at,
					       (uint64_t)in->size)
		     : cdr__source_open_region(&src, fd, 0, UINT64_MAX);
	if (!rc && src.comp != in->comp)
		rc = -ESTALE; /* not the bytes that were read */
	uint64_t w_off = 0; /* win holds decoded bytes [w_off, w_off + w_n) */
	size_t w_n = 0;
	uint64_t counted = 0, line = 1; /* newlines before `counted`, + 1 */
	int eof = 0;
	for (size_t i = 0; !rc && i < n; i++) {
		uint64_t o = m[i].loc & ((1ULL << LOC_OFF_BITS) - 1);
		/* Skip to the window that holds o; keep from o on when its
		 * line may run past the window's end. */
		while (!rc && !eof) {
			size_t keep = 0;
			if (o < w_off + w_n) {
				const char *p = win + (o - w_off);
				size_t avail = (size_t)(w_off + w_n - o);
				if (avail >= RB_BLOCK || memchr(p, '\n', avail))
					break;
				keep = avail;
				line += count_nl(win + (counted - w_off),
						 (size_t)(o - counted));
				counted = o;
				memmove(win, p, keep);
				w_off = o;
			} else {
				line += count_nl(win + (counted - w_off),
						 (size_t)(w_off + w_n - counted));
				w_off += w_n;
				counted = w_off;
			}
			ssize_t got = cdr__source_fill(&src, win + keep,
						       CX_WIN - keep);
			if (got < 0)
				rc = (int)got;
			else
				eof = got == 0;
			w_n = keep + (got > 0 ? (size_t)got : 0);
		}
		if (rc)
			break;
		if (o >= w_off + w_n) { /* the input ends before the line */
			rc = -ESTALE;
			break;
		}
		const char *p = win + (o - w_off);
		size_t avail = (size_t)(w_off + w_n - o);
		const char *nl = memchr(p, '\n', avail < RB_BLOCK ? avail : RB_BLOCK);
		/* A line without its \n (the input's last, or one cut as too
		 * long, which rb_line refuses) is ended here, so reading it
		 * back never runs into the next candidate's line. */
		size_t len = nl ? (size_t)(nl - p) + 1
				: (avail < RB_BLOCK ? avail : RB_BLOCK);
		line += count_nl(win + (counted - w_off), (size_t)(o - counted));
		counted = o;
		m[i].line = line;
		m[i].at = cx->end;
		if (cdr__pwrite_all(cx->fd, p, len, (off_t)cx->end) ||
		    (!nl && cdr__pwrite_all(cx->fd, "\n", 1,
					    (off_t)(cx->end + len)))) {
			int e = errno ? errno : EIO;
			cdr__source_close(&src);
			if (in->spool_fd < 0)
				close(fd);
			return cdr__run_err(r, -e,
				       "%s: decoding again for duplicates: %s",
				       cx_name(in), strerror(e));
		}
		cx->end += len + !nl;
	}
	if (rc == -ESTALE)
		rc = cdr__run_err(r, rc, "%s: changed while being rated",
			     cx_name(in));
	else if (rc)
		rc = src.why[0] ? cdr__run_err(r, rc, "%s: %s", cx_name(in), src.why)
				: cdr__run_err(r, rc, "%s: read error: %s",
					  cx_name(in), strerror(-rc));
	cdr__source_close(&src);
	if (in->spool_fd < 0)
		close(fd);
	return rc;
}

/* The extract of every compressed input's candidates (cv: all rounds). */
static int cx_build(cdr_run *r, const cvec *cv, cextract *cx)
{
	size_t n = 0;
	for (size_t i = 0; i < cv->n; i++)
		n += r->in[cv->c[i].loc >> LOC_OFF_BITS].comp != CDR_COMP_NONE;
	if (!n)
		return 0;
	uint64_t *locs = malloc(n * sizeof(*locs));
	char *win = malloc(CX_WIN);
	cx->m = malloc(n * sizeof(*cx->m));
	if (!locs || !win || !cx->m) {
		free(locs);
		free(win);
		return -ENOMEM;
	}
	n = 0;
	for (size_t i = 0; i < cv->n; i++)
		if (r->in[cv->c[i].loc >> LOC_OFF_BITS].comp != CDR_COMP_NONE)
			locs[n++] = cv->c[i].loc;
	qsort(locs, n, sizeof(*locs), cmp_u64);
	for (size_t i = 0; i < n; i++)
		if (!cx->n || locs[i] != cx->m[cx->n - 1].loc)
			cx->m[cx->n++] = (cxline){locs[i], 0, 0};
	free(locs);
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/cdrate-dups-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	cx->fd = mkstemp(path);
	if (cx->fd < 0) {
		int e = errno;
		free(win);
		return cdr__run_err(r, -e, "decoding again for duplicates: %s: %s",
			       path, strerror(e));
	}
	unlink(path);
	int rc = 0;
	for (size_t i = 0; !rc && i < cx->n;) {
		uint32_t idx = (uint32_t)(cx->m[i].loc >> LOC_OFF_BITS);
		size_t j = i;
		while (j < cx->n && cx->m[j].loc >> LOC_OFF_BITS == idx)
			j++;
		rc = cx_input(r, cx, idx, cx->m + i, j - i, win);
		i = j;
	}
	free(win);
	return rc;
}

/* Where the extract holds the line at loc (a candidate's). */
static const cxline *cx_find(const cextract *cx, uint64_t loc)
{
	size_t lo = 0, hi = cx->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cx->m[mid].loc < loc)
			lo = mid + 1;
		else
			hi = mid;
	}
	assert(lo < cx->n && cx->m[lo].loc == loc);
	return &cx->m[lo];
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
	int own_fd;	  /* fd was opened for idx (not a spool or the extract) */
	const cextract *cx;
	char *blk;	  /* [RB_BLOCK]: bytes blk_off .. blk_off + blk_n of fd */
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

static void rb_close(rback *rb)
{
	if (rb->own_fd && rb->fd >= 0)
		close(rb->fd);
	rb->idx = UINT32_MAX;
	rb->fd = -1;
	rb->own_fd = 0;
	rb->blk_n = 0;
}

/* Open input idx for reading back: the extract of a compressed input, a
 * stream's spool, or the file by path (reopen's checks). */
static int rb_open(cdr_run *r, rback *rb, uint32_t idx)
{
	const input *in = &r->in[idx];
	rb_close(rb);
	rb->idx = idx;
	if (in->comp != CDR_COMP_NONE) {
		rb->fd = rb->cx->fd;
		return 0;
	}
	if (in->spool_fd >= 0) {
		rb->fd = in->spool_fd;
		return 0;
	}
	rb->own_fd = 1;
	return reopen(r, idx, &rb->fd);
}

/* The duplicate key of a line that parsed: the line's as read, whatever
 * a tariff's normalize.csv makes of its numbers. With two of them, the
 * line parsed under at least one, whose parse gives the key. */
static void line_key(const cdr_run *r, const input *in, const char *p,
		     size_t n, const char **key, size_t *key_n, char *scratch)
{
	cdr__rec rec;
	if (!r->norm2 || (in->fmt.kind == CDR_FORMAT_NATIVE && !in->fmt.bycol)) {
		cdr__fmt_key(&in->fmt, p, n, key, key_n, scratch);
	} else if (cdr__fmt_parse(&in->fmt, p, n, &rec, scratch, "", 0) ==
			   CDR_OK ||
		   cdr__fmt_parse(&in->fmt1, p, n, &rec, scratch, "", 0) ==
			   CDR_OK) {
		*key = rec.key;
		*key_n = rec.key_len;
	} else { /* never for a line that parsed before */
		*key = p;
		*key_n = n;
	}
}

/* Read the line at b->loc (input << 44 | offset) into the arena. */
static int rb_line(cdr_run *r, rback *rb, back *b)
{
	uint32_t idx = (uint32_t)(b->loc >> LOC_OFF_BITS);
	uint64_t off = b->loc & ((1ULL << LOC_OFF_BITS) - 1);
	int rc;
	if (idx != rb->idx && (rc = rb_open(r, rb, idx)))
		return rc;
	/* Where the line is in rb->fd, and how far that input's bytes go:
	 * never past its end, since in the spool the next stream's bytes
	 * follow, and in the extract the next candidate's line. */
	const input *in = &r->in[idx];
	uint64_t at, left;
	if (in->comp != CDR_COMP_NONE) {
		at = cx_find(rb->cx, b->loc)->at;
		left = rb->cx->end - at;
	} else {
		at = in->spool_at + off;
		left = (uint64_t)in->size > off ? (uint64_t)in->size - off : 0;
	}
	const char *p = NULL, *nl = NULL;
	if (at >= rb->blk_off && at < rb->blk_off + rb->blk_n) {
		p = rb->blk + (at - rb->blk_off);
		nl = memchr(p, '\n', rb->blk_n - (at - rb->blk_off));
	}
	if (!nl) { /* not in the block, or cut at its end: read from it */
		size_t want = left < RB_BLOCK ? (size_t)left : RB_BLOCK;
		ssize_t n = cdr__backend_read()->fill(NULL, rb->fd, rb->blk,
						      want, (int64_t)at);
		if (n < 0)
			return cdr__run_err(r, (int)n, "%s: read error: %s",
				       r->in[idx].path, strerror((int)-n));
		rb->blk_off = at;
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
	line_key(r, &r->in[idx], p, len, &key, &key_n, rb->scratch);
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

/* The line number of a compressed input's candidate, counted when it
 * was decoded again; 0 for other inputs (outputs.c counts those). */
static uint64_t cand_line(const cdr_run *r, const cextract *cx, uint64_t loc)
{
	return r->in[loc >> LOC_OFF_BITS].comp != CDR_COMP_NONE
		       ? cx_find(cx, loc)->line
		       : 0;
}

static int dup_add(dupset *d, uint64_t loc, uint64_t win, uint64_t lline,
		   uint64_t wline, const char *line, size_t n)
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
		uint64_t *ll = realloc(d->lline, 2 * cap * sizeof(*ll));
		if (!ll)
			return -ENOMEM;
		d->lline = ll;
		d->cap = cap;
	}
	d->loc[d->n] = loc;
	d->lline[2 * d->n] = lline;
	d->lline[2 * d->n + 1] = wline;
	d->win[d->n++] = win;
	return skip_add(&d->text, line, n);
}

/* Take a losing duplicate (at loc; the line its side keeps is at win) back
 * out of the sums of tariffs [k0, k1); `scratch` holds SCRATCH_REC for its
 * fields. With `keep` (the line each side keeps) nothing is taken back.
 * When the itemize tariff is among [k0, k1) the duplicate is noted in
 * `dup`: outputs.c drops its itemize or rejects line by its location and
 * writes its `duplicate` reject. Returns 0, 1 when the line does not parse
 * for those tariffs (a rerate's side whose normalize.csv rejects it: not a
 * duplicate there), or a negative status. */
static int undo_duplicate(cdr_run *r, const cextract *cx, int k0, int k1,
			  int keep, const char *line, size_t n, uint64_t loc,
			  uint64_t win, const lvec *lines, char *scratch,
			  dupset *dup)
{
	const input *in = &r->in[loc >> LOC_OFF_BITS];
	cdr__rec rec;
	int64_t utc[2];
	int rc = 0;
	if (cdr__parse_rec(r, in, k0, k1, line, n, &rec, scratch,
			   line_of(lines, loc), utc) != CDR_OK)
		return 1;
	if (keep)
		return 0;
	for (int k = k0; k < k1 && !rc; k++) {
		cdr__rated x;
		cdr__rate_record(r->t[k], &r->per[k], &rec, utc[k], &x);
		r->by_reason[k][x.reason]--;
		r->by_reason[k][CDR_R_DUPLICATE]++;
		/* A rated line becomes a reject of its input; a rejected
		 * one was counted as one when it was read. Either way its
		 * sample line is now a duplicate's. */
		if (r->acc[k].bd)
			cdr__bd_undo(r->acc[k].bd, (uint32_t)(loc >> LOC_OFF_BITS),
				     cdr__loc_order(r, loc), x.reason, line, n);
		if (x.reason == CDR_OK)
			rc = cdr__acc_add(&r->acc[k], &x, -1);
	}
	int it = r->o.itemize_tariff;
	if (!rc && it >= k0 && it < k1 &&
	    (r->item_out.fd >= 0 || r->rej_out.fd >= 0))
		rc = dup_add(dup, loc, win, cand_line(r, cx, loc),
			     cand_line(r, cx, win), line, n);
	return rc;
}

/* One key's lines, bytewise smallest first: keep the first, take back
 * the others. A line of a group parsed when it was read (for some side);
 * one that parses for no side now was changed since. */
static int resolve_group(cdr_run *r, const rback *rb, const back *bs,
			 size_t m, const lvec *lines, char *scratch,
			 dupset *dup)
{
	int rc = 0;
	if (m < 2)
		return 0;
	int sides = r->norm2 ? r->nt : 1;
	uint8_t seen[2] = {0, 0}; /* a side's kept line came */
	uint64_t win[2] = {0, 0}; /* and where it is */
	for (size_t k = 0; k < m && rc >= 0; k++) {
		int parsed = 0;
		for (int s = 0; s < sides && rc >= 0; s++) {
			int k0 = r->norm2 ? s : 0, k1 = r->norm2 ? s + 1 : r->nt;
			rc = undo_duplicate(r, rb->cx, k0, k1, !seen[s],
					    rb->arena + bs[k].at, bs[k].n,
					    bs[k].loc, win[s], lines, scratch,
					    dup);
			if (rc == 0 && !seen[s]) {
				seen[s] = 1;
				win[s] = bs[k].loc;
			}
			if (rc == 0)
				parsed = 1;
		}
		if (rc >= 0 && !parsed)
			return cdr__run_err(r, -ESTALE,
				       "%s: changed while being rated",
				       r->in[bs[k].loc >> LOC_OFF_BITS].path);
		if (rc > 0)
			rc = 0;
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
int cdr__resolve_duplicates(cdr_run *r, dupset *dup)
{
	cvec cv = {0};
	cextract cx = {-1, 0, NULL, 0};
	rback rb = {UINT32_MAX, -1, 0, &cx, NULL, 0, 0, NULL, 0, 0, NULL};
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
		if (!rc)
			rc = cx_build(r, &cv, &cx);
	}
	for (size_t i = 0; !rc && bs && i < cv.n;) {
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
		rb_close(&rb);
		if (rc)
			break;
		qsort_r(bs, m, sizeof(*bs), cmp_back, rb.arena);
		/* Each group of one key: the first line is kept, every
		 * other taken back; per side when the sides parse lines
		 * with different normalize.csv (one side may reject a line
		 * the other rates: it is then no duplicate on that side). */
		for (size_t g = 0; !rc && g < m;) {
			size_t e = g + 1;
			while (e < m && bs[e].h == bs[g].h &&
			       bs[e].key_n == bs[g].key_n &&
			       !memcmp(rb.arena + bs[e].key_at,
				       rb.arena + bs[g].key_at, bs[g].key_n))
				e++;
			rc = resolve_group(r, &rb, bs + g, e - g, &lines,
					   scratch, dup);
			g = e;
		}
		i = j;
	}
	rb_close(&rb);
	if (cx.fd >= 0)
		close(cx.fd);
	free(cx.m);
	free(rb.blk);
	free(rb.arena);
	free(rb.scratch);
	free(bs);
	free(scratch);
	free(lines.e);
	free(cv.c);
	return rc;
}
