/*
 * test_write.c - output sets (write.c): collisions refused, temporaries
 * with and without O_TMPFILE, a foreign file at a temporary's name left
 * alone, mode and symlinks kept, and a commit that fails half-way (second
 * fsync, second rename) leaving every old output as it was. Each fault
 * test runs with O_TMPFILE and with the named-temporary fallback, the way
 * the reader's tests run once per I/O backend.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys.h"
#include "testutil.h"

static char *dir;
static char pa[600], pb[600], pc[600];
static char err[CDR_ERR_MAX];

static void setup(void)
{
	dir = strdup("/tmp/cdrate-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(pa, sizeof(pa), "%s/a.csv", dir);
	snprintf(pb, sizeof(pb), "%s/b.csv", dir);
	snprintf(pc, sizeof(pc), "%s/c.csv", dir);
}

static void teardown(void)
{
	cdr__sys_table = cdr__sys_default;
	tu_rmdir(dir);
}

TestSuite(write, .init = setup, .fini = teardown);

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* The file's text (up to 255 bytes), "" when it does not exist. */
static const char *text(const char *path)
{
	static char b[4][256];
	static int k;
	char *s = b[k++ & 3];
	FILE *f = fopen(path, "r");
	s[0] = '\0';
	if (f) {
		s[fread(s, 1, 255, f)] = '\0';
		fclose(f);
	}
	return s;
}

/* How many names in dir contain `part`. */
static int count(const char *part)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)))
		n += strstr(e->d_name, part) != NULL;
	closedir(d);
	return n;
}

/* The O_TMPFILE-less file system: open(dir, O_TMPFILE) says so. */
static int open_no_tmpfile(const char *path, int flags, mode_t mode)
{
	if ((flags & O_TMPFILE) == O_TMPFILE) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return open(path, flags, mode);
}

static int nth, fail_at;

static int fsync_nth(int fd)
{
	if (++nth == fail_at) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int rename_nth(const char *a, const char *b)
{
	if (++nth == fail_at) {
		errno = EIO;
		return -1;
	}
	return rename(a, b);
}

/* Three outputs over three old files, written and committed. */
static int commit_three(void)
{
	cdr_outputs *o;
	cr_assert_eq(cdr_outputs_create(&o), 0);
	int a = cdr_outputs_add(o, "--out", pa, err, sizeof(err));
	int b = cdr_outputs_add(o, "--rejects", pb, err, sizeof(err));
	int c = cdr_outputs_add(o, "--itemize", pc, err, sizeof(err));
	cr_assert(a == 1 && b == 2 && c == 3);
	cr_assert_eq(cdr_outputs_check(o, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cdr_outputs_open(o, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cdr_outputs_write(o, a, "new-a", 5, err, sizeof(err)), 0);
	cr_assert_eq(cdr_outputs_write(o, b, "new-b", 5, err, sizeof(err)), 0);
	cr_assert_eq(cdr_outputs_write(o, c, "new-c", 5, err, sizeof(err)), 0);
	int rc = cdr_outputs_commit(o, err, sizeof(err));
	cdr_outputs_free(o);
	return rc;
}

static void half_commit(int tmpfile, int (*fsync_)(int),
			int (*rename_)(const char *, const char *))
{
	put(pa, "old-a");
	put(pb, "old-b");
	put(pc, "old-c");
	if (!tmpfile)
		cdr__sys_table.open = open_no_tmpfile;
	if (fsync_)
		cdr__sys_table.fsync = fsync_;
	if (rename_)
		cdr__sys_table.rename = rename_;
	nth = 0;
	fail_at = 2;
	cr_assert_neq(commit_three(), 0);
	cr_assert(strstr(err, "--rejects") && strstr(err, "Input/output error"),
		  "%s", err);
	cr_assert_str_eq(text(pa), "old-a");
	cr_assert_str_eq(text(pb), "old-b");
	cr_assert_str_eq(text(pc), "old-c");
	cr_assert_eq(count(".tmp."), 0, "temporaries left");
	/* And undisturbed, all three are replaced. */
	fail_at = 0;
	cr_assert_eq(commit_three(), 0, "%s", err);
	cr_assert_str_eq(text(pa), "new-a");
	cr_assert_str_eq(text(pb), "new-b");
	cr_assert_str_eq(text(pc), "new-c");
	cr_assert_eq(count(".tmp."), 0, "temporaries left");
}

Test(write, second_rename_fails_all_old_outputs_stay)
{
	half_commit(1, NULL, rename_nth);
}

Test(write, second_rename_fails_without_o_tmpfile)
{
	half_commit(0, NULL, rename_nth);
}

Test(write, second_fsync_fails_all_old_outputs_stay)
{
	half_commit(1, fsync_nth, NULL);
}

Test(write, second_fsync_fails_without_o_tmpfile)
{
	half_commit(0, fsync_nth, NULL);
}

/* With O_TMPFILE an open output has no name at all (nothing for SIGKILL
 * to leave behind); without, a named temporary that cleanup removes. */
Test(write, temporaries_named_only_without_o_tmpfile)
{
	for (int tmpfile = 1; tmpfile >= 0; tmpfile--) {
		cdr__sys_table.open = tmpfile ? cdr__sys_default.open
					      : open_no_tmpfile;
		cdr_outputs *o;
		cr_assert_eq(cdr_outputs_create(&o), 0);
		cr_assert_eq(cdr_outputs_add(o, "--out", pa, err, sizeof(err)), 1);
		cr_assert_eq(cdr_outputs_open(o, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(count(".tmp."), tmpfile ? 0 : 1);
		cdr_cleanup_temps();
		cr_assert_eq(count(".tmp."), 0);
		cdr_outputs_free(o);
		cr_assert_eq(count("a.csv"), 0, "an uncommitted output appeared");
	}
}

/* Someone else's files at the temporary names: skipped, never removed,
 * with or without O_TMPFILE, through commit and through abort. */
Test(write, foreign_file_at_temporary_name_is_left_alone)
{
	char foreign[700];
	for (int i = 0; i < 4; i++) {
		snprintf(foreign, sizeof(foreign), "%s.tmp.%ld.%d", pa,
			 (long)getpid(), i);
		put(foreign, "mine");
	}
	for (int tmpfile = 1; tmpfile >= 0; tmpfile--) {
		cdr__sys_table.open = tmpfile ? cdr__sys_default.open
					      : open_no_tmpfile;
		put(pa, "old");
		cdr_outputs *o;
		cr_assert_eq(cdr_outputs_create(&o), 0);
		cr_assert_eq(cdr_outputs_add(o, "--out", pa, err, sizeof(err)), 1);
		cr_assert_eq(cdr_outputs_open(o, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(cdr_outputs_write(o, 1, "new", 3, err, sizeof(err)), 0);
		cr_assert_eq(cdr_outputs_commit(o, err, sizeof(err)), 0, "%s", err);
		cdr_outputs_free(o);
		cr_assert_str_eq(text(pa), "new");
		cr_assert_eq(count(".tmp."), 4);
		for (int i = 0; i < 4; i++) {
			snprintf(foreign, sizeof(foreign), "%s.tmp.%ld.%d", pa,
				 (long)getpid(), i);
			cr_assert_str_eq(text(foreign), "mine");
		}
	}
}

Test(write, mode_kept_and_symlink_target_replaced)
{
	put(pb, "old");
	chmod(pb, 0600);
	cr_assert_eq(symlink("b.csv", pa), 0);
	cr_assert_eq(cdr_write_file_atomic(pa, "new", 3, err, sizeof(err)), 0,
		     "%s", err);
	struct stat st;
	cr_assert_eq(lstat(pa, &st), 0);
	cr_assert(S_ISLNK(st.st_mode), "the link was replaced");
	cr_assert_eq(stat(pb, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_str_eq(text(pb), "new");
}

Test(write, collisions_refused)
{
	char sub[700], spelled[700];
	snprintf(sub, sizeof(sub), "%s/in", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	snprintf(spelled, sizeof(spelled), "%s/in/../b.csv", dir);
	put(pa, "input");
	struct {
		const char *x, *y;
		const char *want;
	} cases[] = {
		{pa, NULL, "is also the input"},
		{pb, spelled, "is also --out"},
		{"-", "-", "is also standard output"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		cdr_outputs *o;
		cr_assert_eq(cdr_outputs_create(&o), 0);
		cr_assert_eq(cdr_outputs_protect(o, "the input", pa, err,
						 sizeof(err)), 0);
		cr_assert_eq(cdr_outputs_protect(o, "the input", sub, err,
						 sizeof(err)), 0);
		cdr_outputs_add(o, "--out", cases[i].x, err, sizeof(err));
		if (cases[i].y)
			cdr_outputs_add(o, "--rejects", cases[i].y, err,
					sizeof(err));
		cr_assert_eq(cdr_outputs_check(o, err, sizeof(err)), -EINVAL,
			     "case %zu", i);
		cr_assert(strstr(err, cases[i].want), "%s", err);
		cdr_outputs_free(o);
	}
	/* A new name inside a protected directory. */
	cdr_outputs *o;
	snprintf(spelled, sizeof(spelled), "%s/in/new.csv", dir);
	cr_assert_eq(cdr_outputs_create(&o), 0);
	cdr_outputs_protect(o, "the input", sub, err, sizeof(err));
	cdr_outputs_add(o, "--itemize", spelled, err, sizeof(err));
	cr_assert_eq(cdr_outputs_check(o, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "is also inside the input"), "%s", err);
	cdr_outputs_free(o);
	cr_assert_str_eq(text(pa), "input");
}

/* The run's own outputs (rejects_path) are checked against its inputs. */
Test(write, run_refuses_rejects_on_its_input)
{
	char *td = tu_tariff();
	cdr_tariff *t = tu_load(td, err);
	cr_assert_not_null(t, "%s", err);
	put(pa, "x1,13800000001,voice,2026-10-12 10:00:00,13900000000,60,0\n");
	cdr_run_opts ro;
	memset(&ro, 0, sizeof(ro));
	ro.period_year = 2026;
	ro.period_month = 10;
	ro.threads = 1;
	ro.io = CDR_IO_READ;
	ro.rejects_path = pa;
	cdr_run *r;
	cr_assert_eq(cdr_run_create(&r, &t, 1, &ro, err, sizeof(err)), 0);
	cr_assert_eq(cdr_run_add_input(r, pa, err, sizeof(err)), 0);
	cr_assert_eq(cdr_run_execute(r, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "is also the input"), "%s", err);
	cdr_run_free(r);
	cr_assert(strstr(text(pa), "x1,"), "the input was replaced");
	cdr_tariff_free(t);
	tu_rmdir(td);
}
