/*
 * write.c - outputs that appear whole or not at all.
 *
 * Every output is written under a temporary name in the directory of its
 * final name, flushed with fsync and renamed into place only when the run
 * succeeded; rename(2) within a directory is atomic, so a reader sees the
 * old file or the complete new one. A failed run removes its temporaries;
 * a signal handler may call cdr_cleanup_temps() to do the same, which is
 * why the registry below is a fixed array touched only with plain stores.
 *
 * Sections: writing - temporary-file registry - temporary files - whole
 * files.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sys.h"
#include "write.h"

/* ---- writing --------------------------------------------------------- */

int cdr__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = cdr__sys_table.write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- temporary-file registry ----------------------------------------- */

#define MAX_TEMPS 16
static char *volatile temps[MAX_TEMPS];

static void reg(char *path)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (!temps[i]) {
			temps[i] = path;
			return;
		}
}

static void unreg(const char *path)
{
	for (int i = 0; i < MAX_TEMPS; i++)
		if (temps[i] == path)
			temps[i] = NULL;
}

/* Async-signal-safe: unlink(2) only. */
void cdr_cleanup_temps(void)
{
	for (int i = 0; i < MAX_TEMPS; i++) {
		char *p = temps[i];
		if (p)
			unlink(p);
	}
}

/* ---- temporary files ------------------------------------------------- */

int cdr__tmp_open(cdr__tmpfile *f, const char *path, char *err, size_t errlen)
{
	static unsigned seq;
	size_t n = strlen(path) + 64;
	f->fd = -1;
	f->final = strdup(path);
	f->tmp = malloc(n);
	if (!f->final || !f->tmp) {
		free(f->final);
		free(f->tmp);
		f->final = f->tmp = NULL;
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	snprintf(f->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(),
		 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	reg(f->tmp);
	f->fd = cdr__sys_table.open(f->tmp, O_WRONLY | O_CREAT | O_EXCL |
						    O_APPEND | O_CLOEXEC,
				    0644);
	if (f->fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot create: %s", f->tmp,
			 strerror(e));
		cdr__tmp_abort(f);
		return -e;
	}
	return 0;
}

int cdr__tmp_commit(cdr__tmpfile *f, char *err, size_t errlen)
{
	int e = 0;
	if (cdr__sys_table.fsync(f->fd) && errno != EINVAL)
		e = errno;
	if (close(f->fd) && !e)
		e = errno;
	f->fd = -1;
	if (!e && cdr__sys_table.rename(f->tmp, f->final))
		e = errno;
	if (e) {
		snprintf(err, errlen, "%s: cannot write: %s", f->final,
			 strerror(e));
		cdr__tmp_abort(f);
		return -e;
	}
	unreg(f->tmp);
	free(f->tmp);
	free(f->final);
	f->tmp = f->final = NULL;
	return 0;
}

void cdr__tmp_abort(cdr__tmpfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp) {
		unlink(f->tmp);
		unreg(f->tmp);
	}
	free(f->tmp);
	free(f->final);
	f->tmp = f->final = NULL;
}

/* ---- whole files ----------------------------------------------------- */

int cdr_write_file_atomic(const char *path, const void *buf, size_t len,
			  char *err, size_t errlen)
{
	if (!path || !strcmp(path, "-")) {
		if (cdr__write_all(STDOUT_FILENO, buf, len)) {
			int e = errno;
			snprintf(err, errlen, "standard output: %s",
				 strerror(e));
			return -e;
		}
		return 0;
	}
	cdr__tmpfile f;
	int rc = cdr__tmp_open(&f, path, err, errlen);
	if (rc)
		return rc;
	if (cdr__write_all(f.fd, buf, len)) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
		cdr__tmp_abort(&f);
		return -e;
	}
	return cdr__tmp_commit(&f, err, errlen);
}
