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

/*
 * cdr_tariff_load for one account bucket of a sharded run (cdrate shard
 * rate): every row of subscribers.csv is read and checked as by
 * cdr_tariff_load, but only the rows whose account is in bucket `bucket`
 * of `shards` (cdr_shard_bucket of the account's name) are kept, and
 * outages.csv rows of numbers left with no row are skipped. Checks across
 * rows (overlapping periods of one number) see only the kept rows: load
 * the whole tariff once (shard dedup does) to check those. shards <= 0
 * keeps every row, as cdr_tariff_load.
 */
int cdr_tariff_load_bucket(cdr_tariff **out, const char *dir,
			   const char *subscribers_path, int shards, int bucket,
			   char *err, size_t errlen);
void cdr_tariff_free(cdr_tariff *t);

/* Print what the tariff holds (settings, zones, bands, plans, rates,
 * packages, subscribers, outages) in human-readable form. */
int cdr_tariff_describe(const cdr_tariff *t, FILE *out);

/* How much `cdr_tariff_check` prints: counts and the band grid, or one of
 * the full lists. */
typedef enum cdr_check_list {
	CDR_CHECK_SUMMARY = 0,
	CDR_CHECK_SUBSCRIBERS,
	CDR_CHECK_ZONES,
	CDR_CHECK_RATES
} cdr_check_list;

/*
 * What `cdrate check` prints: with CDR_CHECK_SUMMARY the settings, the
 * counts of plans, zones, bands, rates, packages, subscribers, accounts
 * and outages, the band grid (which band each hour of each day type is
 * in) and the outages in local time; otherwise the one full list. Holes
 * (a plan with no rate row for a service and zone one of its subscribers
 * may call) go to `warn` as "warning: ..." lines, one per hole; returns
 * their count.
 */
int cdr_tariff_check(const cdr_tariff *t, cdr_check_list list, FILE *out,
		     FILE *warn);

/* The tariff's `decimals` setting (places of the printed amounts). */
int cdr_tariff_decimals(const cdr_tariff *t);

/* Hex digits of a fingerprint, with the terminating NUL. */
#define CDR_FINGERPRINT_HEX 33

/*
 * A fingerprint of the tariff's bytes: XXH3-128 over, for each file that
 * cdr_tariff_load reads, in the order of their names bytewise, the name,
 * a NUL, the size in decimal, a NUL and the contents. The names are those
 * of the tariff directory (tariff.conf, zones.csv, ...; absent optional
 * files are left out); a `subscribers_path` (not NULL) stands under the
 * name `subscribers.csv`, as if it were the directory's. Written as 32
 * lowercase hex digits into hex; *nfiles (when not NULL) gets the count.
 * 0, or -errno with a message naming the file.
 */
int cdr_tariff_fingerprint(const char *dir, const char *subscribers_path,
			   char hex[CDR_FINGERPRINT_HEX], unsigned *nfiles,
			   char *err, size_t errlen);

/* What cdr_tariff_load_cached did with its image. */
typedef struct cdr_tariff_cache {
	int used;     /* 1: the subscriber tables came from the image */
	char why[192]; /* when not: why ("no image yet", "stale: ...") */
	/* The tariff's fingerprint (cdr_tariff_fingerprint) taken before
	 * the load, and its file count; "" when it could not be taken. */
	char fp[CDR_FINGERPRINT_HEX];
	unsigned nfiles;
} cdr_tariff_cache;

/*
 * cdr_tariff_load with a compiled image of the subscriber tables at
 * `cache` (cdr_tariff_cache_write): when the file is an image of this
 * cdrate version and byte order, whole (its checksums), and made from
 * tariff files of the fingerprint they have now, the subscriber tables
 * are mapped from it read-only instead of parsed from subscribers.csv;
 * else the tariff loads as by cdr_tariff_load and info->why says why
 * (then, with info->fp set, the caller may write a new image). The
 * tariff is the same either way. cache NULL: no image. Errors as
 * cdr_tariff_load.
 */
int cdr_tariff_load_cached(cdr_tariff **out, const char *dir,
			   const char *subscribers_path, const char *cache,
			   cdr_tariff_cache *info, char *err, size_t errlen);

/*
 * Write the image of t's subscriber tables to `path`, for tariff files of
 * fingerprint `fp` (info->fp of the load that made t), as an output set
 * of one (cdr_outputs): a temporary renamed into place, never a device,
 * FIFO or standard output, never a file of the tariff directory. 0 or
 * -errno with a message naming the path.
 */
int cdr_tariff_cache_write(const cdr_tariff *t, const char *fp,
			   const char *path, char *err, size_t errlen);

/*
 * cdr_tariff_cache_write beside the caller: the checks and the output
 * set's temporary are made here, the bytes are written and fsynced on a
 * thread of its own (every signal blocked on it, so a handler that calls
 * cdr_cleanup_temps runs elsewhere), and cdr_tariff_cache_join renames
 * the image into place. The file is the same bytes as
 * cdr_tariff_cache_write's. t is only read, and must stay loaded and
 * unchanged until the join (a run only reads its tariffs). When no thread
 * starts, the bytes are written here. A process that dies before the
 * join leaves no image and no temporary (an unnamed one vanishes, a named
 * one is cdr_cleanup_temps's). 0 with *job set, however the write goes
 * (the join says); -ENOMEM with *job NULL and a message.
 */
typedef struct cdr_tariff_cache_job cdr_tariff_cache_job;
int cdr_tariff_cache_start(cdr_tariff_cache_job **job, const cdr_tariff *t,
			   const char *fp, const char *path, char *err,
			   size_t errlen);

/*
 * Wait for the write `job` started, put the image in place and free the
 * job: 0, with *seconds (when not NULL) the time the write took (not the
 * wait for it), or -errno with cdr_tariff_cache_write's message. NULL
 * job: 0.
 */
int cdr_tariff_cache_join(cdr_tariff_cache_job *job, double *seconds,
			  char *err, size_t errlen);

/* ---- rating run ------------------------------------------------------ */

typedef enum cdr_io {
	CDR_IO_URING = 0, /* io_uring reads, falling back to read(2) */
	CDR_IO_READ = 1   /* plain read(2) */
} cdr_io;

/* Input formats (SPEC 11). AUTO decides per input from its first
 * non-empty line; a file it cannot place is read as NATIVE. */
typedef enum cdr_format {
	CDR_FORMAT_AUTO = 0,
	CDR_FORMAT_NATIVE,
	CDR_FORMAT_ASTERISK,	    /* Asterisk cdr_csv, 16-21 fields */
	CDR_FORMAT_ASTERISK_CUSTOM, /* cdr_custom's sample mapping, 19 */
	CDR_FORMAT_FREESWITCH,	    /* mod_cdr_csv, 13 or 15 fields */
	CDR_FORMAT_MAP,		    /* a column map (cdr_colmap_load) */
	CDR_FORMAT_N
} cdr_format;

/* "native", "asterisk", ... "map"; NULL out of range. */
const char *cdr_format_name(cdr_format f);
/* The format called `name` (not "map:FILE": the caller loads the map).
 * 0 or -EINVAL. */
int cdr_format_from_name(const char *name, cdr_format *f);

/*
 * A column map: `key = value` lines naming which column holds each field
 * (SPEC 11). On error returns -EINVAL (or -errno reading it) with a message
 * naming the map's file and line. Immutable once loaded; may be shared.
 */
typedef struct cdr_colmap cdr_colmap;
int cdr_colmap_load(cdr_colmap **out, const char *path, char *err,
		    size_t errlen);
void cdr_colmap_free(cdr_colmap *m);

/* ---- explaining a price ------------------------------------------------ */

/*
 * One record to explain: either `line` (a CDR line in any format: `format`
 * AUTO detects it from the line alone, a map needs `map`), or the fields
 * of a native record given one by one (`service` "voice", "sms" or "data";
 * `duration`/`volume` default to "0"; the id is "explain").
 */
typedef struct cdr_explain_query {
	const char *line;
	cdr_format format;
	const cdr_colmap *map;
	const char *subscriber, *destination, *start, *service;
	const char *duration, *volume;
	/* Billing month as YYYY-MM; NULL: the month of the local start. */
	const char *period;
} cdr_explain_query;

/*
 * Rate one record under tariff t as `cdrate rate` would (SPEC 5), writing
 * every step to `out` with what decided it: the parsed and normalised
 * fields, the period, the zone and its zones.csv line, the subscriber row
 * and its subscribers.csv line, the band, the rate row and its rates.csv
 * line, the billed quantity, the charge (each split piece), or the reject
 * and why. Duplicates need a whole run and are not explained. Returns 1
 * when the record is rated, 0 when it is rejected, -EINVAL with a message
 * in err when the query itself is unusable (no fields, a bad period).
 * Thread-safe: reads the tariff only.
 */
int cdr_explain(const cdr_tariff *t, const cdr_explain_query *q, FILE *out,
		char *err, size_t errlen);

typedef struct cdr_run_opts {
	int period_year;	 /* billing month, local time of each tariff */
	int period_month;	 /* 1..12 */
	int threads;		 /* worker threads, >= 1 */
	cdr_io io;
	const char *rejects_path; /* NULL: not written (see `outputs`) */
	const char *itemize_path; /* NULL: not written */
	/* Outputs of the caller (cdr_outputs below): when set, the run writes
	 * rejects and itemize lines into the outputs of these ids (0: none)
	 * instead of rejects_path/itemize_path, and the caller commits the
	 * set; the set must be open and outlive the run. */
	struct cdr_outputs *outputs;
	int rejects_output;
	int itemize_output;
	int itemize_tariff;	 /* which tariff's view goes to itemize/rejects */
	int progress;		 /* nonzero: progress line on `log` */
	FILE *log;		 /* notes (I/O fallback, progress); NULL: none */
	cdr_format format;	 /* of every input; AUTO (0) decides per input */
	const cdr_colmap *map;	 /* for CDR_FORMAT_MAP; must outlive the run */
	/* IANA zone of naive stamps in the inputs; NULL: each tariff's own.
	 * An unknown zone fails cdr_run_create with -ENOENT. */
	const char *input_timezone;
	/* Nonzero: collect the breakdowns (cdr_run_breakdown, cdr_run_report)
	 * during the pass; zero costs the pass nothing. */
	int breakdown;
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
 * Add the regular file `path` as an input named `name` in every output
 * (the rejects' file column, FILE:LINE itemize ids, messages), whose
 * format is settled from `head` (head_n bytes: the first non-empty line
 * of the input it stands for) when head is not NULL, rather than from its
 * own first line. For inputs rebuilt from another run's lines, as the
 * shard stages do (cdrate shard rate): `path` holds some of the input's
 * lines in their order, and `line_map`, when not NULL, names a file that
 * gives the input's line number of each of path's lines; the rejects,
 * duplicates and FILE:LINE ids then show the input's line numbers, so
 * the run gives that run's outputs for them.
 *
 * A line map of n lines (numbers L1 < L2 < ... < Ln): for each block of
 * CDR_LMAP_BLOCK lines, the differences L(i) - L(i-1) of its lines but
 * the first, as unsigned LEB128; then an index, for each of the
 * n / CDR_LMAP_BLOCK + 1 blocks, u64 its first line's number and u64 the
 * file offset of its differences; then u64 n. Integers little-endian.
 * About one byte a line when lines are fewer than 128 apart: a task's
 * map grows with its lines, not with the input's.
 */
#define CDR_LMAP_BLOCK 64
int cdr_run_add_input_as(cdr_run *r, const char *path, const char *name,
			 const char *head, size_t head_n, const char *line_map,
			 char *err, size_t errlen);

/*
 * Read and rate everything and resolve duplicates. The rejects/itemize
 * files are complete but still under temporary names: the caller writes
 * its totals, then commits, so that a failure anywhere leaves no output at
 * a final name (cdr_run_free removes uncommitted files). Returns 0, or a
 * negative errno with a message (I/O failure).
 */
int cdr_run_execute(cdr_run *r, char *err, size_t errlen);
/* Commit the rejects/itemize files of rejects_path/itemize_path (as
 * cdr_outputs_commit does). With opts.outputs this does nothing: the
 * caller commits its set, totals and all, at once. */
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
	uint64_t unanswered;  /* of `rejected`: switch records never answered,
				 a normal outcome rather than an error */
	uint64_t files[CDR_FORMAT_N]; /* inputs read per format */
	uint64_t unplaced;    /* of files[NATIVE]: auto could not place them */
	uint64_t files_by_comp[CDR_NCOMP]; /* inputs read, by compression */
	double sums_seconds;  /* merging the workers' sums and sorting the
				 allowance log (after the pass, in no other
				 stage) */
} cdr_run_stats;

void cdr_run_stats_get(const cdr_run *r, cdr_run_stats *st);
/* After cdr_run_execute: input i's path, the format it was read in, and
 * whether auto could not place it (read as native). NULL past the end. */
const char *cdr_run_input(const cdr_run *r, uint32_t i, cdr_format *fmt,
			  int *unplaced);
/* After cdr_run_execute: the bytes input i held (a compressed file's
 * bytes as stored; a stream's bytes as read). */
uint64_t cdr_run_input_bytes(const cdr_run *r, uint32_t i);
/*
 * After cdr_run_execute: a fingerprint of the inputs, XXH3-128 over, for
 * each input in the order read (a directory's files by name), its path as
 * given ("-" for standard input), a NUL, its size in decimal
 * (cdr_run_input_bytes) and a NUL; 32 lowercase hex digits. It says which
 * files were read, not what they held: compare it with the names and
 * sizes of the spool, cheaply, before a rerun.
 */
void cdr_run_fingerprint(const cdr_run *r, char hex[CDR_FINGERPRINT_HEX]);

/* Where a run is, for a progress line (cdr_run_progress_get). */
typedef enum cdr_run_stage {
	CDR_STAGE_IDLE = 0,   /* not executing yet */
	CDR_STAGE_READING,    /* reading, parsing, rating */
	CDR_STAGE_DUPLICATES, /* resolving duplicates */
	CDR_STAGE_DONE
} cdr_run_stage;

typedef struct cdr_run_progress {
	cdr_run_stage stage;
	uint64_t bytes_done;  /* input bytes read so far, as stored */
	uint64_t bytes_known; /* bytes of the regular-file inputs */
	int all_known;	      /* every input is a regular file (no stream),
			       * so bytes_known is the whole */
	uint64_t records;     /* records parsed so far (about: counted a
			       * chunk at a time) */
} cdr_run_progress;

/*
 * A snapshot of a run under way. Unlike the rest of the run's API it may
 * be called from another thread while cdr_run_execute runs (the CLI polls
 * it from a timer thread); the counters are atomics the reader and the
 * workers bump once a read or a chunk, so polling costs the run nothing.
 */
void cdr_run_progress_get(const cdr_run *r, cdr_run_progress *p);

/* Name of reason code i ("malformed:start", "duplicate", ...), or NULL. */
const char *cdr_reason_name(int i);

/*
 * Render the totals CSV of tariff `k` (0-based) into a malloc'd buffer that
 * the caller frees. Byte-identical for the same inputs and tariff.
 */
int cdr_run_totals(const cdr_run *r, int k, char **buf, size_t *len);

/*
 * The breakdowns of a run made with opts.breakdown, after cdr_run_execute
 * (README, "Breakdown and report"), into malloc'd buffers the caller
 * frees; either output may be NULL (not made).
 * *csv: the breakdown CSV, of tariff 0 for rate; for a two-tariff run
 * the new side (tariff 1) with the old side's figures in old_* columns.
 * *html: the run report, one self-contained HTML page (inline CSS and
 * SVG, no script) of the same figures, headed by `nsummary` name/value
 * pairs summary[2 * i], summary[2 * i + 1].
 * Byte-identical for the same inputs and tariffs. 0, -EINVAL (no
 * breakdown collected) or -ENOMEM.
 */
int cdr_run_breakdown(const cdr_run *r, char **csv, size_t *csv_len,
		      const char *const *summary, int nsummary, char **html,
		      size_t *html_len);

/* The money columns of a totals file, voice_charge ... total. */
#define CDR_MONEY_COLUMNS 7

/* Control totals of a totals CSV: what a reader of the file would get by
 * adding up its columns, computed from the printed figures. */
typedef struct cdr_control {
	uint64_t accounts;    /* rows */
	uint64_t records;     /* sum of `records` */
	uint64_t late;	      /* sum of `late_records` */
	/* Sum of each money column, exact, printed with `decimals` places
	 * as the column is (SPEC 2). */
	char money[CDR_MONEY_COLUMNS][48];
} cdr_control;

/* Name of money column i of a totals file ("voice_charge", ...). */
const char *cdr_money_column(int i);

/*
 * Add up a totals CSV as cdr_run_totals renders it (header, then one row
 * an account). Returns 0, or -EINVAL for a text of another shape.
 */
int cdr_totals_control(const char *csv, size_t len, int decimals,
		       cdr_control *c);

/* ---- totals comparison (rerate, diff) -------------------------------- */

/*
 * The delta CSV of a two-tariff run (new - old), exactly what
 * cdr_diff_totals gives for the two sides' totals as cdr_run_totals
 * renders them, but from the figures directly, without printing and
 * reading them back. Report as in cdr_diff_totals. Caller frees *out.
 * Returns the count of accounts that moved (0: the tariffs agree), or a
 * negative errno.
 */
int cdr_run_delta(const cdr_run *r, int all, char **out, size_t *out_len,
		  FILE *report);

/*
 * Build the delta CSV between two totals CSV texts (as cdr_run_totals
 * writes them). `all` lists unchanged accounts too. Each row ends in a
 * `change` column: changed, added (new side only), removed (old side
 * only) or unchanged (with `all`). The report for standard error
 * (accounts changed: up, down, and with the same total though a column
 * moved; sums; largest moves) goes to `report` if not NULL. Returns the
 * count of accounts that moved (0: nothing did), or -EINVAL with a
 * message (malformed file, period mismatch); `name_old`/`name_new` label
 * messages.
 */
int cdr_diff_totals(const char *old_csv, size_t old_len, const char *name_old,
		    const char *new_csv, size_t new_len, const char *name_new,
		    int all, char **out, size_t *out_len, FILE *report,
		    char *err, size_t errlen);

/* ---- output files ---------------------------------------------------- */

/*
 * A set of outputs that appear together and whole, or not at all, and
 * that can never destroy an input.
 *
 *   cdr_outputs_create       an empty set
 *   cdr_outputs_add          an output: the option that named it and the
 *                            path as given ("-": standard output)
 *   cdr_outputs_protect      a path no output may touch (an input, the
 *                            tariff directory, ...)
 *   cdr_outputs_check        refuse collisions, before anything is read
 *   cdr_outputs_open         create every output now, so a run fails fast
 *   (the run writes rejects and itemize; cdr_outputs_write the totals)
 *   cdr_outputs_commit       all of them into place
 *   cdr_outputs_free         closes; removes what was not committed
 *
 * What an output is decides how it is written:
 *
 * - A regular file, or a name that does not exist yet: written to an
 *   unnamed temporary file (O_TMPFILE; a named `NAME.tmp.PID.N` made with
 *   O_EXCL where the file system has no O_TMPFILE) in the same directory,
 *   and renamed over the name at commit, so a reader sees the old file or
 *   the complete new one. An existing file's mode is kept (and its owner,
 *   when run as root). Other hard links of an old file keep the old data.
 * - A symbolic link: its target is replaced as above, the link stays; a
 *   link to a name that does not exist creates the target.
 * - A character or block device, FIFO or socket, "-" (standard output),
 *   a standard output redirected to a file: opened at cdr_outputs_open,
 *   never created, renamed or truncated. Its bytes go to an unnamed spool
 *   in $TMPDIR and are copied to it at commit, so it too gets nothing from
 *   a run that fails.
 *
 * Messages name the option and the path as given, never a temporary. A
 * set is used by one thread; only the run's workers write into the fds it
 * lends them. Functions return 0 (an id for cdr_outputs_add) or a negative
 * errno with a message in err.
 */
typedef struct cdr_outputs cdr_outputs;

int cdr_outputs_create(cdr_outputs **out);
/* Close everything; an uncommitted output leaves no trace: an unnamed
 * temporary vanishes, a named one is removed. NULL-safe. */
void cdr_outputs_free(cdr_outputs *o);

/* Add an output. `option` ("--rejects") labels its messages (NULL: the
 * path alone). Returns its id, >= 1, for cdr_outputs_write and the run's
 * opts; -ENOMEM, or -EINVAL once the set is open. Nothing is touched on
 * disk yet. */
int cdr_outputs_add(cdr_outputs *o, const char *option, const char *path,
		    char *err, size_t errlen);

/*
 * Protect `path`: no output may be it, or, when it is a directory, any
 * file in it or a new name in it. "-" protects what standard input is.
 * `what` names it in messages ("the input", "the tariff"). A path that
 * does not exist protects nothing (its reader will fail).
 */
int cdr_outputs_protect(cdr_outputs *o, const char *what, const char *path,
			char *err, size_t errlen);

/*
 * Compare the outputs with the protected paths and with each other: by
 * device and inode where a file exists (through symbolic links, so a link
 * or a hard link to an input is caught), by the resolved directory and
 * name where it does not. Several outputs on one character device (a null
 * device, a terminal) are allowed, but only one on "-". Returns 0, or
 * -EINVAL with a message such as "--out cdrs/a.csv: is also the input
 * 'cdrs/a.csv'" (a usage error: nothing has been read or created).
 */
int cdr_outputs_check(cdr_outputs *o, char *err, size_t errlen);

/*
 * Create every temporary and open every device, FIFO and standard output
 * (a FIFO blocks until it has a reader). Fails on the first output that
 * cannot be created: "--rejects out/r.csv: cannot create: No such file or
 * directory". Call once, after cdr_outputs_check.
 */
int cdr_outputs_open(cdr_outputs *o, char *err, size_t errlen);

/* Append `len` bytes to output `id` (not yet visible). */
int cdr_outputs_write(cdr_outputs *o, int id, const void *buf, size_t len,
		      char *err, size_t errlen);

/*
 * Put every output in place, all or nothing as far as the system allows:
 * first every temporary is fsynced and given a name, and every old file a
 * second name (a hard link) to fall back on; then devices, FIFOs and
 * standard output get their bytes; then the renames. A failure before the
 * renames leaves every old output untouched; a failing rename puts back
 * the outputs renamed before it. A signal that arrives meanwhile does the
 * same through cdr_cleanup_temps. Afterwards the set holds nothing to
 * clean up.
 */
int cdr_outputs_commit(cdr_outputs *o, char *err, size_t errlen);

/*
 * Write `len` bytes to `path` as a set of one output (messages name the
 * path): "-" or NULL writes to standard output.
 */
int cdr_write_file_atomic(const char *path, const void *buf, size_t len,
			  char *err, size_t errlen);

/*
 * Remove the named temporaries of every open output set and undo a commit
 * under way. Async-signal-safe (unlink and rename only): a handler of
 * SIGINT, SIGTERM and the like calls it, restores the default action and
 * raises the signal again, so an interrupted run leaves neither a
 * half-written file nor a stray temporary. Unnamed temporaries need
 * nothing: the kernel drops them with the process, even after SIGKILL.
 */
void cdr_cleanup_temps(void);

/* ---- shards: one run over many machines (cdrate shard) --------------- */

/*
 * The four stages of a sharded run (README "Shards"), each a pure function
 * of its inputs and parts under `dir`, every file written by temp +
 * rename and its marker last, so a task may be rerun:
 *
 *   cdr_shard_split  reader task part/parts: its share of the inputs, each
 *                    line to the id bucket of its duplicate key
 *   cdr_shard_dedup  id bucket `bucket`: duplicates meet; each key's lines
 *                    to the account bucket of the account its kept line
 *                    is charged to
 *   cdr_shard_rate   account bucket `bucket`: a run over its lines, the
 *                    totals of its accounts, its rejects and itemize
 *   cdr_shard_merge  the final outputs from every rate bucket's parts
 *
 * Placement: bucket = XXH3-64 (seed 0) of the key bytes (an account's
 * name) mod shards.
 */
typedef struct cdr_shard_opts {
	const char *dir;
	int shards;		/* N, >= 1 */
	int part, parts;	/* split: task part of parts */
	int bucket;		/* dedup, rate: 0 <= bucket < shards */
	/* split: the inputs as given (directories expand to their regular
	 * files by name, as cdr_run_add_input) and the format asked for. */
	const char *const *inputs;
	int ninputs;
	cdr_format format;
	const char *map_path;	/* for CDR_FORMAT_MAP */
	/* dedup, rate: the tariff, its fingerprint and the period. */
	cdr_tariff *tariff;
	const char *tariff_fp;	/* cdr_tariff_fingerprint's hex */
	int period_year, period_month;
	const char *input_timezone;
	int threads;		/* rate */
	cdr_io io;		/* rate */
	int itemize;		/* rate: write the itemize part */
	int breakdown;		/* rate: write the breakdown part */
	FILE *log;		/* notes; NULL: none */
} cdr_shard_opts;

/* Returned when a stage's parts are missing or belong to another run
 * (another N, M, tariff, period or input list): the message names which.
 * Outside errno's range. */
#define CDR_SHARD_REFUSED (-100000)

/* The bucket of a key, 0 <= b < shards: XXH3-64 (seed 0) of its n bytes
 * mod shards. Fixed: the same on every machine and in every version that
 * reads the same parts. */
uint32_t cdr_shard_bucket(const void *key, size_t n, int shards);

int cdr_shard_split(const cdr_shard_opts *o, char *err, size_t errlen);
int cdr_shard_dedup(const cdr_shard_opts *o, char *err, size_t errlen);
int cdr_shard_rate(const cdr_shard_opts *o, char *err, size_t errlen);

/* What the merge found: the summary's figures, as a single run's. */
typedef struct cdr_shard_result {
	cdr_run_stats st;	/* counts, reasons, files by format and
				   compression (times are zero) */
	uint32_t ninputs;
	uint64_t input_bytes;
	char inputs_fp[CDR_FINGERPRINT_HEX];
	char tariff_fp[CDR_FINGERPRINT_HEX];
	int decimals;		/* of the totals */
	int period_year, period_month;
	char **unplaced;	/* inputs auto could not place, NULL-ended;
				   freed by cdr_shard_result_free */
	char **input_paths;	/* [ninputs]: each input as named */
	uint64_t *input_sizes;	/* [ninputs]: its bytes as stored */
} cdr_shard_result;

/*
 * Merge every rate bucket's parts: the totals (rendered into *totals,
 * caller frees), and the rejects and itemize into outputs `rejects_id`
 * and `itemize_id` of the caller's open set `set` (0: not written; an
 * itemize asked for needs rate's itemize parts). The caller commits.
 */
int cdr_shard_merge(const cdr_shard_opts *o, cdr_outputs *set, int rejects_id,
		    int itemize_id, char **totals, size_t *totals_len,
		    cdr_shard_result *res, char *err, size_t errlen);
void cdr_shard_result_free(cdr_shard_result *res);

/*
 * The merged breakdown of every rate bucket's breakdown part (rate run
 * with o->breakdown), rendered as cdr_run_breakdown renders a single
 * run's: the CSV into *csv (NULL: not wanted) and the report page with
 * the summary's key/value pairs into *html (NULL: not wanted). Needs
 * o->tariff and o->tariff_fp (the rate tasks' tariff) and res, the
 * merge's result. Caller frees. CDR_SHARD_REFUSED when a bucket was rated
 * without the breakdown or with another tariff.
 */
int cdr_shard_merge_breakdown(const cdr_shard_opts *o,
			      const cdr_shard_result *res, char **csv,
			      size_t *csv_len, const char *const *summary,
			      int nsummary, char **html, size_t *html_len,
			      char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
