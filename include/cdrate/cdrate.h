/*
 * cdrate.h - public API of libcdrate, the call detail record rater.
 *
 * The library is the product; the `cdrate` command is a thin shell over the
 * functions below and uses nothing else.
 *
 * Objects are opaque and owned by the caller: every create/load has a
 * NULL-safe free. Functions return 0 (or a count) on success and a negative
 * errno on failure; where a failure has a story to tell (a bad tariff line,
 * an unreadable input) it is written into the caller's `err` buffer as one
 * line naming file, line and column.
 *
 * Thread-safety: a loaded cdr_tariff is immutable and may be shared by any
 * number of runs and threads. A cdr_run is used by one thread at a time (it
 * starts and joins its own workers inside cdr_run_execute).
 */
#ifndef CDRATE_H
#define CDRATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CDR_VERSION_STRING "0.1.0"

/* Size of the error buffers the API writes messages into. */
#define CDR_ERR_MAX 512

/* ---- tariff ---------------------------------------------------------- */

typedef struct cdr_tariff cdr_tariff;

/*
 * Load and validate the tariff directory `dir`. `subscribers_path` names the
 * subscribers file, or NULL for `dir/subscribers.csv`. On error returns a
 * negative errno (-EINVAL for content errors) and a message such as
 * "plans.csv:4: column monthly_fee: bad amount '1.2.3'" in err.
 */
int cdr_tariff_load(cdr_tariff **out, const char *dir,
		    const char *subscribers_path, char *err, size_t errlen);
void cdr_tariff_free(cdr_tariff *t);

/* Print what the tariff holds (settings, zones, bands, plans, rates,
 * packages, subscribers, outages) in human-readable form. */
int cdr_tariff_describe(const cdr_tariff *t, FILE *out);

/* ---- rating run ------------------------------------------------------ */

typedef enum cdr_io {
	CDR_IO_URING = 0, /* io_uring reads, falling back to read(2) */
	CDR_IO_READ = 1   /* plain read(2) */
} cdr_io;

typedef struct cdr_run_opts {
	int period_year;	 /* billing month, local time of each tariff */
	int period_month;	 /* 1..12 */
	int threads;		 /* worker threads, >= 1 */
	cdr_io io;
	const char *rejects_path; /* NULL: not written */
	const char *itemize_path; /* NULL: not written */
	int itemize_tariff;	 /* which tariff's view goes to itemize/rejects */
	int progress;		 /* nonzero: progress line on `log` */
	FILE *log;		 /* notes (I/O fallback, progress); NULL: none */
} cdr_run_opts;

typedef struct cdr_run cdr_run;

/*
 * A run rates every input once under each of `ntariffs` tariffs (1 for
 * `rate`, 2 for `rerate`). The tariffs must outlive the run.
 */
int cdr_run_create(cdr_run **out, cdr_tariff *const *tariffs, int ntariffs,
		   const cdr_run_opts *opts, char *err, size_t errlen);
void cdr_run_free(cdr_run *r);

/* Add an input: a file, a directory (its regular files, sorted by name) or
 * "-" for standard input. Fails with a message for a missing path. */
int cdr_run_add_input(cdr_run *r, const char *path, char *err, size_t errlen);

/*
 * Read and rate everything and resolve duplicates. The rejects/itemize
 * files are complete but still under temporary names: the caller writes
 * its totals, then calls cdr_run_commit, so that a failure anywhere leaves
 * no output at a final name (cdr_run_free removes uncommitted files).
 * Returns 0, or a negative errno with a message (I/O failure).
 */
int cdr_run_execute(cdr_run *r, char *err, size_t errlen);
/* Rename the rejects/itemize files into place. */
int cdr_run_commit(cdr_run *r, char *err, size_t errlen);

/* How an input is compressed, told by its first bytes whatever its name
 * (SPEC 11): gzip `1f 8b`, zstd `28 b5 2f fd`, or neither. */
typedef enum cdr_comp {
	CDR_COMP_NONE,
	CDR_COMP_GZIP,
	CDR_COMP_ZSTD,
	CDR_NCOMP
} cdr_comp;
/* "plain", "gzip", "zstd", or NULL past the last. */
const char *cdr_comp_name(int c);

/* Counters of a finished run. */
#define CDR_REASON_MAX 32
typedef struct cdr_run_stats {
	uint64_t read;	  /* records read (non-empty, non-header lines) */
	uint64_t rated;	  /* of tariff `itemize_tariff` */
	uint64_t rejected;
	uint64_t by_reason[CDR_REASON_MAX];
	double seconds;	  /* all of cdr_run_execute */
	double pass_seconds;  /* of which reading, parsing, rating, adding */
	double dup_seconds;   /* resolving duplicates */
	uint64_t files_by_comp[CDR_NCOMP]; /* inputs read, by compression */
} cdr_run_stats;

void cdr_run_stats_get(const cdr_run *r, cdr_run_stats *st);
/* Name of reason code i ("malformed:start", "duplicate", ...), or NULL. */
const char *cdr_reason_name(int i);

/*
 * Render the totals CSV of tariff `k` (0-based) into a malloc'd buffer that
 * the caller frees. Byte-identical for the same inputs and tariff.
 */
int cdr_run_totals(const cdr_run *r, int k, char **buf, size_t *len);

/* ---- totals comparison (rerate, diff) -------------------------------- */

/*
 * The delta CSV of a two-tariff run (new - old), exactly what
 * cdr_diff_totals gives for the two sides' totals as cdr_run_totals
 * renders them, but from the figures directly, without printing and
 * reading them back. Report as in cdr_diff_totals. Caller frees *out.
 */
int cdr_run_delta(const cdr_run *r, int all, char **out, size_t *out_len,
		  FILE *report);

/*
 * Build the delta CSV between two totals CSV texts (as cdr_run_totals
 * writes them). `all` lists unchanged accounts too. The report for standard
 * error (accounts changed, sums, largest moves) goes to `report` if not
 * NULL. Returns 0 or -EINVAL with a message (malformed file, period
 * mismatch); `name_old`/`name_new` label messages.
 */
int cdr_diff_totals(const char *old_csv, size_t old_len, const char *name_old,
		    const char *new_csv, size_t new_len, const char *name_new,
		    int all, char **out, size_t *out_len, FILE *report,
		    char *err, size_t errlen);

/* ---- output files ---------------------------------------------------- */

/*
 * Write `len` bytes to `path` atomically: a temporary name in the same
 * directory, fsync, rename. "-" or NULL writes to standard output.
 */
int cdr_write_file_atomic(const char *path, const void *buf, size_t len,
			  char *err, size_t errlen);

/*
 * Remove the temporary files of outputs being written. Async-signal-safe:
 * a SIGINT/SIGTERM handler calls it before _exit, so an interrupted run
 * leaves neither a half-written file nor a stray temporary.
 */
void cdr_cleanup_temps(void);

#ifdef __cplusplus
}
#endif
#endif
