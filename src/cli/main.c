/*
 * main.c - the `cdrate` command: argument parsing, wiring, exit codes.
 *
 * A thin shell over the public API in include/cdrate/: it knows nothing of
 * the library's insides. Exit status: 0 success, 1 bad input that stopped
 * the run (tariff, unreadable file, I/O), 2 usage error, 3 a run past
 * --max-rejects (outputs written) or a diff with --exit-code that found
 * accounts that moved.
 *
 * Sections: usage - options - signals - outputs - progress - summary -
 * commands - main.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdrate/cdrate.h"

#define EXIT_BAD 1
#define EXIT_USAGE 2
#define EXIT_THRESHOLD 3 /* past --max-rejects; diff --exit-code: moved */
#define EXIT_PARTS 4	 /* shard: parts missing or of another run */

/* ---- usage ----------------------------------------------------------- */

static const char usage_main[] =
	"usage: cdrate COMMAND [OPTIONS]\n"
	"\n"
	"commands:\n"
	"  rate    rate one billing period's CDRs, write totals per account\n"
	"  check   load and validate a tariff, print what it holds\n"
	"  rerate  rate under an old and a new tariff, write what moved\n"
	"  diff    compare two totals files\n"
	"  explain rate one record step by step: why this price, or reject\n"
	"  shard   rate past one machine: split, dedup, rate, merge stages\n"
	"\n"
	"cdrate help COMMAND (or cdrate COMMAND --help) shows a command's\n"
	"options; cdrate --version (-V) the version. Exit status: 0 done,\n"
	"1 bad input that stopped the run, 2 usage error, 3 past\n"
	"--max-rejects (outputs written) or diff --exit-code found moves;\n"
	"4 (shard) parts missing or made by another run.\n";

static const char usage_rate[] =
	"usage: cdrate rate --tariff DIR --period YYYY-MM [--subscribers FILE]\n"
	"                   [-o|--out FILE] [--rejects FILE] [--itemize FILE]\n"
	"                   [--summary-json FILE] [--max-rejects N|P%]\n"
	"                   [--breakdown FILE] [--report FILE.html]\n"
	"                   [--threads N] [--io uring|read] [--format FMT]\n"
	"                   [--input-timezone NAME] INPUT...\n"
	"\n"
	"  INPUT            a CDR file, a directory (its regular files, by "
	"name) or -\n"
	"  --tariff DIR     tariff directory (tariff.conf, zones.csv, ...)\n"
	"  --period YYYY-MM billing month, local time of the tariff\n"
	"  --subscribers F  subscribers file instead of DIR/subscribers.csv\n"
	"  -o, --out FILE   totals CSV (default: standard output)\n"
	"  --rejects FILE   rejected lines, each with its reason\n"
	"  --itemize FILE   one line per rated record\n"
	"  --summary-json FILE  the summary as one JSON object\n"
	"  --breakdown FILE the run broken down (CSV): charge, allowance\n"
	"                   credit and records per service, plan, zone and\n"
	"                   band; rounding and monthly lines that make it add\n"
	"                   up to the totals; records by local hour and day;\n"
	"                   rejects by reason and by input\n"
	"  --report FILE    the same as one self-contained HTML page (charts\n"
	"                   in inline SVG, no script), for a mail or a browser\n"
	"  --max-rejects N|P%  more rejects (unanswered calls aside) than N,\n"
	"                   or than P% of the records read: outputs are\n"
	"                   still written, the run exits 3\n"
	"                   (an output FILE may be - for standard output, a\n"
	"                   device or a FIFO; it may not be an input)\n"
	"  --threads N      worker threads (default: online CPUs)\n"
	"  --io uring|read  I/O path (default uring, falls back to read)\n"
	"  --format FMT     auto (default: per input, from its first line),\n"
	"                   native, asterisk, asterisk-custom, freeswitch,\n"
	"                   or map:FILE (a column map)\n"
	"  --input-timezone NAME  zone of naive stamps in the inputs (default:\n"
	"                   the tariff's), e.g. UTC for Asterisk usegmtime\n"
	"  --tariff-cache FILE  a compiled image of the tariff's subscriber\n"
	"                   tables: mapped when it matches the tariff's files,\n"
	"                   else (re)written after the load (a file, never an\n"
	"                   input; a failure to write it is a warning)\n";

static const char usage_check[] =
	"usage: cdrate check --tariff DIR [--subscribers FILE]\n"
	"                    [--list subscribers|zones|rates]\n"
	"                    [--tariff-cache FILE]\n"
	"\n"
	"  Loads and validates a tariff; prints its settings, counts, the\n"
	"  band grid and the outages (local time), and warns about holes (a\n"
	"  plan with no rate for a service and zone its subscribers may\n"
	"  call). --list prints one full list instead. --tariff-cache FILE\n"
	"  as for rate: used when it matches, else written.\n";

static const char usage_rerate[] =
	"usage: cdrate rerate --tariff OLD --new-tariff NEW --period YYYY-MM\n"
	"                     [options of rate] [--old-out FILE] "
	"[--new-out FILE]\n"
	"                     [--all] [--exit-code] INPUT...\n"
	"\n"
	"  Rates every input once under both tariffs and writes a delta CSV\n"
	"  (new - old) per account whose totals differ (--all: every "
	"account),\n"
	"  its last column `change`: changed, added, removed, unchanged.\n"
	"  --rejects and --itemize describe the new side; --exit-code: exit\n"
	"  3 when any account moved.\n"
	"  --tariff-cache FILE, --new-tariff-cache FILE  the images of the\n"
	"                   old and the new tariff (as for rate)\n"
	"  --breakdown FILE  the new side's breakdown, the old side's\n"
	"                   figures in old_* columns\n"
	"  --report FILE    its page, with accounts up and down, a histogram\n"
	"                   of the deltas and the top movers both ways\n";

static const char usage_diff[] =
	"usage: cdrate diff OLD_TOTALS NEW_TOTALS [-o|--out FILE] [--all]\n"
	"                   [--exit-code]\n"
	"\n"
	"  Compares two totals files (either may be - for standard input)\n"
	"  and writes the delta CSV of rerate. --exit-code: exit 3 when any\n"
	"  account moved (1 stays bad input).\n";

/* The command a usage text is of: "rate" from "usage: cdrate rate ...". */
static const char usage_shard[] =
	"usage: cdrate shard split --dir DIR --shards N --part k/M [--format FMT]\n"
	"                          INPUT...\n"
	"       cdrate shard dedup --dir DIR --shards N --bucket k --tariff DIR\n"
	"                          --period YYYY-MM [--subscribers FILE]\n"
	"                          [--input-timezone NAME]\n"
	"       cdrate shard rate  --dir DIR --shards N --bucket k --tariff DIR\n"
	"                          --period YYYY-MM [--subscribers FILE]\n"
	"                          [--input-timezone NAME] [--threads N]\n"
	"                          [--io uring|read] [--itemize] [--breakdown]\n"
	"       cdrate shard merge --dir DIR --shards N [-o|--out FILE]\n"
	"                          [--rejects FILE] [--itemize FILE]\n"
	"                          [--summary-json FILE] [--max-rejects N|P%]\n"
	"                          [--tariff DIR [--subscribers FILE]\n"
	"                           [--breakdown FILE] [--report FILE.html]]\n"
	"\n"
	"One `cdrate rate` cut into tasks any scheduler can run (Slurm array,\n"
	"Kubernetes Indexed Job); together they write exactly its outputs.\n"
	"Indices are 0-based. Every task reads and writes under --dir only,\n"
	"by temp + rename, its marker last; a task may be rerun.\n"
	"\n"
	"  split   reader task k of M: inputs j with j mod M == k (the same\n"
	"          INPUT list to every task), each line to the id bucket of\n"
	"          its duplicate key; marker DIR/split/part-k.ok\n"
	"  dedup   id bucket k: needs every split part; duplicates resolved,\n"
	"          each id's lines to its account's bucket;\n"
	"          marker DIR/dedup/bucket-k.ok\n"
	"  rate    account bucket k: needs every dedup bucket; its totals,\n"
	"          rejects (and with --itemize itemize, with --breakdown the\n"
	"          breakdown's exact sums) parts; marker DIR/rate/bucket-k.ok\n"
	"  merge   needs every rate bucket; the final outputs and summary, as\n"
	"          cdrate rate writes them; --breakdown and --report need the\n"
	"          rate tasks' --tariff (and --subscribers) and every bucket\n"
	"          rated with --breakdown\n"
	"\n"
	"  --dir DIR      the parts (shared by every task)\n"
	"  --shards N     buckets, 1..4096, the same for every stage\n"
	"  --part k/M     split: this task k of M reader tasks\n"
	"  --bucket k     dedup, rate: 0 <= k < N\n"
	"  other options as for cdrate rate (cdrate help rate)\n"
	"\n"
	"Bucket of a key: XXH3-64 (seed 0) of its bytes, mod N. Exit status:\n"
	"0 done, 1 bad input, 2 usage error, 3 past --max-rejects (merge;\n"
	"outputs written), 4 parts missing or made by another run (another\n"
	"N, M, format, tariff, period or input list).\n";

static int usage_cmd(const char *usage, const char **name)
{
	const char *p = strstr(usage, "cdrate ");
	if (!p)
		return 0;
	*name = p + 7;
	return (int)strcspn(*name, " \n");
}

/* Where to read on: "see 'cdrate rate --help'" (or the main usage). */
static void see_help(const char *usage)
{
	const char *name;
	int n = usage_cmd(usage, &name);
	if (n && strncmp(name, "COMMAND", (size_t)n) != 0)
		fprintf(stderr, "cdrate: see 'cdrate %.*s --help'\n", n, name);
	else
		fputs("cdrate: see 'cdrate --help'\n", stderr);
}

/* "cdrate: WHAT 'ARG'" (ARG may be NULL) and where to read on: one line
 * that says what is wrong, not the whole usage; exit 2. */
static int usage_error(const char *usage, const char *what, const char *arg)
{
	if (arg)
		fprintf(stderr, "cdrate: %s '%s'\n", what, arg);
	else
		fprintf(stderr, "cdrate: %s\n", what);
	see_help(usage);
	return EXIT_USAGE;
}

/* ---- options --------------------------------------------------------- */

typedef struct opts {
	const char *tariff, *new_tariff, *period, *subscribers;
	const char *out, *rejects, *itemize, *old_out, *new_out, *io;
	const char *threads, *format, *input_tz, *summary_json;
	const char *max_rejects, *list, *breakdown, *report;
	const char *dir, *shards, *part, *bucket; /* shard */
	const char *line, *subscriber, *destination, *start; /* explain */
	const char *duration, *volume, *service;
	const char *tariff_cache, *new_tariff_cache;
	int all, exit_code; /* flags */
	const char **inputs;
	int ninputs;
} opts;

typedef struct optdef {
	const char *name;
	size_t off; /* offset of the const char * field, or of the int flag */
	int flag;
} optdef;

#define OPT(n, f) {n, offsetof(opts, f), 0}
#define FLAG(n, f) {n, offsetof(opts, f), 1}
static const optdef optdefs[] = {
	OPT("--tariff", tariff),	   OPT("--new-tariff", new_tariff),
	OPT("--period", period),	   OPT("--subscribers", subscribers),
	OPT("--out", out),		   OPT("--rejects", rejects),
	OPT("--itemize", itemize),	   OPT("--old-out", old_out),
	OPT("--new-out", new_out),	   OPT("--io", io),
	OPT("--threads", threads),	   OPT("--format", format),
	OPT("--input-timezone", input_tz),
	OPT("--summary-json", summary_json),
	OPT("--max-rejects", max_rejects), OPT("--list", list),
	OPT("--breakdown", breakdown),	   OPT("--report", report),
	OPT("--line", line),		   OPT("--subscriber", subscriber),
	OPT("--destination", destination), OPT("--start", start),
	OPT("--duration", duration),	   OPT("--volume", volume),
	OPT("--service", service),
	OPT("--dir", dir),		   OPT("--shards", shards),
	OPT("--part", part),		   OPT("--bucket", bucket),
	OPT("--tariff-cache", tariff_cache),
	OPT("--new-tariff-cache", new_tariff_cache),
	FLAG("--all", all),		   FLAG("--exit-code", exit_code),
};
#define NOPTDEFS (sizeof(optdefs) / sizeof(*optdefs))

/* Short forms: one letter for the options typed most. */
static const char *long_name(const char *a)
{
	return !strcmp(a, "-o") ? "--out" : a;
}

/* Edit distance (insert, delete, substitute) of two option names, for
 * "did you mean"; names are short, so the table stays small. */
static size_t edit_distance(const char *a, size_t na, const char *b)
{
	size_t nb = strlen(b), row[64];
	if (na >= 63 || nb >= 63)
		return (size_t)-1;
	for (size_t j = 0; j <= nb; j++)
		row[j] = j;
	for (size_t i = 1; i <= na; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= nb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

/* The allowed option nearest to a[0..n), when it is near enough to be a
 * typo (at most 2 edits, fewer than half the name); NULL otherwise. */
static const char *nearest(const char *a, size_t n,
			   const char *const *allowed)
{
	static const char *const always[] = {"--help", "--version", NULL};
	const char *best = NULL;
	size_t bd = 3;
	for (int pass = 0; pass < 2; pass++)
		for (const char *const *k = pass ? always : allowed; *k; k++) {
			size_t d = edit_distance(a, n, *k);
			if (d < bd && 2 * d < n) {
				bd = d;
				best = *k;
			}
		}
	return best;
}

/*
 * Parse argv into o. `allowed` lists the option names valid for the
 * command (flags among them). An option takes its value from `--opt=V`
 * or the next argument; a next argument that is itself an option
 * (`--tariff --period 2026-10`) means the value is missing (a value that
 * starts with -- can be given as --opt=V). An option given twice is an
 * error: which one would win is a guess. Returns 0, or an exit code
 * (help printed: -1, usage error).
 */
static int parse_opts(int argc, char **argv, opts *o, const char *usage,
		      const char *const *allowed)
{
	char seen[NOPTDEFS] = {0};
	memset(o, 0, sizeof(*o));
	o->inputs = calloc((size_t)argc + 1, sizeof(char *));
	if (!o->inputs)
		return EXIT_BAD;
	for (int i = 0; i < argc; i++) {
		const char *a = long_name(argv[i]);
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return -1;
		}
		if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			printf("cdrate %s\n", CDR_VERSION_STRING);
			return -1;
		}
		if (!strcmp(a, "--")) {
			while (++i < argc)
				o->inputs[o->ninputs++] = argv[i];
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			o->inputs[o->ninputs++] = a;
			continue;
		}
		const char *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		size_t d = NOPTDEFS;
		for (const char *const *k = allowed; *k; k++)
			if (strlen(*k) == n && !strncmp(*k, a, n))
				for (size_t j = 0; j < NOPTDEFS; j++)
					if (!strcmp(optdefs[j].name, *k))
						d = j;
		if (d == NOPTDEFS) {
			const char *near = nearest(a, n, allowed);
			fprintf(stderr, "cdrate: unknown option '%.*s'", (int)n,
				a);
			if (near)
				fprintf(stderr, "; did you mean %s?", near);
			fputc('\n', stderr);
			see_help(usage);
			return EXIT_USAGE;
		}
		if (seen[d]++) {
			fprintf(stderr, "cdrate: %s given twice\n",
				optdefs[d].name);
			see_help(usage);
			return EXIT_USAGE;
		}
		if (optdefs[d].flag) {
			if (eq)
				return usage_error(usage, "this option takes no value:",
						   a);
			*(int *)((char *)o + optdefs[d].off) = 1;
			continue;
		}
		const char *v = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "cdrate: %s needs a value\n",
				optdefs[d].name);
			see_help(usage);
			return EXIT_USAGE;
		}
		if (!eq && v[0] == '-' && v[1] == '-') {
			fprintf(stderr,
				"cdrate: %s needs a value; the next argument "
				"is the option '%s'\n",
				optdefs[d].name, v);
			see_help(usage);
			return EXIT_USAGE;
		}
		if (!eq)
			i++;
		*(const char **)((char *)o + optdefs[d].off) = v;
	}
	return 0;
}

static int parse_period(const char *s, int *y, int *m)
{
	if (!s || strlen(s) != 7 || s[4] != '-')
		return -1;
	for (int i = 0; i < 7; i++)
		if (i != 4 && (s[i] < '0' || s[i] > '9'))
			return -1;
	*y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	     (s[3] - '0');
	*m = (s[5] - '0') * 10 + (s[6] - '0');
	return *y >= 1970 && *y <= 9999 && *m >= 1 && *m <= 12 ? 0 : -1;
}

/* ---- signals --------------------------------------------------------- */

static void on_signal(int sig)
{
	cdr_cleanup_temps();
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * The signals that end a run get a handler that removes its temporaries
 * first, except those the caller ignores: `nohup` (SIGHUP) and
 * `trap '' INT` say "keep running", and an ignored signal stays ignored.
 * SIGPIPE and SIGXFSZ come from our own writes (a reader that went away,
 * a file size limit): ignored, they turn into EPIPE and EFBIG, which the
 * write reports ("standard output: Broken pipe", exit 1) on the way out
 * that removes the temporaries, instead of a silent death by signal.
 */
static void catch_signals(void)
{
	static const int fatal[] = {SIGINT,  SIGTERM, SIGHUP,
				    SIGALRM, SIGUSR1, SIGUSR2};
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(*fatal); i++)
		sigaddset(&sa.sa_mask, fatal[i]);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(*fatal); i++)
		if (!sigaction(fatal[i], NULL, &old) &&
		    old.sa_handler != SIG_IGN)
			sigaction(fatal[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
}

/*
 * A closed descriptor 0, 1 or 2 would be handed to the next file opened
 * (a tariff file, a temporary), and the totals or the summary would land
 * in it. Fill the hole with /dev/null opened read-only: a read gives end
 * of file, a write fails with EBADF, which is what a closed descriptor
 * says; the outputs refuse a read-only standard output before anything
 * is rated.
 */
static void fill_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDONLY);
			if (n >= 0 && n != fd) { /* a lower one was free */
				dup2(n, fd);
				close(n);
			}
		}
}

/* ---- outputs ---------------------------------------------------------- */

/* Ids of a command's outputs in its cdr_outputs set (0: not written). */
enum { O_OUT, O_REJECTS, O_ITEMIZE, O_OLD, O_NEW, O_JSON, O_BREAKDOWN,
       O_REPORT, O_CACHE, O_NEW_CACHE, O_N };

/*
 * The outputs of rate, rerate (rerate), diff (diff) or check (check: its
 * caches alone), with the tariff caches when `caches` is set, checked
 * against everything the command reads and each other. 0, or the exit
 * code after the message.
 */
static int outputs_build(const opts *o, int rerate, int diff, int check,
			 int caches, cdr_outputs **set, int *ids)
{
	char err[CDR_ERR_MAX];
	const int run = !check;
	const struct {
		int id;
		const char *option, *path;
	} outs[] = {
		{O_OUT, "--out", !run ? NULL : o->out ? o->out : "-"},
		{O_REJECTS, "--rejects", diff || !run ? NULL : o->rejects},
		{O_ITEMIZE, "--itemize", diff || !run ? NULL : o->itemize},
		{O_OLD, "--old-out", rerate ? o->old_out : NULL},
		{O_NEW, "--new-out", rerate ? o->new_out : NULL},
		{O_JSON, "--summary-json", diff || !run ? NULL : o->summary_json},
		{O_BREAKDOWN, "--breakdown", diff || !run ? NULL : o->breakdown},
		{O_REPORT, "--report", diff || !run ? NULL : o->report},
		{O_CACHE, "--tariff-cache", caches ? o->tariff_cache : NULL},
		{O_NEW_CACHE, "--new-tariff-cache",
		 caches && rerate ? o->new_tariff_cache : NULL},
	};
	int rc = cdr_outputs_create(set);
	memset(ids, 0, O_N * sizeof(*ids));
	for (size_t i = 0; !rc && i < sizeof(outs) / sizeof(*outs); i++)
		if (outs[i].path && (ids[outs[i].id] = cdr_outputs_add(
					     *set, outs[i].option, outs[i].path,
					     err, sizeof(err))) < 0)
			rc = ids[outs[i].id];
	if (!rc && o->tariff)
		rc = cdr_outputs_protect(*set, "the tariff", o->tariff, err,
					 sizeof(err));
	if (!rc && o->new_tariff)
		rc = cdr_outputs_protect(*set, "the new tariff", o->new_tariff,
					 err, sizeof(err));
	if (!rc && o->subscribers)
		rc = cdr_outputs_protect(*set, "the --subscribers file",
					 o->subscribers, err, sizeof(err));
	if (!rc && o->format && !strncmp(o->format, "map:", 4))
		rc = cdr_outputs_protect(*set, "the column map", o->format + 4,
					 err, sizeof(err));
	for (int i = 0; !rc && i < o->ninputs; i++)
		rc = cdr_outputs_protect(*set, "the input", o->inputs[i], err,
					 sizeof(err));
	if (rc) {
		fprintf(stderr, "cdrate: %s\n", err);
		return EXIT_BAD;
	}
	if (cdr_outputs_check(*set, err, sizeof(err))) {
		fprintf(stderr, "cdrate: %s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

/*
 * A tariff cache is a file cdrate replaces: never standard output, a
 * device, a FIFO, a socket or a directory, and (outputs_build) never an
 * input, a file of a tariff or another output. Refused before anything
 * is read, as a colliding output is; 0 or the exit code.
 */
static int caches_check(const opts *o, int rerate, int check)
{
	const char *opt[2] = {"--tariff-cache", "--new-tariff-cache"};
	const char *path[2] = {o->tariff_cache,
			       rerate ? o->new_tariff_cache : NULL};
	struct stat st;
	if (!path[0] && !path[1])
		return 0;
	for (int k = 0; k < 2; k++) {
		if (!path[k])
			continue;
		if (!strcmp(path[k], "-") ||
		    (!stat(path[k], &st) && !S_ISREG(st.st_mode))) {
			fprintf(stderr,
				"cdrate: %s %s: not a regular file (a tariff "
				"cache is a file that cdrate replaces)\n",
				opt[k], path[k]);
			return EXIT_USAGE;
		}
	}
	cdr_outputs *set = NULL;
	int ids[O_N];
	int rc = outputs_build(o, rerate, 0, check, 1, &set, ids);
	cdr_outputs_free(set);
	return rc;
}

/* The outputs of a run, its caches checked first. */
static int outputs_prepare(const opts *o, int rerate, int diff,
			   cdr_outputs **set, int *ids)
{
	int rc = diff ? 0 : caches_check(o, rerate, 0);
	return rc ? rc : outputs_build(o, rerate, diff, 0, 0, set, ids);
}

/* Create every output now, so that a run that could not write them
 * fails before it rates; 0 or EXIT_BAD. */
static int outputs_open(cdr_outputs *set)
{
	char err[CDR_ERR_MAX];
	if (cdr_outputs_open(set, err, sizeof(err))) {
		fprintf(stderr, "cdrate: %s\n", err);
		return EXIT_BAD;
	}
	return 0;
}

/* Write the rendered outputs (ids[k] with bufs[k], 0 ids skipped) and
 * commit the whole set; 0 or EXIT_BAD. */
static int outputs_commit(cdr_outputs *set, const int *ids,
			  char *const *bufs, const size_t *lens, int n)
{
	char err[CDR_ERR_MAX];
	for (int k = 0; k < n; k++)
		if (ids[k] && cdr_outputs_write(set, ids[k], bufs[k], lens[k],
						err, sizeof(err))) {
			fprintf(stderr, "cdrate: %s\n", err);
			return EXIT_BAD;
		}
	if (cdr_outputs_commit(set, err, sizeof(err))) {
		fprintf(stderr, "cdrate: %s\n", err);
		return EXIT_BAD;
	}
	return 0;
}

/* ---- progress --------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Progress goes to a terminal only: a log file or a pipe gets the
 * summary alone, never carriage returns. Decided once, in main. */
static int progress_on;

/* "cdrate: WHAT..." on the progress line, while a stage with no counter
 * runs (loading the tariff, making the totals). */
static void progress_word(const char *what)
{
	if (progress_on) {
		fprintf(stderr, "\rcdrate: %s...\033[K", what);
		fflush(stderr);
	}
}

static void progress_clear(void)
{
	if (progress_on) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

/* 1234567 as "1.2M": a progress line is read at a glance. */
static void human(char *b, size_t n, double v, const char *unit)
{
	const char *sfx[] = {"", "k", "M", "G", "T"};
	int k = 0;
	while (v >= 1000 && k < 4) {
		v /= 1000;
		k++;
	}
	snprintf(b, n, k ? "%.1f%s%s" : "%.0f%s%s", v, sfx[k], unit);
}

typedef struct ticker {
	const cdr_run *r;
	pthread_t th;
	atomic_int stop;
	int started;
} ticker;

static void tick(const cdr_run *r, double t0)
{
	cdr_run_progress p;
	cdr_run_progress_get(r, &p);
	if (p.stage == CDR_STAGE_DUPLICATES) {
		progress_word("resolving duplicates");
		return;
	}
	if (p.stage != CDR_STAGE_READING)
		return;
	double el = now() - t0;
	char recs[32], rate[32], bytes[32], known[32];
	human(recs, sizeof(recs), (double)p.records, " records");
	human(rate, sizeof(rate), el > 0 ? (double)p.records / el : 0,
	      " records/s");
	human(bytes, sizeof(bytes), (double)p.bytes_done, "B");
	human(known, sizeof(known), (double)p.bytes_known, "B");
	if (p.all_known && p.bytes_known) {
		double f = (double)p.bytes_done / (double)p.bytes_known;
		if (f > 1)
			f = 1;
		fprintf(stderr, "\rcdrate: %3.0f%% of %s, %s, %s", f * 100,
			known, recs, rate);
		if (f > 0.01 && f < 1)
			fprintf(stderr, ", ETA %.0f s", el * (1 - f) / f);
	} else {
		fprintf(stderr, "\rcdrate: %s read, %s, %s", bytes, recs, rate);
	}
	fputs("\033[K", stderr);
	fflush(stderr);
}

/* The timer thread: a progress line twice a second from the run's
 * counters (cdr_run_progress_get may be called while the run executes). */
static void *ticker_main(void *arg)
{
	ticker *tk = arg;
	double t0 = now(), last = 0;
	while (!atomic_load(&tk->stop)) {
		double t = now();
		if (t - last >= 0.5) {
			tick(tk->r, t0);
			last = t;
		}
		struct timespec ts = {0, 50000000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void ticker_start(ticker *tk, const cdr_run *r)
{
	tk->r = r;
	atomic_init(&tk->stop, 0);
	tk->started = progress_on && !pthread_create(&tk->th, NULL,
						     ticker_main, tk);
}

static void ticker_stop(ticker *tk)
{
	if (!tk->started)
		return;
	atomic_store(&tk->stop, 1);
	pthread_join(tk->th, NULL);
	tk->started = 0;
	progress_clear();
}

/* ---- summary --------------------------------------------------------- */

/*
 * --max-rejects N or P%: the limit as a count, or as a percentage in
 * millionths of a percent (exact: "0.5%" is 500000). 0 or -1.
 */
typedef struct limit {
	int set, percent;
	uint64_t n; /* count, or millionths of a percent */
} limit;

static int parse_limit(const char *s, limit *l)
{
	size_t len = strlen(s), i = 0, frac = 0;
	int point = 0;
	uint64_t v = 0;
	memset(l, 0, sizeof(*l));
	l->percent = len && s[len - 1] == '%';
	len -= (size_t)l->percent;
	if (!len)
		return -1;
	for (; i < len; i++) {
		if (s[i] == '.' && !point && l->percent && i && i + 1 < len) {
			point = 1;
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || v > UINT64_MAX / 100 ||
		    (point && ++frac > 6))
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (l->percent) {
		for (; frac < 6; frac++)
			v *= 10;
		if (v > 100000000u)
			return -1;
	}
	l->set = 1;
	l->n = v;
	return 0;
}

/* Everything the summary says that the run does not hold. */
typedef struct run_info {
	const char *cmd;
	const opts *o;
	double t_start, load, totals, write;
	int nt;
	char fp[2][CDR_FINGERPRINT_HEX];
	unsigned fp_files[2];
	int have_fp[2]; /* taken before the load, for a cache */
	/* --tariff-cache, --new-tariff-cache: what became of each */
	const char *cache[2];
	int cache_used[2], cache_written[2];
	double cache_seconds[2];
	char cache_why[2][CDR_ERR_MAX + 32];
	/* a write under way beside the run (cache_join ends it) */
	int cache_pending[2], cache_joined;
	double cache_wait; /* of the run, at the join: after its own work */
	cdr_tariff_cache_job *cache_job[2];
	char cache_err[2][CDR_ERR_MAX];
	int have_ctl;
	cdr_control ctl;
	limit max;
	int exceeded;
	char why[256];
	char warn[8][256];
	int nwarn;
} run_info;

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

/*
 * The warnings and the --max-rejects verdict, from the run's counters.
 * "Most" is more than half: a run where most records fall after the
 * period, or most rated ones are late, was almost surely given the wrong
 * --period; one reason taking most records is a wrong tariff or format.
 * Unanswered calls are a normal outcome of a switch and count for none.
 */
static void judge_stats(const cdr_run_stats *stp, run_info *in)
{
	const cdr_run_stats st = *stp;
	uint64_t base = st.read - st.unanswered;
	uint64_t errors = st.rejected - st.unanswered;
	const char *period = in->o->period;
	in->nwarn = 0;
	for (int i = 1; i < CDR_REASON_MAX && cdr_reason_name(i); i++) {
		const char *name = cdr_reason_name(i);
		uint64_t n = st.by_reason[i];
		if (!strcmp(name, "unanswered") || 2 * n <= base || in->nwarn >= 8)
			continue;
		if (!strcmp(name, "after_period"))
			snprintf(in->warn[in->nwarn++], sizeof(in->warn[0]),
				 "%llu of %llu records (%.0f%%) start after "
				 "the period %s: is --period right?",
				 (unsigned long long)n, (unsigned long long)base,
				 pct(n, base), period);
		else
			snprintf(in->warn[in->nwarn++], sizeof(in->warn[0]),
				 "%llu of %llu records (%.0f%%) were rejected "
				 "%s",
				 (unsigned long long)n, (unsigned long long)base,
				 pct(n, base), name);
	}
	if (in->have_ctl && 2 * in->ctl.late > in->ctl.records &&
	    in->nwarn < 8)
		snprintf(in->warn[in->nwarn++], sizeof(in->warn[0]),
			 "%llu of %llu rated records (%.0f%%) started before "
			 "the period %s and were billed as late: is --period "
			 "right?",
			 (unsigned long long)in->ctl.late,
			 (unsigned long long)in->ctl.records,
			 pct(in->ctl.late, in->ctl.records), period);
	if (!in->max.set)
		return;
	/* errors / read > P / 100, in integers: errors * 100 * 10^6 >
	 * P_millionths * read. */
	if (in->max.percent)
		in->exceeded = (unsigned __int128)errors * 100000000u >
			       (unsigned __int128)in->max.n * st.read;
	else
		in->exceeded = errors > in->max.n;
	if (in->exceeded)
		snprintf(in->why, sizeof(in->why),
			 "%llu records rejected (%.2f%% of %llu read, "
			 "unanswered calls aside), past --max-rejects %s",
			 (unsigned long long)errors, pct(errors, st.read),
			 (unsigned long long)st.read, in->o->max_rejects);
}

static void judge(const cdr_run *r, run_info *in)
{
	cdr_run_stats st;
	cdr_run_stats_get(r, &st);
	judge_stats(&st, in);
}

/* The outputs as "--out t.csv, --rejects r.csv" (standard output named). */
static void outputs_named(const opts *o, char *b, size_t n)
{
	const struct {
		const char *opt, *path;
	} outs[] = {{"--out", o->out ? o->out : "-"}, {"--rejects", o->rejects},
		    {"--itemize", o->itemize}, {"--old-out", o->old_out},
		    {"--new-out", o->new_out},
		    {"--summary-json", o->summary_json},
		    {"--breakdown", o->breakdown}, {"--report", o->report}};
	size_t k = 0;
	b[0] = '\0';
	for (size_t i = 0; i < sizeof(outs) / sizeof(*outs) && k < n; i++)
		if (outs[i].path)
			k += (size_t)snprintf(b + k, n - k, "%s%s %s",
					      k ? ", " : "", outs[i].opt,
					      strcmp(outs[i].path, "-")
						      ? outs[i].path
						      : "(standard output)");
}

/* What became of tariff k's cache, on standard error. */
static void cache_line(const run_info *in, int k)
{
	if (!in->cache[k])
		return;
	const char *opt = k ? "--new-tariff-cache" : "--tariff-cache";
	if (in->cache_used[k])
		fprintf(stderr, "cdrate: %s %s: used\n", opt, in->cache[k]);
	else if (in->cache_written[k])
		fprintf(stderr, "cdrate: %s %s: written in %.3f s (%s)\n", opt,
			in->cache[k], in->cache_seconds[k], in->cache_why[k]);
	else
		fprintf(stderr, "cdrate: %s %s: not written (%s)\n", opt,
			in->cache[k], in->cache_why[k]);
}

/* The run's summary on standard error. */
static void summary(const cdr_run *r, const run_info *in)
{
	cdr_run_stats st;
	cdr_run_stats_get(r, &st);
	double wall = now() - in->t_start;
	fprintf(stderr,
		"cdrate: done in %.3f s: tariff %.3f s, read+parse+rate "
		"%.3f s, sums %.3f s, duplicates %.3f s, totals %.3f s, "
		"writing %.3f s",
		wall, in->load, st.pass_seconds, st.sums_seconds,
		st.dup_seconds, in->totals, in->write);
	/* The image is written beside the pass: only the wait for it at
	 * the end is the run's (its own time is on its line below). */
	if (in->cache_joined)
		fprintf(stderr, ", waiting for the tariff cache %.3f s",
			in->cache_wait);
	fputc('\n', stderr);
	fprintf(stderr, "cdrate: %llu records read, %llu rated, %llu rejected",
		(unsigned long long)st.read, (unsigned long long)st.rated,
		(unsigned long long)st.rejected);
	if (in->have_ctl)
		fprintf(stderr, ", %llu late", (unsigned long long)in->ctl.late);
	fprintf(stderr, " (%.0f records/s)\n",
		wall > 0 ? (double)st.read / wall : 0.0);
	for (int i = 1; i < CDR_REASON_MAX && cdr_reason_name(i); i++)
		if (st.by_reason[i] &&
		    strcmp(cdr_reason_name(i), "unanswered") != 0)
			fprintf(stderr, "cdrate:   %-24s %llu\n",
				cdr_reason_name(i),
				(unsigned long long)st.by_reason[i]);
	/* Unanswered calls are a normal outcome of a switch, not bad data. */
	if (st.unanswered)
		fprintf(stderr,
			"cdrate: %llu unanswered (not billable), %llu "
			"rejected as errors\n",
			(unsigned long long)st.unanswered,
			(unsigned long long)(st.rejected - st.unanswered));
	/* Files per format, e.g. "files by format: 2 native, 1 asterisk". */
	const char *sep = "cdrate: files by format: ";
	for (int f = CDR_FORMAT_NATIVE; f < CDR_FORMAT_N; f++)
		if (st.files[f]) {
			fprintf(stderr, "%s%llu %s", sep,
				(unsigned long long)st.files[f],
				cdr_format_name((cdr_format)f));
			sep = ", ";
		}
	if (sep[0] == ',')
		fputc('\n', stderr);
	/* Files per compression, e.g. "files by compression: 3 plain,
	 * 1 gzip, 1 zstd". */
	sep = "cdrate: files by compression: ";
	for (int c = 0; c < CDR_NCOMP; c++)
		if (st.files_by_comp[c]) {
			fprintf(stderr, "%s%llu %s", sep,
				(unsigned long long)st.files_by_comp[c],
				cdr_comp_name(c));
			sep = ", ";
		}
	if (sep[0] == ',')
		fputc('\n', stderr);
	const char *path;
	cdr_format fmt;
	int unplaced;
	uint64_t bytes = 0;
	uint32_t nin = 0;
	for (; (path = cdr_run_input(r, nin, &fmt, &unplaced)); nin++) {
		bytes += cdr_run_input_bytes(r, nin);
		if (unplaced)
			fprintf(stderr,
				"cdrate: %s: format not recognised, read as "
				"native\n",
				strcmp(path, "-") ? path : "standard input");
	}
	if (in->have_ctl) {
		fprintf(stderr, "cdrate: %llu accounts written\n",
			(unsigned long long)in->ctl.accounts);
		fputs("cdrate: control totals:", stderr);
		for (int i = 0; i < CDR_MONEY_COLUMNS; i++)
			fprintf(stderr, "%s %s %s", i ? "," : "",
				cdr_money_column(i), in->ctl.money[i]);
		fputc('\n', stderr);
	}
	for (int k = 0; k < in->nt; k++)
		fprintf(stderr,
			"cdrate: %s %s: %u files, fingerprint xxh3-128:%s\n",
			k ? "new tariff" : "tariff",
			k ? in->o->new_tariff : in->o->tariff, in->fp_files[k],
			in->fp[k]);
	for (int k = 0; k < in->nt; k++)
		cache_line(in, k);
	char fp[CDR_FINGERPRINT_HEX];
	cdr_run_fingerprint(r, fp);
	fprintf(stderr,
		"cdrate: inputs: %u files, %llu bytes, fingerprint "
		"xxh3-128:%s\n",
		nin, (unsigned long long)bytes, fp);
	char outs[1024];
	outputs_named(in->o, outs, sizeof(outs));
	fprintf(stderr, "cdrate: wrote %s\n", outs);
	if (st.rejected && !in->o->rejects)
		fprintf(stderr,
			"cdrate: %llu records rejected; see --rejects FILE for "
			"their lines and reasons\n",
			(unsigned long long)st.rejected);
	for (int i = 0; i < in->nwarn; i++)
		fprintf(stderr, "cdrate: warning: %s\n", in->warn[i]);
	if (in->exceeded)
		fprintf(stderr, "cdrate: %s; outputs written, exit 3\n",
			in->why);
}

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	fputc('"', f);
}

/* The summary JSON's pieces that rate, rerate and shard merge share. */
static void json_records(FILE *f, const cdr_run_stats *st, const run_info *in)
{
	fprintf(f,
		",\"records\":{\"read\":%llu,\"rated\":%llu,\"rejected\":%llu,"
		"\"unanswered\":%llu",
		(unsigned long long)st->read, (unsigned long long)st->rated,
		(unsigned long long)st->rejected,
		(unsigned long long)st->unanswered);
	if (in->have_ctl)
		fprintf(f, ",\"late\":%llu", (unsigned long long)in->ctl.late);
	fputs("},\"rejected_by_reason\":{", f);
	const char *sep = "";
	for (int i = 1; i < CDR_REASON_MAX && cdr_reason_name(i); i++)
		if (st->by_reason[i]) {
			fprintf(f, "%s\"%s\":%llu", sep, cdr_reason_name(i),
				(unsigned long long)st->by_reason[i]);
			sep = ",";
		}
	fputc('}', f);
}

static void json_control(FILE *f, const run_info *in)
{
	if (!in->have_ctl)
		return;
	fprintf(f, ",\"accounts\":%llu,\"control_totals\":{",
		(unsigned long long)in->ctl.accounts);
	for (int i = 0; i < CDR_MONEY_COLUMNS; i++)
		fprintf(f, "%s\"%s\":\"%s\"", i ? "," : "", cdr_money_column(i),
			in->ctl.money[i]);
	fputc('}', f);
}

static void json_max_rejects(FILE *f, const char *spec, const run_info *in)
{
	fputs(",\"max_rejects\":", f);
	if (in->max.set) {
		fputs("{\"limit\":", f);
		json_str(f, spec);
		fprintf(f, ",\"exceeded\":%s,\"why\":",
			in->exceeded ? "true" : "false");
		json_str(f, in->exceeded ? in->why : NULL);
		fputc('}', f);
	} else {
		fputs("null", f);
	}
}

static void json_warnings(FILE *f, const run_info *in)
{
	fputs(",\"warnings\":[", f);
	for (int w = 0; w < in->nwarn; w++) {
		if (w)
			fputc(',', f);
		json_str(f, in->warn[w]);
	}
	fputc(']', f);
}

typedef struct {
	const char *key, *path;
} json_out;

static void json_outputs(FILE *f, const json_out *outs, size_t n)
{
	fputs(",\"outputs\":{", f);
	for (size_t k = 0; k < n; k++) {
		fprintf(f, "%s\"%s\":", k ? "," : "", outs[k].key);
		json_str(f, outs[k].path);
	}
	fputc('}', f);
}

/*
 * The summary as one JSON object (README: "The summary"). Its keys are a
 * contract for monitoring: add keys, never rename one. Money is a string
 * (exact, as printed in the totals), counts are integers, seconds
 * numbers. Written before the outputs are committed, so the writing time
 * is not in it.
 */
static int summary_json(const cdr_run *r, const run_info *in, char **buf,
			size_t *len)
{
	cdr_run_stats st;
	cdr_run_stats_get(r, &st);
	FILE *f = open_memstream(buf, len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"cdrate\":\"%s\",\"command\":", CDR_VERSION_STRING);
	json_str(f, in->cmd);
	fputs(",\"period\":", f);
	json_str(f, in->o->period);
	fprintf(f, ",\"exit\":%d", in->exceeded ? EXIT_THRESHOLD : 0);
	fprintf(f,
		",\"seconds\":{\"wall\":%.6f,\"tariff\":%.6f,\"pass\":%.6f,"
		"\"sums\":%.6f,\"duplicates\":%.6f,\"totals\":%.6f,"
		"\"cache_wait\":%.6f}",
		now() - in->t_start, in->load, st.pass_seconds, st.sums_seconds,
		st.dup_seconds, in->totals, in->cache_wait);
	json_records(f, &st, in);
	fputs(",\"files\":{\"by_format\":{", f);
	const char *sep = "";
	for (int k = CDR_FORMAT_NATIVE; k < CDR_FORMAT_N; k++)
		if (st.files[k]) {
			fprintf(f, "%s\"%s\":%llu", sep,
				cdr_format_name((cdr_format)k),
				(unsigned long long)st.files[k]);
			sep = ",";
		}
	fputs("},\"by_compression\":{", f);
	sep = "";
	for (int c = 0; c < CDR_NCOMP; c++)
		if (st.files_by_comp[c]) {
			fprintf(f, "%s\"%s\":%llu", sep, cdr_comp_name(c),
				(unsigned long long)st.files_by_comp[c]);
			sep = ",";
		}
	fputs("}}", f);
	json_control(f, in);
	for (int k = 0; k < in->nt; k++) {
		fprintf(f, ",\"%s\":{\"path\":", k ? "new_tariff" : "tariff");
		json_str(f, k ? in->o->new_tariff : in->o->tariff);
		fprintf(f, ",\"files\":%u,\"fingerprint\":\"xxh3-128:%s\"",
			in->fp_files[k], in->fp[k]);
		if (in->cache[k]) {
			fputs(",\"cache\":{\"path\":", f);
			json_str(f, in->cache[k]);
			fprintf(f, ",\"used\":%s,\"written\":%s,\"why\":",
				in->cache_used[k] ? "true" : "false",
				in->cache_written[k] ? "true" : "false");
			json_str(f, in->cache_used[k] ? NULL : in->cache_why[k]);
			/* beside the run: not one of its stages */
			fputs(",\"seconds\":", f);
			if (in->cache_written[k])
				fprintf(f, "%.6f", in->cache_seconds[k]);
			else
				fputs("null", f);
			fputc('}', f);
		}
		fputc('}', f);
	}
	fputs(",\"inputs\":{\"files\":[", f);
	const char *path;
	uint64_t bytes = 0;
	uint32_t i = 0;
	for (; (path = cdr_run_input(r, i, NULL, NULL)); i++) {
		fputs(i ? ",{\"path\":" : "{\"path\":", f);
		json_str(f, path);
		fprintf(f, ",\"bytes\":%llu}",
			(unsigned long long)cdr_run_input_bytes(r, i));
		bytes += cdr_run_input_bytes(r, i);
	}
	char fp[CDR_FINGERPRINT_HEX];
	cdr_run_fingerprint(r, fp);
	fprintf(f, "],\"bytes\":%llu,\"fingerprint\":\"xxh3-128:%s\"}",
		(unsigned long long)bytes, fp);
	const json_out outs[] = {
		{"out", in->o->out ? in->o->out : "-"},
		{"rejects", in->o->rejects},
		{"itemize", in->o->itemize},
		{"old_out", in->o->old_out},
		{"new_out", in->o->new_out},
		{"summary_json", in->o->summary_json},
		{"breakdown", in->o->breakdown},
		{"report", in->o->report}};
	json_outputs(f, outs, sizeof(outs) / sizeof(*outs));
	json_max_rejects(f, in->o->max_rejects, in);
	json_warnings(f, in);
	fputs("}\n", f);
	return fclose(f) ? -ENOMEM : 0;
}

/* ---- commands -------------------------------------------------------- */

static int load_bucket(const char *dir, const char *subs, int shards,
		       int bucket, cdr_tariff **t)
{
	char err[CDR_ERR_MAX];
	if (cdr_tariff_load_bucket(t, dir, subs, shards, bucket, err,
				   sizeof(err))) {
		fprintf(stderr, "cdrate: %s: %s\n", dir, err);
		return EXIT_BAD;
	}
	return 0;
}

/* A tariff through its cache (ci) when `cache` is not NULL. */
static int load_cached(const char *dir, const char *subs, const char *cache,
		       cdr_tariff **t, cdr_tariff_cache *ci)
{
	char err[CDR_ERR_MAX];
	memset(ci, 0, sizeof(*ci));
	int rc = cache ? cdr_tariff_load_cached(t, dir, subs, cache, ci, err,
						sizeof(err))
		       : cdr_tariff_load(t, dir, subs, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "cdrate: %s: %s\n", dir, err);
		return EXIT_BAD;
	}
	return 0;
}

/*
 * After tariff k's load through its cache: the fingerprint taken before
 * it kept for the summary, and, when the image was not used, a new one
 * written on a thread beside the run (cdr_tariff_cache_start) until
 * cache_join.
 */
static void cache_after(run_info *in, int k, const cdr_tariff *t,
			const char *path, const cdr_tariff_cache *ci)
{
	in->cache[k] = path;
	if (!path)
		return;
	if (ci->fp[0]) {
		memcpy(in->fp[k], ci->fp, CDR_FINGERPRINT_HEX);
		in->fp_files[k] = ci->nfiles;
		in->have_fp[k] = 1;
	}
	in->cache_used[k] = ci->used;
	snprintf(in->cache_why[k], sizeof(in->cache_why[k]), "%s", ci->why);
	if (ci->used || !ci->fp[0])
		return;
	in->cache_pending[k] = 1;
	if (cdr_tariff_cache_start(&in->cache_job[k], t, ci->fp, path,
				   in->cache_err[k], sizeof(in->cache_err[k])))
		in->cache_job[k] = NULL; /* cache_join reports cache_err */
}

/*
 * The end of the image writes cache_after started, on every way out of a
 * command that started one: before the summary, which says what became
 * of them, and before the tariff they read is freed. A cache that cannot
 * be written costs the run nothing but a warning.
 */
static void cache_join(run_info *in)
{
	if (!in->cache_pending[0] && !in->cache_pending[1])
		return;
	progress_word("writing the tariff cache");
	double t0 = now();
	for (int k = 0; k < 2; k++) {
		if (!in->cache_pending[k])
			continue;
		in->cache_pending[k] = 0;
		char *err = in->cache_err[k];
		int rc = in->cache_job[k]
				 ? cdr_tariff_cache_join(in->cache_job[k],
							 &in->cache_seconds[k],
							 err, sizeof(in->cache_err[k]))
				 : -ENOMEM;
		in->cache_job[k] = NULL;
		if (rc) {
			progress_clear();
			fprintf(stderr,
				"cdrate: warning: %s %s: cannot write the "
				"image: %s; the run goes on without it\n",
				k ? "--new-tariff-cache" : "--tariff-cache",
				in->cache[k], err);
			snprintf(in->cache_why[k], sizeof(in->cache_why[k]),
				 "cannot write: %s", err);
			continue;
		}
		in->cache_written[k] = 1;
	}
	in->cache_joined = 1;
	in->cache_wait += now() - t0;
	progress_clear();
}

static int load(const char *dir, const char *subs, cdr_tariff **t)
{
	char err[CDR_ERR_MAX];
	if (cdr_tariff_load(t, dir, subs, err, sizeof(err))) {
		fprintf(stderr, "cdrate: %s: %s\n", dir, err);
		return EXIT_BAD;
	}
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	static const char *const allowed[] = {"--tariff", "--subscribers",
					      "--list", "--tariff-cache", NULL};
	static const char *const lists[] = {"subscribers", "zones", "rates"};
	static const cdr_check_list listv[] = {
		CDR_CHECK_SUBSCRIBERS, CDR_CHECK_ZONES, CDR_CHECK_RATES};
	cdr_check_list list = CDR_CHECK_SUMMARY;
	opts o;
	int rc = parse_opts(argc, argv, &o, usage_check, allowed);
	if (rc)
		goto out;
	if (!o.tariff || o.ninputs) {
		rc = o.tariff ? usage_error(usage_check, "unexpected argument",
					    o.inputs[0])
			      : usage_error(usage_check,
					    "--tariff is required", NULL);
		goto out;
	}
	if (o.list) {
		size_t i = 0;
		while (i < 3 && strcmp(o.list, lists[i]) != 0)
			i++;
		if (i == 3) {
			rc = usage_error(usage_check,
					 "--list must be subscribers, zones or "
					 "rates, not",
					 o.list);
			goto out;
		}
		list = listv[i];
	}
	if ((rc = caches_check(&o, 0, 1)))
		goto out;
	cdr_tariff *t;
	cdr_tariff_cache ci;
	run_info in = {.cmd = "check", .o = &o, .nt = 1};
	if ((rc = load_cached(o.tariff, o.subscribers, o.tariff_cache, &t,
			      &ci)))
		goto out;
	/* The image is written while the tariff is checked. */
	cache_after(&in, 0, t, o.tariff_cache, &ci);
	int holes = cdr_tariff_check(t, list, stdout, stderr);
	if (list == CDR_CHECK_SUMMARY)
		printf(holes > 0 ? "tariff OK, with %d holes (see the "
				   "warnings)\n"
				 : "tariff OK\n",
		       holes);
	cache_join(&in);
	cache_line(&in, 0);
	cdr_tariff_free(t);
	/* SIGPIPE is ignored (catch_signals): a reader that went away shows
	 * here, as a write error, not as exit 0. */
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "cdrate: standard output: %s\n",
			strerror(errno ? errno : EIO));
		rc = EXIT_BAD;
	}
out:
	free(o.inputs);
	return rc < 0 ? 0 : rc;
}

/* The --format map:FILE of the command: it must outlive the run, so it is
 * freed after cdr_run_free (free_map). */
static cdr_colmap *run_map;

static void free_map(void)
{
	cdr_colmap_free(run_map);
	run_map = NULL;
}

/* Shared by rate and rerate: run the inputs through 1 or 2 tariffs. */
static int run_inputs(const opts *o, cdr_tariff *const *ts, int nt,
		      const char *usage, cdr_outputs *set, const int *ids,
		      cdr_run **out)
{
	char err[CDR_ERR_MAX];
	cdr_run_opts ro;
	memset(&ro, 0, sizeof(ro));
	if (parse_period(o->period, &ro.period_year, &ro.period_month))
		return usage_error(usage, "--period must be YYYY-MM, not",
				   o->period ? o->period : "");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ro.threads = ncpu > 0 ? (int)ncpu : 1;
	if (o->threads) {
		char *end;
		long n = strtol(o->threads, &end, 10);
		if (*end || n < 1 || n > 256)
			return usage_error(usage, "--threads must be 1..256, not", o->threads);
		ro.threads = (int)n;
	}
	if (o->io && strcmp(o->io, "uring") != 0 && strcmp(o->io, "read") != 0)
		return usage_error(usage, "--io must be uring or read, not",
				   o->io);
	ro.io = o->io && !strcmp(o->io, "read") ? CDR_IO_READ : CDR_IO_URING;
	ro.outputs = set;
	ro.rejects_output = ids[O_REJECTS];
	ro.itemize_output = ids[O_ITEMIZE];
	if (o->format && !strncmp(o->format, "map:", 4)) {
		ro.format = CDR_FORMAT_MAP;
		if (cdr_colmap_load(&run_map, o->format + 4, err,
				    sizeof(err))) {
			fprintf(stderr, "cdrate: %s\n", err);
			see_help(usage);
			return EXIT_USAGE;
		}
		ro.map = run_map;
	} else if (o->format && cdr_format_from_name(o->format, &ro.format)) {
		return usage_error(usage,
				   "--format must be auto, native, asterisk, "
				   "asterisk-custom, freeswitch or map:FILE, not",
				   o->format);
	}
	ro.input_timezone = o->input_tz;
	ro.breakdown = o->breakdown || o->report;
	ro.itemize_tariff = nt - 1;
	ro.log = stderr;
	ro.progress = 0; /* the CLI's own ticker draws it (progress_on) */
	if (!o->ninputs)
		return usage_error(usage, "no INPUT given", NULL);
	int rc = outputs_open(set);
	if (rc)
		return rc;

	cdr_run *r;
	int crc = cdr_run_create(&r, ts, nt, &ro, err, sizeof(err));
	if (crc) {
		fprintf(stderr, "cdrate: %s%s\n",
			o->input_tz ? "--input-timezone: " : "", err);
		if (o->input_tz && (crc == -ENOENT || crc == -EINVAL)) {
			see_help(usage);
			return EXIT_USAGE;
		}
		return EXIT_BAD;
	}
	for (int i = 0; i < o->ninputs; i++)
		if (cdr_run_add_input(r, o->inputs[i], err, sizeof(err))) {
			fprintf(stderr, "cdrate: %s\n", err);
			cdr_run_free(r);
			return EXIT_BAD;
		}
	ticker tk;
	ticker_start(&tk, r);
	int xrc = cdr_run_execute(r, err, sizeof(err));
	ticker_stop(&tk);
	if (xrc) {
		fprintf(stderr, "cdrate: %s\n", err);
		cdr_run_free(r);
		return EXIT_BAD;
	}
	*out = r;
	return 0;
}

/* What rate and rerate check before anything is read: the limit. */
static int check_common(const opts *o, const char *usage, run_info *in)
{
	if (o->max_rejects && parse_limit(o->max_rejects, &in->max))
		return usage_error(usage,
				   "--max-rejects must be a count N or a "
				   "percentage P% (0-100), not",
				   o->max_rejects);
	return 0;
}

/* --breakdown and --report, rendered when asked for. */
typedef struct bd_out {
	char *csv, *html;
	size_t csv_n, html_n;
} bd_out;

/* The report's head: what the summary says, without the times (the page
 * is the same bytes for the same run). */
static int breakdowns(const cdr_run *r, const run_info *in, bd_out *b)
{
	const opts *o = in->o;
	int rc = 0;
	const char *kv[24];
	int n = 0;
	/* Its buffers outlive the call below: declared out here. */
	char fp[2][CDR_FINGERPRINT_HEX + 64], ifp[CDR_FINGERPRINT_HEX];
	char period[16], nread[32], nrated[32], nrej[32], nin[32];
	if (!o->breakdown && !o->report)
		return 0;
	if (o->report) {
		cdr_run_stats st;
		cdr_run_stats_get(r, &st);
		cdr_run_fingerprint(r, ifp);
		uint32_t files = 0;
		while (cdr_run_input(r, files, NULL, NULL))
			files++;
		for (int k = 0; k < in->nt; k++)
			snprintf(fp[k], sizeof(fp[k]), "%u files, xxh3-128:%s",
				 in->fp_files[k], in->fp[k]);
		snprintf(period, sizeof(period), "%s", o->period);
		snprintf(nread, sizeof(nread), "%llu",
			 (unsigned long long)st.read);
		snprintf(nrated, sizeof(nrated), "%llu",
			 (unsigned long long)st.rated);
		snprintf(nrej, sizeof(nrej), "%llu (%llu unanswered)",
			 (unsigned long long)st.rejected,
			 (unsigned long long)st.unanswered);
		snprintf(nin, sizeof(nin), "%u files", files);
		kv[n++] = "command";
		kv[n++] = in->cmd;
		kv[n++] = "period";
		kv[n++] = period;
		kv[n++] = in->nt > 1 ? "old tariff" : "tariff";
		kv[n++] = o->tariff;
		kv[n++] = in->nt > 1 ? "old tariff fingerprint" : "tariff fingerprint";
		kv[n++] = fp[0];
		if (in->nt > 1) {
			kv[n++] = "new tariff";
			kv[n++] = o->new_tariff;
			kv[n++] = "new tariff fingerprint";
			kv[n++] = fp[1];
		}
		kv[n++] = "inputs";
		kv[n++] = nin;
		kv[n++] = "inputs fingerprint";
		kv[n++] = ifp;
		kv[n++] = "records read";
		kv[n++] = nread;
		kv[n++] = "records rated";
		kv[n++] = nrated;
		kv[n++] = "records rejected";
		kv[n++] = nrej;
		kv[n++] = "cdrate";
		kv[n++] = CDR_VERSION_STRING;
	}
	rc = cdr_run_breakdown(r, o->breakdown ? &b->csv : NULL, &b->csv_n, kv,
			       n / 2, o->report ? &b->html : NULL, &b->html_n);
	if (rc) {
		fprintf(stderr, "cdrate: breakdown: %s\n", strerror(-rc));
		return EXIT_BAD;
	}
	return 0;
}

/* Tariff k's fingerprint into in; 0 or EXIT_BAD. */
static int fingerprint(const char *dir, const char *subs, run_info *in,
		       int k)
{
	char err[CDR_ERR_MAX];
	if (in->have_fp[k])
		return 0;
	if (cdr_tariff_fingerprint(dir, subs, in->fp[k], &in->fp_files[k],
				   err, sizeof(err))) {
		fprintf(stderr, "cdrate: %s\n", err);
		return EXIT_BAD;
	}
	return 0;
}

/*
 * The end of rate and rerate: the run and its tariffs are the process's
 * until it exits, so they are left to the kernel, which releases the
 * whole address space at once, instead of being freed block by block
 * (about 0.03-0.05 s of a 10M-record run: bench/README.md, "Teardown").
 * They stay reachable from here, so a leak checker does not count them;
 * a sanitizer build frees them, as a library user does.
 */
#if defined(__SANITIZE_ADDRESS__)
#define FREE_AT_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define FREE_AT_EXIT 1
#endif
#endif
#ifndef FREE_AT_EXIT
#define FREE_AT_EXIT 0
#endif

static struct {
	cdr_run *r;
	cdr_tariff *t[2];
} at_exit;

static void release(cdr_run *r, cdr_tariff *t0, cdr_tariff *t1)
{
	if (!FREE_AT_EXIT) {
		at_exit.r = r;
		at_exit.t[0] = t0;
		at_exit.t[1] = t1;
		return;
	}
	cdr_run_free(r);
	cdr_tariff_free(t0);
	cdr_tariff_free(t1);
}

static int cmd_rate(int argc, char **argv)
{
	static const char *const allowed[] = {
		"--tariff", "--period",	 "--subscribers", "--out", "--rejects",
		"--itemize", "--threads", "--io",	  "--format",
		"--input-timezone", "--summary-json", "--max-rejects",
		"--breakdown", "--report", "--tariff-cache", NULL};
	opts o;
	run_info in = {.cmd = "rate", .o = &o, .t_start = now(), .nt = 1};
	cdr_tariff *t = NULL;
	cdr_run *r = NULL;
	cdr_outputs *set = NULL;
	int ids[O_N];
	char *buf = NULL, *json = NULL;
	size_t len, jlen = 0;
	bd_out bd = {0};
	int rc = parse_opts(argc, argv, &o, usage_rate, allowed);
	if (rc)
		goto out;
	if (!o.tariff) {
		rc = usage_error(usage_rate, "--tariff is required", NULL);
		goto out;
	}
	if (!o.period) {
		rc = usage_error(usage_rate, "--period is required", NULL);
		goto out;
	}
	if ((rc = check_common(&o, usage_rate, &in)) ||
	    (rc = outputs_prepare(&o, 0, 0, &set, ids)))
		goto out;
	double t0 = now();
	progress_word("loading the tariff");
	cdr_tariff_cache ci;
	rc = load_cached(o.tariff, o.subscribers, o.tariff_cache, &t, &ci);
	if (!rc)
		cache_after(&in, 0, t, o.tariff_cache, &ci);
	progress_clear();
	if (rc || (rc = fingerprint(o.tariff, o.subscribers, &in, 0)))
		goto out;
	in.load = now() - t0;
	if ((rc = run_inputs(&o, &t, 1, usage_rate, set, ids, &r)))
		goto out;
	t0 = now();
	progress_word("making the totals");
	rc = cdr_run_totals(r, 0, &buf, &len);
	progress_clear();
	if (rc) {
		fprintf(stderr, "cdrate: out of memory\n");
		rc = EXIT_BAD;
		goto out;
	}
	/* From the rendered file: the sums a reader of it gets. */
	in.have_ctl = !cdr_totals_control(buf, len, cdr_tariff_decimals(t),
					  &in.ctl);
	in.totals = now() - t0;
	cache_join(&in); /* the summary says what became of the image */
	judge(r, &in);
	if (o.summary_json && summary_json(r, &in, &json, &jlen)) {
		fprintf(stderr, "cdrate: out of memory\n");
		rc = EXIT_BAD;
		goto out;
	}
	if ((rc = breakdowns(r, &in, &bd)))
		goto out;
	t0 = now();
	/* Totals, rejects, itemize and the summary together, or none. */
	int wids[4] = {ids[O_OUT], ids[O_JSON], ids[O_BREAKDOWN], ids[O_REPORT]};
	char *wbufs[4] = {buf, json, bd.csv, bd.html};
	size_t wlens[4] = {len, jlen, bd.csv_n, bd.html_n};
	if ((rc = outputs_commit(set, wids, wbufs, wlens, 4)))
		goto out;
	in.write = now() - t0;
	summary(r, &in);
	rc = in.exceeded ? EXIT_THRESHOLD : 0;
out:
	cache_join(&in); /* a failed run's image too: it is the tariff's */
	free(buf);
	free(json);
	free(bd.csv);
	free(bd.html);
	release(r, t, NULL);
	cdr_outputs_free(set);
	free_map();
	free(o.inputs);
	return rc < 0 ? 0 : rc;
}

/* rerate's two sides are independent until the diff: load the tariffs
 * and render the totals of both at once, one side on a second thread. */
typedef struct side_job {
	const char *dir, *subs, *cache;
	cdr_tariff_cache ci;
	cdr_tariff *t;
	const cdr_run *r;
	int k;
	char *buf;
	size_t len;
	int rc;
} side_job;

static void *load_side(void *arg)
{
	side_job *j = arg;
	j->rc = load_cached(j->dir, j->subs, j->cache, &j->t, &j->ci);
	return NULL;
}

static void *totals_side(void *arg)
{
	side_job *j = arg;
	j->rc = cdr_run_totals(j->r, j->k, &j->buf, &j->len);
	return NULL;
}

/* Run fn on both jobs, the second on its own thread when one starts. */
static void both(void *(*fn)(void *), side_job *j)
{
	pthread_t th;
	int threaded = !pthread_create(&th, NULL, fn, &j[1]);
	fn(&j[0]);
	if (threaded)
		pthread_join(th, NULL);
	else
		fn(&j[1]);
}

/* A whole file, or standard input for "-". */
static int read_file(const char *path, char **buf, size_t *len)
{
	int is_stdin = !strcmp(path, "-");
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cdrate: %s: %s\n", path, strerror(errno));
		return EXIT_BAD;
	}
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	while (b) {
		n += fread(b + n, 1, cap - n, f);
		if (n < cap)
			break;
		char *nb = realloc(b, cap *= 2);
		if (!nb)
			free(b);
		b = nb;
	}
	int bad = ferror(f) || !b;
	if (!is_stdin)
		fclose(f);
	if (bad) {
		free(b);
		fprintf(stderr, "cdrate: %s: cannot read\n",
			is_stdin ? "standard input" : path);
		return EXIT_BAD;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int cmd_rerate(int argc, char **argv)
{
	static const char *const allowed[] = {
		"--tariff",  "--new-tariff", "--period", "--subscribers",
		"--out",     "--rejects",    "--itemize", "--threads",
		"--io",	     "--old-out",    "--new-out", "--format",
		"--input-timezone", "--summary-json", "--max-rejects", "--all",
		"--exit-code", "--breakdown", "--report", "--tariff-cache",
		"--new-tariff-cache", NULL};
	opts o;
	run_info in = {.cmd = "rerate", .o = &o, .t_start = now(), .nt = 2};
	cdr_tariff *t[2] = {NULL, NULL};
	cdr_run *r = NULL;
	cdr_outputs *set = NULL;
	int ids[O_N];
	char *tot[2] = {NULL, NULL}, *delta = NULL, *json = NULL;
	size_t len[2] = {0, 0}, dlen, jlen = 0;
	bd_out bd = {0};
	int rc = parse_opts(argc, argv, &o, usage_rerate, allowed);
	if (rc)
		goto out;
	const char *missing = !o.tariff ? "--tariff is required"
			      : !o.new_tariff ? "--new-tariff is required"
			      : !o.period ? "--period is required"
					  : NULL;
	if (missing) {
		rc = usage_error(usage_rerate, missing, NULL);
		goto out;
	}
	if ((rc = check_common(&o, usage_rerate, &in)) ||
	    (rc = outputs_prepare(&o, 1, 0, &set, ids)))
		goto out;
	double t0 = now();
	progress_word("loading the tariffs");
	side_job j[2] = {{.dir = o.tariff, .subs = o.subscribers,
			  .cache = o.tariff_cache, .k = 0},
			 {.dir = o.new_tariff, .subs = o.subscribers,
			  .cache = o.new_tariff_cache, .k = 1}};
	both(load_side, j);
	t[0] = j[0].t;
	t[1] = j[1].t;
	for (int k = 0; k < 2; k++)
		if (!j[k].rc)
			cache_after(&in, k, t[k], j[k].cache, &j[k].ci);
	progress_clear();
	if ((rc = j[0].rc ? j[0].rc : j[1].rc) ||
	    (rc = fingerprint(o.tariff, o.subscribers, &in, 0)) ||
	    (rc = fingerprint(o.new_tariff, o.subscribers, &in, 1)))
		goto out;
	in.load = now() - t0;
	if ((rc = run_inputs(&o, t, 2, usage_rerate, set, ids, &r)))
		goto out;
	t0 = now();
	progress_word("making the totals");
	/* Each side's totals only when asked for; the delta comes from the
	 * figures directly. */
	if (o.old_out || o.new_out) {
		j[0].r = j[1].r = r;
		both(totals_side, j);
		for (int k = 0; k < 2; k++) {
			tot[k] = j[k].buf;
			len[k] = j[k].len;
		}
		if (j[0].rc || j[1].rc) {
			fprintf(stderr, "cdrate: out of memory\n");
			rc = EXIT_BAD;
			goto out;
		}
	}
	progress_clear();
	int moved = cdr_run_delta(r, o.all, &delta, &dlen, stderr);
	if (moved < 0) {
		fprintf(stderr, "cdrate: out of memory\n");
		rc = EXIT_BAD;
		goto out;
	}
	in.totals = now() - t0;
	cache_join(&in); /* the summary says what became of the images */
	judge(r, &in);
	if (o.summary_json && summary_json(r, &in, &json, &jlen)) {
		fprintf(stderr, "cdrate: out of memory\n");
		rc = EXIT_BAD;
		goto out;
	}
	if ((rc = breakdowns(r, &in, &bd)))
		goto out;
	t0 = now();
	int wids[6] = {ids[O_OLD], ids[O_NEW], ids[O_OUT], ids[O_JSON],
		       ids[O_BREAKDOWN], ids[O_REPORT]};
	char *wbufs[6] = {tot[0], tot[1], delta, json, bd.csv, bd.html};
	size_t wlens[6] = {len[0], len[1], dlen, jlen, bd.csv_n, bd.html_n};
	if ((rc = outputs_commit(set, wids, wbufs, wlens, 6)))
		goto out;
	in.write = now() - t0;
	summary(r, &in);
	rc = in.exceeded || (o.exit_code && moved) ? EXIT_THRESHOLD : 0;
out:
	cache_join(&in); /* a failed run's images too: they are the tariffs' */
	free(tot[0]);
	free(tot[1]);
	free(delta);
	free(json);
	free(bd.csv);
	free(bd.html);
	release(r, t[0], t[1]);
	cdr_outputs_free(set);
	free_map();
	free(o.inputs);
	return rc < 0 ? 0 : rc;
}

static int cmd_diff(int argc, char **argv)
{
	static const char *const allowed[] = {"--out", "--all", "--exit-code",
					      NULL};
	opts o;
	char *b[2] = {NULL, NULL}, *delta = NULL;
	size_t len[2] = {0, 0}, dlen;
	char err[CDR_ERR_MAX];
	cdr_outputs *set = NULL;
	int ids[O_N];
	int rc = parse_opts(argc, argv, &o, usage_diff, allowed);
	if (rc)
		goto out;
	if (o.ninputs != 2) {
		rc = usage_error(usage_diff, "expected OLD_TOTALS and NEW_TOTALS", NULL);
		goto out;
	}
	if (!strcmp(o.inputs[0], "-") && !strcmp(o.inputs[1], "-")) {
		rc = usage_error(usage_diff,
				 "only one of OLD_TOTALS and NEW_TOTALS can "
				 "be - (standard input)",
				 NULL);
		goto out;
	}
	if ((rc = outputs_prepare(&o, 0, 1, &set, ids)) ||
	    (rc = outputs_open(set)))
		goto out;
	if ((rc = read_file(o.inputs[0], &b[0], &len[0])) ||
	    (rc = read_file(o.inputs[1], &b[1], &len[1])))
		goto out;
	int moved = cdr_diff_totals(
		b[0], len[0], strcmp(o.inputs[0], "-") ? o.inputs[0]
						       : "standard input",
		b[1], len[1],
		strcmp(o.inputs[1], "-") ? o.inputs[1] : "standard input",
		o.all, &delta, &dlen, stderr, err, sizeof(err));
	if (moved < 0) {
		fprintf(stderr, "cdrate: %s\n", err);
		rc = EXIT_BAD;
		goto out;
	}
	rc = outputs_commit(set, ids, &delta, &dlen, 1);
	if (!rc && o.exit_code && moved)
		rc = EXIT_THRESHOLD;
out:
	cdr_outputs_free(set);
	free(b[0]);
	free(b[1]);
	free(delta);
	free(o.inputs);
	return rc < 0 ? 0 : rc;
}

/* ---- explain ---------------------------------------------------------- */

static const char usage_explain[] =
	"usage: cdrate explain --tariff DIR [--subscribers FILE] [--period YYYY-MM]\n"
	"                      (--line 'A CDR LINE' [--format FMT] |\n"
	"                       --subscriber N --destination D --start TS\n"
	"                       [--duration S] [--volume B] [--service voice|sms|data])\n";

static int cmd_explain(int argc, char **argv)
{
	static const char *const allowed[] = {
		"--tariff", "--subscribers", "--period", "--line", "--format",
		"--subscriber", "--destination", "--start", "--duration",
		"--volume", "--service", NULL};
	opts o;
	int rc = parse_opts(argc, argv, &o, usage_explain, allowed);
	if (rc) {
		free(o.inputs);
		return rc < 0 ? 0 : rc;
	}
	int ninputs = o.ninputs;
	const char *arg0 = ninputs ? o.inputs[0] : NULL;
	free(o.inputs);
	if (ninputs)
		return usage_error(usage_explain,
				   "explain takes no inputs; found", arg0);
	const char *v[11] = {o.tariff,	    o.subscribers, o.period,
			     o.line,	    o.format,	   o.subscriber,
			     o.destination, o.start,	   o.duration,
			     o.volume,	    o.service};
	cdr_explain_query q = {.period = v[2], .line = v[3],
			       .subscriber = v[5], .destination = v[6],
			       .start = v[7], .duration = v[8], .volume = v[9],
			       .service = v[10]};
	if (!v[0])
		return usage_error(usage_explain, "--tariff is required", NULL);
	if (v[3] && (v[5] || v[6] || v[7] || v[8] || v[9] || v[10]))
		return usage_error(usage_explain,
				   "--line or the fields, not both", NULL);
	cdr_colmap *map = NULL;
	char err[CDR_ERR_MAX];
	if (v[4] && !strncmp(v[4], "map:", 4)) {
		if (cdr_colmap_load(&map, v[4] + 4, err, sizeof(err))) {
			fprintf(stderr, "cdrate: %s\n", err);
			return EXIT_USAGE;
		}
		q.format = CDR_FORMAT_MAP;
		q.map = map;
	} else if (v[4] && cdr_format_from_name(v[4], &q.format)) {
		return usage_error(usage_explain, "unknown format", v[4]);
	}
	cdr_tariff *t;
	rc = load(v[0], v[1], &t);
	if (!rc) {
		int got = cdr_explain(t, &q, stdout, err, sizeof(err));
		if (got < 0) {
			fprintf(stderr, "cdrate: %s\n", err);
			rc = EXIT_USAGE;
		}
		cdr_tariff_free(t);
		if (!rc && (fflush(stdout) || ferror(stdout))) {
			fprintf(stderr, "cdrate: standard output: %s\n",
				strerror(errno ? errno : EIO));
			rc = EXIT_BAD;
		}
	}
	cdr_colmap_free(map);
	return rc;
}

/* ---- main ------------------------------------------------------------ */

/* ---- shard ------------------------------------------------------------- */

/* A non-negative decimal below `lim`; -1 when it is not one. */
static int small_num(const char *s, int lim)
{
	char *end;
	if (!s || !*s || *s < '0' || *s > '9')
		return -1;
	long v = strtol(s, &end, 10);
	return *end || v < 0 || v >= lim ? -1 : (int)v;
}

/* A library result as an exit status, its message on standard error. */
static int shard_exit(int rc, const char *err)
{
	if (!rc)
		return 0;
	fprintf(stderr, "cdrate: %s\n", err);
	return rc == CDR_SHARD_REFUSED ? EXIT_PARTS : EXIT_BAD;
}

/* merge's summary on standard error: a single run's lines, from the
 * parts' counts (no stage times: each task reports its own). */
static void shard_summary(const opts *o, const cdr_shard_result *res,
			  const run_info *in)
{
	const cdr_run_stats *st = &res->st;
	fprintf(stderr, "cdrate: merged %s shards in %.3f s\n", o->shards,
		now() - in->t_start);
	fprintf(stderr, "cdrate: %llu records read, %llu rated, %llu rejected",
		(unsigned long long)st->read, (unsigned long long)st->rated,
		(unsigned long long)st->rejected);
	if (in->have_ctl)
		fprintf(stderr, ", %llu late", (unsigned long long)in->ctl.late);
	fputc('\n', stderr);
	for (int i = 1; i < CDR_REASON_MAX && cdr_reason_name(i); i++)
		if (st->by_reason[i] &&
		    strcmp(cdr_reason_name(i), "unanswered") != 0)
			fprintf(stderr, "cdrate:   %-24s %llu\n",
				cdr_reason_name(i),
				(unsigned long long)st->by_reason[i]);
	if (st->unanswered)
		fprintf(stderr,
			"cdrate: %llu unanswered (not billable), %llu "
			"rejected as errors\n",
			(unsigned long long)st->unanswered,
			(unsigned long long)(st->rejected - st->unanswered));
	const char *sep = "cdrate: files by format: ";
	for (int f = CDR_FORMAT_NATIVE; f < CDR_FORMAT_N; f++)
		if (st->files[f]) {
			fprintf(stderr, "%s%llu %s", sep,
				(unsigned long long)st->files[f],
				cdr_format_name((cdr_format)f));
			sep = ", ";
		}
	if (sep[0] == ',')
		fputc('\n', stderr);
	sep = "cdrate: files by compression: ";
	for (int c = 0; c < CDR_NCOMP; c++)
		if (st->files_by_comp[c]) {
			fprintf(stderr, "%s%llu %s", sep,
				(unsigned long long)st->files_by_comp[c],
				cdr_comp_name(c));
			sep = ", ";
		}
	if (sep[0] == ',')
		fputc('\n', stderr);
	for (char **p = res->unplaced; p && *p; p++)
		fprintf(stderr,
			"cdrate: %s: format not recognised, read as native\n",
			*p);
	if (in->have_ctl) {
		fprintf(stderr, "cdrate: %llu accounts written\n",
			(unsigned long long)in->ctl.accounts);
		fputs("cdrate: control totals:", stderr);
		for (int i = 0; i < CDR_MONEY_COLUMNS; i++)
			fprintf(stderr, "%s %s %s", i ? "," : "",
				cdr_money_column(i), in->ctl.money[i]);
		fputc('\n', stderr);
	}
	fprintf(stderr, "cdrate: tariff fingerprint xxh3-128:%s\n",
		res->tariff_fp);
	fprintf(stderr,
		"cdrate: inputs: %u files, %llu bytes, fingerprint "
		"xxh3-128:%s\n",
		res->ninputs, (unsigned long long)res->input_bytes,
		res->inputs_fp);
	char outs[1024];
	outputs_named(o, outs, sizeof(outs));
	fprintf(stderr, "cdrate: wrote %s\n", outs);
	if (st->rejected && !o->rejects)
		fprintf(stderr,
			"cdrate: %llu records rejected; see --rejects FILE for "
			"their lines and reasons\n",
			(unsigned long long)st->rejected);
	for (int i = 0; i < in->nwarn; i++)
		fprintf(stderr, "cdrate: warning: %s\n", in->warn[i]);
	if (in->exceeded)
		fprintf(stderr, "cdrate: %s; outputs written, exit 3\n",
			in->why);
}

/* The summary JSON of a merge: the keys of rate's that a merge knows. */
static int shard_json(const opts *o, const cdr_shard_result *res,
		      const run_info *in, char **buf, size_t *len)
{
	const cdr_run_stats *st = &res->st;
	FILE *f = open_memstream(buf, len);
	if (!f)
		return -ENOMEM;
	char period[16];
	snprintf(period, sizeof(period), "%04d-%02d", res->period_year,
		 res->period_month);
	fprintf(f, "{\"cdrate\":\"%s\",\"command\":\"shard merge\",\"period\":",
		CDR_VERSION_STRING);
	json_str(f, period);
	fprintf(f, ",\"exit\":%d,\"shards\":%s", in->exceeded ? EXIT_THRESHOLD : 0,
		o->shards);
	fprintf(f, ",\"seconds\":{\"wall\":%.6f}", now() - in->t_start);
	json_records(f, st, in);
	json_control(f, in);
	fprintf(f, ",\"tariff\":{\"fingerprint\":\"xxh3-128:%s\"}",
		res->tariff_fp);
	json_max_rejects(f, o->max_rejects, in);
	json_warnings(f, in);
	fputs(",\"inputs\":{\"files\":[", f);
	for (uint32_t i = 0; i < res->ninputs; i++) {
		fputs(i ? ",{\"path\":" : "{\"path\":", f);
		json_str(f, res->input_paths[i]);
		fprintf(f, ",\"bytes\":%llu}",
			(unsigned long long)res->input_sizes[i]);
	}
	fprintf(f, "],\"bytes\":%llu,\"fingerprint\":\"xxh3-128:%s\"}",
		(unsigned long long)res->input_bytes, res->inputs_fp);
	const json_out outs[] = {{"out", o->out ? o->out : "-"},
				 {"rejects", o->rejects},
				 {"itemize", o->itemize},
				 {"summary_json", o->summary_json}};
	json_outputs(f, outs, sizeof(outs) / sizeof(*outs));
	fputs("}\n", f);
	return fclose(f) ? -ENOMEM : 0;
}

/* merge --breakdown / --report: the single run's page head from the
 * merge's counts (command "shard merge"), then the merged breakdown. */
static int shard_breakdowns(const opts *o, const cdr_shard_opts *so,
			    const cdr_shard_result *res, const run_info *in,
			    bd_out *b)
{
	const char *kv[24];
	int n = 0;
	char fp[CDR_FINGERPRINT_HEX + 64], nread[32], nrated[32], nrej[32];
	char nin[32], err[CDR_ERR_MAX];
	if (!o->breakdown && !o->report)
		return 0;
	const cdr_run_stats *st = &res->st;
	snprintf(fp, sizeof(fp), "%u files, xxh3-128:%s", in->fp_files[0],
		 in->fp[0]);
	snprintf(nread, sizeof(nread), "%llu", (unsigned long long)st->read);
	snprintf(nrated, sizeof(nrated), "%llu", (unsigned long long)st->rated);
	snprintf(nrej, sizeof(nrej), "%llu (%llu unanswered)",
		 (unsigned long long)st->rejected,
		 (unsigned long long)st->unanswered);
	snprintf(nin, sizeof(nin), "%u files", res->ninputs);
	const char *pairs[] = {"command", "shard merge", "period", o->period,
			       "tariff", o->tariff, "tariff fingerprint", fp,
			       "inputs", nin, "inputs fingerprint",
			       res->inputs_fp, "records read", nread,
			       "records rated", nrated, "records rejected", nrej,
			       "cdrate", CDR_VERSION_STRING};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(*pairs); i++)
		kv[n++] = pairs[i];
	int rc = cdr_shard_merge_breakdown(
		so, res, o->breakdown ? &b->csv : NULL, &b->csv_n, kv, n / 2,
		o->report ? &b->html : NULL, &b->html_n, err, sizeof(err));
	return shard_exit(rc, err);
}

static int cmd_shard(int argc, char **argv)
{
	static const char *const a_split[] = {"--dir", "--shards", "--part",
					      "--format", NULL};
	static const char *const a_dedup[] = {
		"--dir", "--shards", "--bucket", "--tariff", "--period",
		"--subscribers", "--input-timezone", NULL};
	static const char *const a_rate[] = {
		"--dir", "--shards", "--bucket", "--tariff", "--period",
		"--subscribers", "--input-timezone", "--threads", "--io", NULL};
	static const char *const a_merge[] = {
		"--dir", "--shards", "--out", "--rejects", "--itemize",
		"--summary-json", "--max-rejects", "--breakdown", "--report",
		"--tariff", "--subscribers", NULL};
	if (argc < 1)
		return usage_error(usage_shard, "shard needs a stage: split, "
						"dedup, rate or merge", NULL);
	const char *stage = argv[0];
	if (!strcmp(stage, "--help") || !strcmp(stage, "-h")) {
		fputs(usage_shard, stdout);
		return 0;
	}
	int which = !strcmp(stage, "split")   ? 0
		    : !strcmp(stage, "dedup") ? 1
		    : !strcmp(stage, "rate")  ? 2
		    : !strcmp(stage, "merge") ? 3
					      : -1;
	if (which < 0)
		return usage_error(usage_shard, "unknown shard stage", stage);
	const char *const *allowed[] = {a_split, a_dedup, a_rate, a_merge};
	/* shard rate's --itemize and --breakdown name no file: they write
	 * parts. */
	int itemize = 0, breakdown = 0, n = 0;
	char **av = calloc((size_t)argc, sizeof(*av));
	if (!av)
		return EXIT_BAD;
	for (int i = 1; i < argc; i++)
		if (which == 2 && !strcmp(argv[i], "--itemize"))
			itemize = 1;
		else if (which == 2 && !strcmp(argv[i], "--breakdown"))
			breakdown = 1;
		else
			av[n++] = argv[i];
	opts o;
	run_info in = {.cmd = "shard", .o = &o, .t_start = now(), .nt = 1};
	cdr_shard_opts so;
	cdr_tariff *t = NULL;
	cdr_colmap *map = NULL;
	cdr_outputs *set = NULL;
	cdr_shard_result res;
	bd_out bd = {0};
	char err[CDR_ERR_MAX], *tot = NULL, *json = NULL;
	size_t totn = 0, jlen = 0;
	memset(&res, 0, sizeof(res));
	memset(&so, 0, sizeof(so));
	int rc = parse_opts(n, av, &o, usage_shard, allowed[which]);
	if (rc)
		goto out;
	if (!o.dir) {
		rc = usage_error(usage_shard, "--dir is required", NULL);
		goto out;
	}
	so.dir = o.dir;
	so.log = stderr;
	so.itemize = itemize;
	so.breakdown = breakdown;
	if ((so.shards = small_num(o.shards, 4097)) < 1) {
		rc = usage_error(usage_shard, "--shards must be 1..4096, not",
				 o.shards ? o.shards : "(none)");
		goto out;
	}
	if (which == 0) {
		const char *sl = o.part ? strchr(o.part, '/') : NULL;
		char kb[16];
		if (sl && (size_t)(sl - o.part) < sizeof(kb)) {
			memcpy(kb, o.part, (size_t)(sl - o.part));
			kb[sl - o.part] = '\0';
			so.parts = small_num(sl + 1, 100001);
			so.part = small_num(kb, so.parts > 0 ? so.parts : 1);
		}
		if (!sl || so.parts < 1 || so.part < 0) {
			rc = usage_error(usage_shard,
					 "--part must be k/M with 0 <= k < M, not",
					 o.part ? o.part : "(none)");
			goto out;
		}
		if (!o.ninputs) {
			rc = usage_error(usage_shard, "no INPUT given", NULL);
			goto out;
		}
		so.inputs = (const char *const *)o.inputs;
		so.ninputs = o.ninputs;
		if (o.format && !strncmp(o.format, "map:", 4)) {
			so.format = CDR_FORMAT_MAP;
			so.map_path = o.format + 4;
			/* A bad map is a usage error, as for rate. */
			if (cdr_colmap_load(&map, so.map_path, err, sizeof(err))) {
				fprintf(stderr, "cdrate: %s\n", err);
				see_help(usage_shard);
				rc = EXIT_USAGE;
				goto out;
			}
		} else if (o.format && strcmp(o.format, "auto") != 0 &&
			   cdr_format_from_name(o.format, &so.format)) {
			rc = usage_error(usage_shard,
					 "--format must be auto, native, asterisk, "
					 "asterisk-custom, freeswitch or map:FILE, "
					 "not",
					 o.format);
			goto out;
		}
		rc = shard_exit(cdr_shard_split(&so, err, sizeof(err)), err);
		goto out;
	}
	if (which == 1 || which == 2) {
		if ((so.bucket = small_num(o.bucket, so.shards)) < 0) {
			rc = usage_error(usage_shard,
					 "--bucket must be 0 <= k < N, not",
					 o.bucket ? o.bucket : "(none)");
			goto out;
		}
		if (!o.tariff || !o.period) {
			rc = usage_error(usage_shard,
					 o.tariff ? "--period is required"
						  : "--tariff is required",
					 NULL);
			goto out;
		}
		if (parse_period(o.period, &so.period_year, &so.period_month)) {
			rc = usage_error(usage_shard,
					 "--period must be YYYY-MM, not", o.period);
			goto out;
		}
		if (o.threads) {
			char *end;
			long v = strtol(o.threads, &end, 10);
			if (*end || v < 1 || v > 256) {
				rc = usage_error(usage_shard,
						 "--threads must be 1..256, not",
						 o.threads);
				goto out;
			}
			so.threads = (int)v;
		} else {
			long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
			so.threads = ncpu > 0 ? (int)ncpu : 1;
		}
		if (o.io && strcmp(o.io, "uring") != 0 && strcmp(o.io, "read") != 0) {
			rc = usage_error(usage_shard,
					 "--io must be uring or read, not", o.io);
			goto out;
		}
		so.io = o.io && !strcmp(o.io, "read") ? CDR_IO_READ : CDR_IO_URING;
		so.input_timezone = o.input_tz;
		/* A rate task holds only its bucket's subscriber rows (dedup
		 * routed every record that needs another row elsewhere). */
		if ((rc = which == 2 ? load_bucket(o.tariff, o.subscribers,
						   so.shards, so.bucket, &t)
				     : load(o.tariff, o.subscribers, &t)) ||
		    (rc = fingerprint(o.tariff, o.subscribers, &in, 0)))
			goto out;
		so.tariff = t;
		so.tariff_fp = in.fp[0];
		rc = which == 1 ? cdr_shard_dedup(&so, err, sizeof(err))
				: cdr_shard_rate(&so, err, sizeof(err));
		if (rc && o.input_tz && (rc == -ENOENT || rc == -EINVAL) &&
		    strstr(err, o.input_tz)) {
			fprintf(stderr, "cdrate: --input-timezone: %s\n", err);
			see_help(usage_shard);
			rc = EXIT_USAGE;
			goto out;
		}
		rc = shard_exit(rc, err);
		goto out;
	}
	/* merge */
	int ids[O_N];
	if ((o.breakdown || o.report) && !o.tariff) {
		rc = usage_error(usage_shard,
				 o.breakdown ? "--breakdown needs --tariff"
					     : "--report needs --tariff",
				 NULL);
		goto out;
	}
	if (o.subscribers && !o.tariff) {
		rc = usage_error(usage_shard, "--subscribers needs --tariff",
				 NULL);
		goto out;
	}
	if ((rc = check_common(&o, usage_shard, &in)) ||
	    (rc = outputs_prepare(&o, 0, 0, &set, ids)))
		goto out;
	if (cdr_outputs_protect(set, "the shard directory", o.dir, err,
				sizeof(err)) != 0) {
		fprintf(stderr, "cdrate: %s\n", err);
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = outputs_open(set)))
		goto out;
	if (o.tariff) {
		if ((rc = load(o.tariff, o.subscribers, &t)) ||
		    (rc = fingerprint(o.tariff, o.subscribers, &in, 0)))
			goto out;
		so.tariff = t;
		so.tariff_fp = in.fp[0];
	}
	rc = cdr_shard_merge(&so, set, ids[O_REJECTS], ids[O_ITEMIZE], &tot,
			     &totn, &res, err, sizeof(err));
	if (rc) {
		rc = shard_exit(rc, err);
		goto out;
	}
	in.have_ctl = !cdr_totals_control(tot, totn, res.decimals, &in.ctl);
	char period[16];
	snprintf(period, sizeof(period), "%04d-%02d", res.period_year,
		 res.period_month);
	o.period = period; /* the warnings name it */
	judge_stats(&res.st, &in);
	if ((rc = shard_breakdowns(&o, &so, &res, &in, &bd)))
		goto out;
	if (o.summary_json && shard_json(&o, &res, &in, &json, &jlen)) {
		fprintf(stderr, "cdrate: out of memory\n");
		rc = EXIT_BAD;
		goto out;
	}
	int wids[4] = {ids[O_OUT], ids[O_JSON], ids[O_BREAKDOWN], ids[O_REPORT]};
	char *wbufs[4] = {tot, json, bd.csv, bd.html};
	size_t wlens[4] = {totn, jlen, bd.csv_n, bd.html_n};
	if ((rc = outputs_commit(set, wids, wbufs, wlens, 4)))
		goto out;
	shard_summary(&o, &res, &in);
	rc = in.exceeded ? EXIT_THRESHOLD : 0;
out:
	free(av);
	free(tot);
	free(json);
	free(bd.csv);
	free(bd.html);
	cdr_shard_result_free(&res);
	cdr_outputs_free(set);
	cdr_colmap_free(map);
	cdr_tariff_free(t);
	free(o.inputs);
	return rc < 0 ? 0 : rc;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *usage;
	} cmds[] = {{"rate", usage_rate},
		    {"check", usage_check},
		    {"rerate", usage_rerate},
		    {"diff", usage_diff},
		    {"explain", usage_explain},
		    {"shard", usage_shard}};
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    (!strcmp(cmd, "help") && argc == 2)) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "help")) { /* cdrate help CMD */
		for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++)
			if (!strcmp(argv[2], cmds[i].name)) {
				fputs(cmds[i].usage, stdout);
				return 0;
			}
		fprintf(stderr, "cdrate: no command '%s'\n", argv[2]);
		see_help(usage_main);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("cdrate %s\n", CDR_VERSION_STRING);
		return 0;
	}
	fill_std_fds();
	catch_signals();
	progress_on = isatty(STDERR_FILENO);
	if (!strcmp(cmd, "rate"))
		return cmd_rate(argc - 2, argv + 2);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc - 2, argv + 2);
	if (!strcmp(cmd, "rerate"))
		return cmd_rerate(argc - 2, argv + 2);
	if (!strcmp(cmd, "diff"))
		return cmd_diff(argc - 2, argv + 2);
	if (!strcmp(cmd, "explain"))
		return cmd_explain(argc - 2, argv + 2);
	if (!strcmp(cmd, "shard"))
		return cmd_shard(argc - 2, argv + 2);
	fprintf(stderr, "cdrate: unknown command '%s'\n", cmd);
	see_help(usage_main);
	return EXIT_USAGE;
}
