/*
 * test_faults.c - the run under injected system-call faults (sys.h):
 * ENOSPC and EIO while writing, EIO while reading, short reads and EINTR,
 * a failing fsync or rename, io_uring refused by the kernel. A failing run
 * must say why, leave nothing at a final name and no temporaries; a run
 * that sees only short reads, EINTR or no io_uring must give the same
 * totals as an undisturbed one.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <liburing.h>
#include <malloc.h>
#include <string.h>

#include "internal.h"
/* Twice on purpose: the guard must cover the whole header (it once closed
 * before the agg and reader declarations, which then clashed). */
#include "internal.h" // NOLINT(readability-duplicate-include)
#include "sys.h"
#include "testutil.h"

static char *dir;
static cdr_tariff *t;
static char cdrs[600], out_item[600], out_rej[600], out_tot[600];
static char err[CDR_ERR_MAX];

static void setup(void)
{
	dir = tu_tariff();
	t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	snprintf(cdrs, sizeof(cdrs), "%s/cdrs.csv", dir);
	snprintf(out_item, sizeof(out_item), "%s/item.csv", dir);
	snprintf(out_rej, sizeof(out_rej), "%s/rej.csv", dir);
	snprintf(out_tot, sizeof(out_tot), "%s/tot.csv", dir);
	FILE *f = fopen(cdrs, "w");
	cr_assert_not_null(f);
	/* Enough lines to need several reads of a small short-read size. */
	for (int i = 0; i < 2000; i++)
		fprintf(f, "c%d,13800000001,voice,2026-10-12 10:00:00,139%08d,%d,0\n",
			i, i, i % 300);
	fputs("bad-line\n", f);
	fclose(f);
}

static void teardown(void)
{
	cdr__sys_table = cdr__sys_default;
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

TestSuite(faults, .init = setup, .fini = teardown);

/* Run a whole rate: execute, totals, commit. 0 or the failing status. */
static int run_rate(cdr_io io, char **totals, FILE *log)
{
	cdr_run_opts o;
	memset(&o, 0, sizeof(o));
	o.period_year = 2026;
	o.period_month = 10;
	o.threads = 2;
	o.io = io;
	o.rejects_path = out_rej;
	o.itemize_path = out_item;
	o.log = log;
	cdr_run *r;
	size_t len;
	err[0] = '\0';
	int rc = cdr_run_create(&r, &t, 1, &o, err, sizeof(err));
	if (!rc)
		rc = cdr_run_add_input(r, cdrs, err, sizeof(err));
	if (!rc)
		rc = cdr_run_execute(r, err, sizeof(err));
	if (!rc)
		rc = cdr_run_totals(r, 0, totals, &len);
	if (!rc) { /* a C string, for the comparisons */
		char *z = realloc(*totals, len + 1);
		cr_assert_not_null(z);
		z[len] = '\0';
		*totals = z;
	}
	if (!rc)
		rc = cdr_write_file_atomic(out_tot, *totals, len, err, sizeof(err));
	if (!rc)
		rc = cdr_run_commit(r, err, sizeof(err));
	cdr_run_free(r);
	return rc;
}

/* Nothing but the tariff and the input in the directory. */
static void assert_no_outputs(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		cr_assert(!strstr(e->d_name, "item") && !strstr(e->d_name, "rej") &&
			  !strstr(e->d_name, "tot") && !strstr(e->d_name, ".tmp."),
			  "left behind: %s", e->d_name);
	closedir(d);
}

static int nth;

static ssize_t write_enospc(int fd, const void *b, size_t n)
{
	(void)fd, (void)b, (void)n;
	errno = ENOSPC;
	return -1;
}

Test(faults, enospc_while_writing)
{
	char *tot = NULL;
	cdr__sys_table.write = write_enospc;
	cr_assert_neq(run_rate(CDR_IO_READ, &tot, NULL), 0);
	cr_assert(strstr(err, "No space left on device"), "%s", err);
	assert_no_outputs();
	free(tot);
}

static int fsync_eio(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

Test(faults, eio_on_fsync)
{
	char *tot = NULL;
	cdr__sys_table.fsync = fsync_eio;
	cr_assert_neq(run_rate(CDR_IO_READ, &tot, NULL), 0);
	cr_assert(strstr(err, "Input/output error"), "%s", err);
	assert_no_outputs();
	free(tot);
}

static int rename_fails(const char *a, const char *b)
{
	(void)a, (void)b;
	errno = EXDEV;
	return -1;
}

Test(faults, rename_fails)
{
	char *tot = NULL;
	cdr__sys_table.rename = rename_fails;
	cr_assert_neq(run_rate(CDR_IO_READ, &tot, NULL), 0);
	assert_no_outputs();
	free(tot);
}

static ssize_t read_eio(int fd, void *b, size_t n)
{
	(void)fd, (void)b, (void)n;
	errno = EIO;
	return -1;
}

static ssize_t pread_eio(int fd, void *b, size_t n, off_t o)
{
	(void)o;
	return read_eio(fd, b, n);
}

/* Bytes the C library has handed out and not taken back. */
static size_t heap_in_use(void)
{
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}

/* EIO on the fifth pread(2): four 4 MiB chunks are read by then. */
static ssize_t pread_eio_fifth(int fd, void *b, size_t n, off_t o)
{
	if (++nth == 5) {
		errno = EIO;
		return -1;
	}
	return pread(fd, b, n, o);
}

/* Workers that write slowly still hold chunks when the read fails. */
static ssize_t write_slow(int fd, const void *b, size_t n)
{
	usleep(20000);
	return write(fd, b, n);
}

/* 18 MB of records: five 4 MiB reads. */
static void write_big_input(void)
{
	FILE *f = fopen(cdrs, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < 300000; i++)
		fprintf(f, "c%d,13800000001,voice,2026-10-12 10:00:00,139%08d,%d,0\n",
			i, i, i % 300);
	fclose(f);
}

/* A read error mid-file: the chunks the reader had queued for the busy
 * workers are freed with the run (they once leaked, 4 MiB each). */
Test(faults, eio_mid_file_frees_queued_buffers)
{
	write_big_input();
	char *tot = NULL;
	cdr__sys_table.pread = pread_eio_fifth;
	cdr__sys_table.write = write_slow;
	size_t before = heap_in_use();
	cr_assert_neq(run_rate(CDR_IO_READ, &tot, NULL), 0);
	size_t after = heap_in_use();
	cr_assert(strstr(err, "cdrs.csv: read error: Input/output error"),
		  "%s", err);
	cr_assert_lt(after, before + ((size_t)1 << 20),
		     "%zu bytes not freed", after - before);
	assert_no_outputs();
	free(tot);
}

Test(faults, eio_while_reading_names_the_file)
{
	char *tot = NULL;
	cdr__sys_table.read = read_eio;
	cdr__sys_table.pread = pread_eio;
	cr_assert_neq(run_rate(CDR_IO_READ, &tot, NULL), 0);
	cr_assert(strstr(err, "cdrs.csv: read error: Input/output error"),
		  "%s", err);
	assert_no_outputs();
	free(tot);
}

/* A collector still appending: the first read finds one more line. */
static ssize_t pread_appending(int fd, void *b, size_t n, off_t o)
{
	if (++nth == 1) {
		FILE *f = fopen(cdrs, "a");
		cr_assert_not_null(f);
		fputs("late,13800000001,sms,2026-10-12 10:00:00,13900000000,0,0\n", f);
		fclose(f);
	}
	return pread(fd, b, n, o);
}

/* Sums of a file that grew while it was read belong to no file that ever
 * was: the run stops, naming it (it once rated whatever it saw, exit 0). */
Test(faults, input_growing_while_read_stops_the_run)
{
	char *tot = NULL;
	cdr__sys_table.pread = pread_appending;
	cr_assert_neq(run_rate(CDR_IO_READ, &tot, NULL), 0);
	cr_assert(strstr(err, "cdrs.csv: changed while being rated"), "%s", err);
	assert_no_outputs();
	free(tot);
}

/* At most 7 bytes a call, and EINTR every third call. */
static ssize_t pread_short(int fd, void *b, size_t n, off_t o)
{
	if (++nth % 3 == 0) {
		errno = EINTR;
		return -1;
	}
	return pread(fd, b, n < 7 ? n : 7, o);
}

Test(faults, short_reads_and_eintr_change_nothing)
{
	char *want = NULL, *got = NULL;
	cr_assert_eq(run_rate(CDR_IO_READ, &want, NULL), 0, "%s", err);
	cdr__sys_table.pread = pread_short;
	cr_assert_eq(run_rate(CDR_IO_READ, &got, NULL), 0, "%s", err);
	cr_assert_gt(nth, 1000); /* the fault really was in the path */
	cr_assert_str_eq(got, want);
	free(want);
	free(got);
}

static int uring_refused(unsigned e, struct io_uring *r, unsigned f)
{
	(void)e, (void)r, (void)f;
	return -ENOSYS;
}

Test(faults, io_uring_refused_falls_back_once)
{
	char *want = NULL, *got = NULL;
	char logbuf[4096] = {0};
	cr_assert_eq(run_rate(CDR_IO_READ, &want, NULL), 0, "%s", err);
	cdr__sys_table.uring_init = uring_refused;
	FILE *log = fmemopen(logbuf, sizeof(logbuf) - 1, "w");
	cr_assert_eq(run_rate(CDR_IO_URING, &got, log), 0, "%s", err);
	fclose(log);
	cr_assert_str_eq(got, want);
	const char *note = strstr(logbuf, "io_uring unavailable");
	cr_assert_not_null(note, "log: %s", logbuf);
	cr_assert_null(strstr(note + 1, "io_uring unavailable"), "said twice");
	free(want);
	free(got);
}

Test(faults, uring_and_read_agree)
{
	char *a = NULL, *b = NULL;
	cr_assert_eq(run_rate(CDR_IO_READ, &a, NULL), 0, "%s", err);
	cr_assert_eq(run_rate(CDR_IO_URING, &b, NULL), 0, "%s", err);
	cr_assert_str_eq(a, b);
	free(a);
	free(b);
}

/* ---- faults inside io_uring completions ---- */

static int ncqe, cqe_fail_at;
static struct io_uring_cqe fake_cqe;

/* Skip when the kernel (or a sandbox) refuses io_uring: the hooks below
 * would never be called and the tests would prove nothing. */
static void need_uring(void)
{
	int why = 0;
	cdr__backend *be = cdr__backend_uring(&why);
	if (!be)
		cr_skip_test("io_uring unavailable: %s", strerror(-why));
	be->close(be);
}

/* The real completion; number cqe_fail_at is handed back as -EIO (a copy:
 * the ring's own CQE is still marked seen by the caller). */
static int wait_cqe_eio(struct io_uring *ring, struct io_uring_cqe **cqe)
{
	int rc = io_uring_wait_cqe(ring, cqe);
	if (rc || ++ncqe != cqe_fail_at)
		return rc;
	fake_cqe = **cqe;
	fake_cqe.res = -EIO;
	*cqe = &fake_cqe;
	return 0;
}

Test(faults, uring_completion_eio_names_the_file)
{
	need_uring();
	char *tot = NULL;
	cqe_fail_at = 3; /* inside the first fill, among its eight slices */
	cdr__sys_table.uring_wait_cqe = wait_cqe_eio;
	cr_assert_neq(run_rate(CDR_IO_URING, &tot, NULL), 0);
	cr_assert_geq(ncqe, 3);
	cr_assert(strstr(err, "cdrs.csv: read error: Input/output error"),
		  "%s", err);
	assert_no_outputs();
	free(tot);
}

/* EIO in the first completion of the fifth 4 MiB fill (eight a fill),
 * workers slow: the queued chunks are freed with the run. */
Test(faults, uring_completion_eio_mid_file_frees_queued_buffers)
{
	need_uring();
	write_big_input();
	char *tot = NULL;
	cqe_fail_at = 33;
	cdr__sys_table.uring_wait_cqe = wait_cqe_eio;
	cdr__sys_table.write = write_slow;
	size_t before = heap_in_use();
	cr_assert_neq(run_rate(CDR_IO_URING, &tot, NULL), 0);
	size_t after = heap_in_use();
	cr_assert_geq(ncqe, 33);
	cr_assert(strstr(err, "cdrs.csv: read error: Input/output error"),
		  "%s", err);
	cr_assert_lt(after, before + ((size_t)1 << 20),
		     "%zu bytes not freed", after - before);
	assert_no_outputs();
	free(tot);
}

/* Every third completion interrupted (-EINTR), every other one with more
 * than a byte cut to half, and every fifth wait interrupted before it
 * takes anything. */
static int wait_cqe_short(struct io_uring *ring, struct io_uring_cqe **cqe)
{
	if (++nth % 5 == 0)
		return -EINTR;
	int rc = io_uring_wait_cqe(ring, cqe);
	if (rc)
		return rc;
	fake_cqe = **cqe;
	if (++ncqe % 3 == 0)
		fake_cqe.res = -EINTR;
	else if (fake_cqe.res > 1)
		fake_cqe.res /= 2;
	*cqe = &fake_cqe;
	return 0;
}

/* Such completions are read again from where they stopped: the totals are
 * those of read(2). (An interrupted completion once failed the run.) */
Test(faults, uring_short_and_interrupted_completions_change_nothing)
{
	need_uring();
	char *want = NULL, *got = NULL;
	cr_assert_eq(run_rate(CDR_IO_READ, &want, NULL), 0, "%s", err);
	cdr__sys_table.uring_wait_cqe = wait_cqe_short;
	cr_assert_eq(run_rate(CDR_IO_URING, &got, NULL), 0, "%s", err);
	cr_assert_gt(ncqe, 30); /* the faults really were in the path */
	cr_assert_str_eq(got, want);
	free(want);
	free(got);
}
