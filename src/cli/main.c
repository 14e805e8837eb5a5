/*
 * main.c - the `cdrate` command: argument parsing, wiring, exit codes.
 *
 * A thin shell over the public API in include/cdrate/: it knows nothing of
 * the library's insides. Exit status: 0 success, 1 bad input that stopped
 * the run (tariff, unreadable file, I/O), 2 usage error.
 *
 * Sections: usage - options - signals - outputs - summary - commands -
 * main.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdrate/cdrate.h"

#define EXIT_BAD 1
#define EXIT_USAGE 2

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
	"\n"
	"cdrate COMMAND --help shows a command's options; --version the "
	"version.\n";

static const char usage_rate[] =
	"usage: cdrate rate --tariff DIR --period YYYY-MM [--subscribers FILE]\n"
	"                   [--out FILE] [--rejects FILE] [--itemize FILE]\n"
	"                   [--threads N] [--io uring|read] [--format FMT]\n"
	"                   [--input-timezone NAME] INPUT...\n"
	"\n"
	"  INPUT            a CDR file, a directory (its regular files, by "
	"name) or -\n"
	"  --tariff DIR     tariff directory (tariff.conf, zones.csv, ...)\n"
	"  --period YYYY-MM billing month, local time of the tariff\n"
	"  --subscribers F  subscribers file instead of DIR/subscribers.csv\n"
	"  --out FILE       totals CSV (default: standard output)\n"
	"  --rejects FILE   rejected lines, each with its reason\n"
	"  --itemize FILE   one line per rated record\n"
	"                   (an output FILE may be - for standard output, a\n"
	"                   device or a FIFO; it may not be an input)\n"
	"  --threads N      worker threads (default: online CPUs)\n"
	"  --io uring|read  I/O path (default uring, falls back to read)\n"
	"  --format FMT     auto (default: per input, from its first line),\n"
	"                   native, asterisk, asterisk-custom, freeswitch,\n"
	"                   or map:FILE (a column map)\n"
	"  --input-timezone NAME  zone of naive stamps in the inputs (default:\n"
	"                   the tariff's), e.g. UTC for Asterisk usegmtime\n";

static const char usage_check[] =
	"usage: cdrate check --tariff DIR [--subscribers FILE]\n";

static const char usage_rerate[] =
	"usage: cdrate rerate --tariff OLD --new-tariff NEW --period YYYY-MM\n"
	"                     [options of rate] [--old-out FILE] "
	"[--new-out FILE]\n"
	"                     [--all] INPUT...\n"
	"\n"
	"  Rates every input once under both tariffs and writes a delta CSV\n"
	"  (new - old) per account whose totals differ (--all: every "
	"account).\n"
	"  --rejects and --itemize describe the new side.\n";

static const char usage_diff[] =
	"usage: cdrate diff OLD_TOTALS NEW_TOTALS [--out FILE] [--all]\n";

/* "cdrate: WHAT 'ARG'" (ARG may be NULL), then the usage; exit 2. */
static int usage_error(const char *usage, const char *what, const char *arg)
{
	if (arg)
		fprintf(stderr, "cdrate: %s '%s'\n", what, arg);
	else
		fprintf(stderr, "cdrate: %s\n", what);
	fputs(usage, stderr);
	return EXIT_USAGE;
}

/* ---- options --------------------------------------------------------- */

typedef struct opts {
	const char *tariff, *new_tariff, *period, *subscribers;
	const char *out, *rejects, *itemize, *old_out, *new_out, *io;
	const char *threads, *format, *input_tz;
	int all;
	const char **inputs;
	int ninputs;
} opts;

typedef struct optdef {
	const char *name;
	size_t off; /* offset of the const char * field, or -1 for flags */
} optdef;

#define OPT(n, f) {n, offsetof(opts, f)}
static const optdef optdefs[] = {
	OPT("--tariff", tariff),	   OPT("--new-tariff", new_tariff),
	OPT("--period", period),	   OPT("--subscribers", subscribers),
	OPT("--out", out),		   OPT("--rejects", rejects),
	OPT("--itemize", itemize),	   OPT("--old-out", old_out),
	OPT("--new-out", new_out),	   OPT("--io", io),
	OPT("--threads", threads),	   OPT("--format", format),
	OPT("--input-timezone", input_tz),
};

/*
 * Parse argv into o. `allowed` lists the option names valid for the
 * command. Returns 0, or an exit code (help printed, usage error).
 */
static int parse_opts(int argc, char **argv, opts *o, const char *usage,
		      const char *const *allowed, int flag_all)
{
	memset(o, 0, sizeof(*o));
	o->inputs = calloc((size_t)argc + 1, sizeof(char *));
	if (!o->inputs)
		return EXIT_BAD;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return -1;
		}
		if (!strcmp(a, "--version")) {
			printf("cdrate %s\n", CDR_VERSION_STRING);
			return -1;
		}
		if (flag_all && !strcmp(a, "--all")) {
			o->all = 1;
			continue;
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
		char *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		const optdef *d = NULL;
		for (const char *const *k = allowed; *k; k++)
			if (strlen(*k) == n && !strncmp(*k, a, n))
				for (size_t j = 0;
				     j < sizeof(optdefs) / sizeof(*optdefs); j++)
					if (!strcmp(optdefs[j].name, *k))
						d = &optdefs[j];
		if (!d)
			return usage_error(usage, "unknown option", a);
		const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!v)
			return usage_error(usage, "a value must follow", a);
		*(const char **)((char *)o + d->off) = v;
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
enum { O_OUT, O_REJECTS, O_ITEMIZE, O_OLD, O_NEW, O_N };

/*
 * The outputs of rate, rerate (rerate) or diff (diff), checked against
 * everything the command reads and each other before anything is read.
 * 0, or the exit code after the message.
 */
static int outputs_prepare(const opts *o, int rerate, int diff,
			   cdr_outputs **set, int *ids)
{
	char err[CDR_ERR_MAX];
	const struct {
		int id;
		const char *option, *path;
	} outs[] = {
		{O_OUT, "--out", o->out ? o->out : "-"},
		{O_REJECTS, "--rejects", diff ? NULL : o->rejects},
		{O_ITEMIZE, "--itemize", diff ? NULL : o->itemize},
		{O_OLD, "--old-out", rerate ? o->old_out : NULL},
		{O_NEW, "--new-out", rerate ? o->new_out : NULL},
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

/* ---- summary --------------------------------------------------------- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The run's summary; `load`, `totals` and `write` are the CLI's own
 * timings (writing includes fsync). */
static void summary(const cdr_run *r, double load, double totals,
		    double write)
{
	cdr_run_stats st;
	cdr_run_stats_get(r, &st);
	fprintf(stderr,
		"cdrate: %llu records read, %llu rated, %llu rejected in "
		"%.3f s (%.0f records/s)\n",
		(unsigned long long)st.read, (unsigned long long)st.rated,
		(unsigned long long)st.rejected, st.seconds,
		st.seconds > 0 ? (double)st.read / st.seconds : 0.0);
	fprintf(stderr,
		"cdrate: stages: tariff %.3f s, read+parse+rate %.3f s, "
		"duplicates %.3f s, monthly charges+totals %.3f s, "
		"writing %.3f s\n",
		load, st.pass_seconds, st.dup_seconds, totals, write);
	/* Files per compression, e.g. "files by compression: 3 plain,
	 * 1 gzip, 1 zstd". */
	const char *sep = "cdrate: files by compression: ";
	for (int c = 0; c < CDR_NCOMP; c++)
		if (st.files_by_comp[c]) {
			fprintf(stderr, "%s%llu %s", sep,
				(unsigned long long)st.files_by_comp[c],
				cdr_comp_name(c));
			sep = ", ";
		}
	if (sep[0] == ',')
		fputc('\n', stderr);
	for (int i = 1; i < CDR_REASON_MAX && cdr_reason_name(i); i++)
		if (st.by_reason[i] && strcmp(cdr_reason_name(i), "unanswered") != 0)
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
	sep = "cdrate: files by format: ";
	for (int f = CDR_FORMAT_NATIVE; f < CDR_FORMAT_N; f++)
		if (st.files[f]) {
			fprintf(stderr, "%s%llu %s", sep,
				(unsigned long long)st.files[f],
				cdr_format_name((cdr_format)f));
			sep = ", ";
		}
	if (sep[0] == ',')
		fputc('\n', stderr);
	const char *path;
	cdr_format fmt;
	int unplaced;
	for (uint32_t i = 0; (path = cdr_run_input(r, i, &fmt, &unplaced)); i++)
		if (unplaced)
			fprintf(stderr,
				"cdrate: %s: format not recognised, read as "
				"native\n",
				strcmp(path, "-") ? path : "standard input");
}

/* ---- commands -------------------------------------------------------- */

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
					      NULL};
	opts o;
	int rc = parse_opts(argc, argv, &o, usage_check, allowed, 0);
	if (rc)
		goto out;
	if (!o.tariff || o.ninputs) {
		rc = usage_error(usage_check, o.tariff ? "unexpected argument"
					  : "--tariff is required", NULL);
		goto out;
	}
	cdr_tariff *t;
	if ((rc = load(o.tariff, o.subscribers, &t)))
		goto out;
	cdr_tariff_describe(t, stdout);
	printf("tariff OK\n");
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
			fputs(usage, stderr);
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
	ro.itemize_tariff = nt - 1;
	ro.log = stderr;
	ro.progress = isatty(STDERR_FILENO);
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
			fputs(usage, stderr);
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
	if (cdr_run_execute(r, err, sizeof(err))) {
		fprintf(stderr, "cdrate: %s\n", err);
		cdr_run_free(r);
		return EXIT_BAD;
	}
	*out = r;
	return 0;
}

static int cmd_rate(int argc, char **argv)
{
	static const char *const allowed[] = {
		"--tariff", "--period",	 "--subscribers", "--out", "--rejects",
		"--itemize", "--threads", "--io",	  "--format",
		"--input-timezone", NULL};
	opts o;
	cdr_tariff *t = NULL;
	cdr_run *r = NULL;
	cdr_outputs *set = NULL;
	int ids[O_N];
	char *buf = NULL;
	size_t len;
	int rc = parse_opts(argc, argv, &o, usage_rate, allowed, 0);
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
	if ((rc = outputs_prepare(&o, 0, 0, &set, ids)))
		goto out;
	double t0 = now();
	if ((rc = load(o.tariff, o.subscribers, &t)))
		goto out;
	double t_load = now() - t0;
	if ((rc = run_inputs(&o, &t, 1, usage_rate, set, ids, &r)))
		goto out;
	t0 = now();
	if (cdr_run_totals(r, 0, &buf, &len)) {
		fprintf(stderr, "cdrate: out of memory\n");
		rc = EXIT_BAD;
		goto out;
	}
	double t_totals = now() - t0;
	t0 = now();
	/* Totals, rejects and itemize together, or none of them. */
	if ((rc = outputs_commit(set, ids, &buf, &len, 1)))
		goto out;
	summary(r, t_load, t_totals, now() - t0);
out:
	free(buf);
	cdr_run_free(r);
	cdr_outputs_free(set);
	free_map();
	cdr_tariff_free(t);
	free(o.inputs);
	return rc < 0 ? 0 : rc;
}

/* rerate's two sides are independent until the diff: load the tariffs
 * and render the totals of both at once, one side on a second thread. */
typedef struct side_job {
	const char *dir, *subs;
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
	j->rc = load(j->dir, j->subs, &j->t);
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

static int read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
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
	fclose(f);
	if (bad) {
		free(b);
		fprintf(stderr, "cdrate: %s: cannot read\n", path);
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
		"--input-timezone", NULL};
	opts o;
	cdr_tariff *t[2] = {NULL, NULL};
	cdr_run *r = NULL;
	cdr_outputs *set = NULL;
	int ids[O_N];
	char *tot[2] = {NULL, NULL}, *delta = NULL;
	size_t len[2] = {0, 0}, dlen;
	int rc = parse_opts(argc, argv, &o, usage_rerate, allowed, 1);
	if (rc)
		goto out;
	if (!o.tariff || !o.new_tariff || !o.period) {
		rc = usage_error(usage_rerate, "--tariff, --new-tariff and --period are "
				 "required", NULL);
		goto out;
	}
	if ((rc = outputs_prepare(&o, 1, 0, &set, ids)))
		goto out;
	double t0 = now();
	side_job j[2] = {{.dir = o.tariff, .subs = o.subscribers, .k = 0},
			 {.dir = o.new_tariff, .subs = o.subscribers, .k = 1}};
	both(load_side, j);
	t[0] = j[0].t;
	t[1] = j[1].t;
	if ((rc = j[0].rc ? j[0].rc : j[1].rc))
		goto out;
	double t_load = now() - t0;
	if ((rc = run_inputs(&o, t, 2, usage_rerate, set, ids, &r)))
		goto out;
	t0 = now();
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
	if (cdr_run_delta(r, o.all, &delta, &dlen, stderr)) {
		fprintf(stderr, "cdrate: out of memory\n");
		rc = EXIT_BAD;
		goto out;
	}
	double t_totals = now() - t0;
	t0 = now();
	int wids[3] = {ids[O_OLD], ids[O_NEW], ids[O_OUT]};
	char *wbufs[3] = {tot[0], tot[1], delta};
	size_t wlens[3] = {len[0], len[1], dlen};
	if ((rc = outputs_commit(set, wids, wbufs, wlens, 3)))
		goto out;
	summary(r, t_load, t_totals, now() - t0);
out:
	free(tot[0]);
	free(tot[1]);
	free(delta);
	cdr_run_free(r);
	cdr_outputs_free(set);
	free_map();
	cdr_tariff_free(t[0]);
	cdr_tariff_free(t[1]);
	free(o.inputs);
	return rc < 0 ? 0 : rc;
}

static int cmd_diff(int argc, char **argv)
{
	static const char *const allowed[] = {"--out", NULL};
	opts o;
	char *b[2] = {NULL, NULL}, *delta = NULL;
	size_t len[2] = {0, 0}, dlen;
	char err[CDR_ERR_MAX];
	cdr_outputs *set = NULL;
	int ids[O_N];
	int rc = parse_opts(argc, argv, &o, usage_diff, allowed, 1);
	if (rc)
		goto out;
	if (o.ninputs != 2) {
		rc = usage_error(usage_diff, "expected OLD_TOTALS and NEW_TOTALS", NULL);
		goto out;
	}
	if ((rc = outputs_prepare(&o, 0, 1, &set, ids)) ||
	    (rc = outputs_open(set)))
		goto out;
	if ((rc = read_file(o.inputs[0], &b[0], &len[0])) ||
	    (rc = read_file(o.inputs[1], &b[1], &len[1])))
		goto out;
	if (cdr_diff_totals(b[0], len[0], o.inputs[0], b[1], len[1],
			    o.inputs[1], o.all, &delta, &dlen, stderr, err,
			    sizeof(err))) {
		fprintf(stderr, "cdrate: %s\n", err);
		rc = EXIT_BAD;
		goto out;
	}
	rc = outputs_commit(set, ids, &delta, &dlen, 1);
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

/* Its own options, self-contained: explain shares none of rate's. */
static int cmd_explain(int argc, char **argv)
{
	static const char *const names[] = {
		"--tariff", "--subscribers", "--period", "--line", "--format",
		"--subscriber", "--destination", "--start", "--duration",
		"--volume", "--service", NULL};
	const char *v[11] = {0};
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_explain, stdout);
			return 0;
		}
		int k = 0;
		while (names[k] && strcmp(names[k], argv[i]) != 0)
			k++;
		if (!names[k])
			return usage_error(usage_explain, "unknown argument",
					   argv[i]);
		if (i + 1 >= argc)
			return usage_error(usage_explain, "a value must follow",
					   argv[i]);
		v[k] = argv[++i];
	}
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
	int rc = load(v[0], v[1], &t);
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

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("cdrate %s\n", CDR_VERSION_STRING);
		return 0;
	}
	fill_std_fds();
	catch_signals();
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
	fprintf(stderr, "cdrate: unknown command '%s'\n", cmd);
	fputs(usage_main, stderr);
	return EXIT_USAGE;
}
