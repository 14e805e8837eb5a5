/*
 * run_int.h - what the run's three files share: run.c (the run object,
 * chunk queue, workers, execute, commit), reader.c (line framing, the
 * carried line, long lines, spooling, the head check) and dedup.c
 * (duplicate resolution). Private to those three; nothing else includes it.
 *
 * Map: sizes and the location encoding - inputs and chunks - per-worker
 * state - the run object - helpers each side calls (run.c) - the parse
 * both the pass and a duplicate's take-back use - reader.c - dedup.c.
 */
#ifndef CDR_RUN_INT_H
#define CDR_RUN_INT_H

#include <pthread.h>
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

/* ---- run.c: what the reader and the duplicate check call -------------- */

/* Record the run's first failure and wake every thread; returns rc. */
int cdr__run_err(cdr_run *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Take a free chunk buffer (reader side); NULL when the run failed. */
char *cdr__run_buf_get(cdr_run *r);
void cdr__run_buf_put(cdr_run *r, char *b);
/* Queue a chunk of whole lines for the workers. */
void cdr__run_chunk_push(cdr_run *r, const chunk *c);
/* A rejects line (line, reason) and an itemize line, into b. */
size_t cdr__reject_fmt(char *b, const char *line, size_t n, int reason);
size_t cdr__item_fmt(char *b, const cdr_tariff *t, const cdr__rec *rec,
		     const cdr__rated *x);
int cdr__lvec_push(lvec *v, uint64_t loc, uint64_t line);

/* Monotonic seconds, for the stage times and progress. */
static inline double cdr__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Parse a line of input `in` and resolve its start under every tariff:
 * what the pass does, and what taking back a duplicate does again.
 * Inlined: a call per record was 9M instructions of 200k records. */
static inline __attribute__((always_inline)) int
cdr__parse_rec(const cdr_run *r, const input *in, const char *p, size_t n,
	        cdr__rec *rec, char *scratch, uint64_t lineno,
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

/* ---- reader.c ---------------------------------------------------------- */

typedef struct reader_arg {
	cdr_run *r;
	cdr__backend *be;
	double t0;
} reader_arg;

/* The reader thread: every input in order, into chunks (reader.c). */
void *cdr__reader_main(void *arg);

/* ---- dedup.c ----------------------------------------------------------- */

/* After the pass: take every losing duplicate back out of the sums and
 * collect the output lines to remove (item, rej) and add (dup). */
int cdr__resolve_duplicates(cdr_run *r, skipset *item, skipset *rej,
			    skipset *dup);

#endif
