/*
 * run_int.h - what the run's files share: run.c (the run object, chunk
 * queue, workers, execute, commit), reader.c (line framing, the carried
 * line, long lines, spooling, the head check), dedup.c (duplicate
 * resolution) and outputs.c (rejects and itemize rows, their details and
 * their sorted files; explain.c borrows its details and local times).
 * Private to those, and to shard.c, whose dedup stage parses and rates
 * lines as the pass does (cdr__parse_rec); nothing else includes it.
 *
 * Map: sizes and the location encoding - inputs and chunks - per-worker
 * state - the run object - helpers each side calls (run.c) - the parse
 * both the pass and a duplicate's take-back use - reader.c - dedup.c -
 * outputs.c.
 */
#ifndef CDR_RUN_INT_H
#define CDR_RUN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "format.h"
#include "internal.h"
#include "source.h"

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
	char *path; /* "-" for standard input; the name outputs show */
	/* Where the bytes are when not at `path` (cdr_run_add_input_as: a
	 * shard's rebuilt input), else NULL. */
	char *open_path;
	/* With open_path, when it holds only some of the input's lines
	 * (a shard's bucket): the line map (cdr_run_add_input_as), mapped
	 * read-only, lmap_len bytes: lmap_n lines, the index of their blocks
	 * at lmap_idx. Applied where a line number leaves the run: FILE:LINE
	 * ids (run.c), the rejects' and duplicates' lines (outputs.c). */
	unsigned char *lmap;
	size_t lmap_len;
	uint64_t lmap_n;
	const unsigned char *lmap_idx;
	/* The first non-empty line the format is settled from, when given
	 * (cdr_run_add_input_as), else NULL: the input's own. */
	char *head;
	size_t head_n;
	/* Its format, settled by the reader from its first non-empty line
	 * before any chunk of it is queued (so workers read it unlocked). */
	cdr__fmt fmt;
	/* The same with the second tariff's normalize.csv, for a rerate
	 * whose two tariffs rewrite numbers differently (cdr_run.norm2). */
	cdr__fmt fmt1;
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

/* The input's own number of line l of the file read (run.c). */
uint64_t cdr__lmap_line(const input *in, uint64_t l);
static inline uint64_t cdr__in_line(const input *in, uint64_t l)
{
	return in->lmap ? cdr__lmap_line(in, l) : l;
}

/* The path an input's bytes are read from. */
static inline const char *cdr__in_open_path(const input *in)
{
	return in->open_path ? in->open_path : in->path;
}

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
	uint32_t n;	     /* entries, as of the last dvec_sync */
	uint64_t e[2 * DBLOCK]; /* pairs: key hash, location */
} dblock;

/* A push is a store through a cursor (cur, up to end: head's free pairs);
 * the counts are brought up to date by dvec_sync, when a block fills and
 * when the worker is done, before anything reads them. */
typedef struct dvec {
	dblock *head;	     /* the block being filled */
	uint64_t *cur, *end; /* head's next free pair, its end (NULL: none) */
	size_t n;	     /* entries in all blocks, as of the last sync */
} dvec;

static inline void dvec_sync(dvec *v)
{
	if (v->head) {
		const uint32_t k = (uint32_t)((v->cur - v->head->e) / 2);
		v->n += k - v->head->n;
		v->head->n = k;
	}
}

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
	lvec chunks; /* (location, lines) of each chunk, with --rejects */
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
	/* A rerate whose tariffs' normalize.csv differ: each side parses a
	 * line with its own (input.fmt for side 0, fmt1 for side 1). */
	int norm2;
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
	/* For cdr_run_progress_get, polled from another thread: bumped once
	 * a read (raw bytes, by the reader) or a chunk (records, by each
	 * worker), relaxed - a progress line needs no ordering. */
	_Atomic uint64_t prog_raw, prog_records;
	_Atomic int prog_stage;
	uint64_t known_bytes; /* of the regular-file inputs, at add time */
	int all_known;	      /* no input is a stream */

	worker *w;
	int nw;
	cdr__acc acc[2];
	uint64_t read;
	uint64_t by_reason[2][CDR_NREASON];
	run_output item_out, rej_out;
	/* The workers' itemize and rejects records (outputs.c), unlinked
	 * temporaries sorted into item_out/rej_out at the finish; -1 */
	int item_tmp, rej_tmp;
	uint32_t *rank; /* [nin] each input's place by path, bytewise */
	cdr_outputs *own; /* of rejects_path/itemize_path, committed by
			   * cdr_run_commit; NULL with opts.outputs */
	double seconds, pass_seconds, dup_seconds, sums_seconds;
	int executed;
};

#define SCRATCH_REC CDR__SCRATCH(CDR_LINE_MAX)

/* Lines to take out of an output file, as a multiset. */
typedef struct skipset {
	char *text;
	size_t n, cap;
	size_t *off; /* line starts; off[i+1] - off[i] is its length */
	size_t nl, lcap;
} skipset;

/* Where the line at loc sorts among the run's lines: its input's rank by
 * path, then its offset (the order breakdown samples are kept in). */
static inline uint64_t cdr__loc_order(const cdr_run *r, uint64_t loc)
{
	return (uint64_t)r->rank[loc >> LOC_OFF_BITS] << LOC_OFF_BITS |
	       (loc & (((uint64_t)1 << LOC_OFF_BITS) - 1));
}

/* ---- run.c: what the reader and the duplicate check call -------------- */

/* Record the run's first failure and wake every thread; returns rc. */
int cdr__run_err(cdr_run *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Take a free chunk buffer (reader side); NULL when the run failed. */
char *cdr__run_buf_get(cdr_run *r);
void cdr__run_buf_put(cdr_run *r, char *b);
/* Queue a chunk of whole lines for the workers. */
void cdr__run_chunk_push(cdr_run *r, const chunk *c);
int cdr__lvec_push(lvec *v, uint64_t loc, uint64_t line);

/* Monotonic seconds, for the stage times and progress. */
static inline double cdr__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The start of a parsed record under each of the tariffs [k0, k1). */
static inline __attribute__((always_inline)) int
cdr__rec_utc(const cdr_run *r, int k0, int k1, cdr__rec *rec, int64_t *utc)
{
	int st = CDR_OK;
	if (r->in_tz && rec->start_kind == CDR_START_LOCAL) {
		/* --input-timezone: the naive stamp is that zone's wall
		 * clock (gap forward, fold first, as section 6). */
		rec->start = cdr__tz_local_to_utc(r->in_tz, rec->start);
		rec->start_kind = CDR_START_UTC;
	}
	for (int k = k0; st == CDR_OK && k < k1; k++)
		st = cdr__period_start_utc(&r->per[k], rec, &utc[k]);
	return st;
}

/* Parse a line of input `in` for the tariffs [k0, k1) and resolve its
 * start under each: what the pass does, and what taking back a duplicate
 * does again. Every tariff at once, but for a rerate whose normalize.csv
 * differ (r->norm2), where each side is parsed on its own.
 * Inlined: a call per record was 9M instructions of 200k records. */
static inline __attribute__((always_inline)) int
cdr__parse_rec(const cdr_run *r, const input *in, int k0, int k1,
	       const char *p, size_t n, cdr__rec *rec, char *scratch,
	       uint64_t lineno, int64_t *utc)
{
	int st;
	const cdr__fmt *f = k0 ? &in->fmt1 : &in->fmt;
	/* The native layout by position is the hot path: no dispatch. */
	if (f->kind == CDR_FORMAT_NATIVE && !f->bycol && !f->norm)
		st = cdr__parse_line(p, n, rec);
	else
		st = cdr__fmt_parse(f, p, n, rec, scratch, in->path, lineno);
	if (st != CDR_OK)
		return st;
	return cdr__rec_utc(r, k0, k1, rec, utc);
}

/* ---- reader.c ---------------------------------------------------------- */

typedef struct reader_arg {
	cdr_run *r;
	cdr__backend *be;
	double t0;
} reader_arg;

/* The reader thread: every input in order, into chunks (reader.c). */
void *cdr__reader_main(void *arg);

/* ---- dedup.c ----------------------------------------------------------- */

/* The duplicates taken back: each one's location, the location of the line
 * it duplicates (the one kept) and its line as read; lline holds both
 * lines' numbers where dedup.c counted them (compressed inputs, decoded
 * again), else 0 and outputs.c counts them. */
typedef struct dupset {
	uint64_t *loc, *win, *lline; /* lline: [2 * i] loc's, [2 * i + 1] win's */
	size_t n, cap;
	skipset text;
} dupset;

/* After the pass: take every losing duplicate back out of the sums and
 * collect them (for the itemize and rejects files) when either is written. */
int cdr__resolve_duplicates(cdr_run *r, dupset *dup);

/* ---- outputs.c --------------------------------------------------------- */

/* Bytes cdr__csv_text may write for n bytes of text. */
#define CDR__CSV_BOUND(n) (4 * (size_t)(n) + 2)
/* One CSV field of text: bytes that are not valid UTF-8, controls and '\'
 * as \xHH; quoted when `quote` or when it holds ',' or '"'. */
size_t cdr__csv_text(char *b, const char *s, size_t n, int quote);
/* YYYY-MM-DD HH:MM:SS of local seconds: 19 bytes. */
size_t cdr__fmt_local(char *b, int64_t local);
/* An unlinked O_APPEND temporary for workers' records, or -errno. */
int cdr__out_tmp(void);
int cdr__ob_flush(outbuf *o);
int cdr__cmp_pair(const void *a, const void *b);
/* A reject of the line at loc, `rel` lines into its chunk. */
int cdr__rej_put(cdr_run *r, outbuf *o, uint64_t loc, uint64_t rel,
		 int reason, const char *detail, size_t dn, const char *p,
		 size_t n);
/* The itemize line of a rated record, and its bound. */
int cdr__item_put(outbuf *o, const cdr_tariff *t, const cdr__rec *rec,
		  const cdr__rated *x, uint64_t loc);
size_t cdr__item_fmt(char *b, const cdr_tariff *t, const cdr__rec *rec,
		     const cdr__rated *x);
size_t cdr__item_bound(const cdr_tariff *t, const cdr__rec *rec,
		       const cdr__rated *x);
/* The words of a reject (cold): rec and x as far as rating got, or NULL
 * for a line rejected while parsing. Returns the detail's length. */
#define CDR__DETAIL_MAX 512
size_t cdr__reject_detail(char *out, size_t cap, const cdr_tariff *t,
			  const cdr__period *per, const cdr__fmt *f,
			  const char *p, size_t n, int reason,
			  const cdr__rec *rec, const cdr__rated *x);
/* Sort the workers' records into the files, duplicates taken back. */
int cdr__finish_rejects(cdr_run *r, const dupset *d, char *err, size_t errlen);
int cdr__finish_itemize(cdr_run *r, const dupset *d, char *err, size_t errlen);

#endif
