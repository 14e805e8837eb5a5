/*
 * reader_read.c - the read(2)/pread(2) backend: the fallback, and the
 * reference the io_uring backend must agree with byte for byte.
 */
#include <errno.h>
#include <unistd.h>

#include "internal.h"
#include "sys.h"

static ssize_t fill_read(cdr__backend *b, int fd, char *buf, size_t len,
			 int64_t off)
{
	size_t got = 0;
	(void)b;
	/* Loop: pipes and signals deliver short reads; only 0 means EOF. */
	while (got < len) {
		ssize_t n = off >= 0
				    ? cdr__sys_table.pread(fd, buf + got,
							   len - got,
							   (off_t)(off + (int64_t)got))
				    : cdr__sys_table.read(fd, buf + got,
							  len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void close_read(cdr__backend *b)
{
	(void)b;
}

cdr__backend *cdr__backend_read(void)
{
	static cdr__backend be = {"read", fill_read, close_read};
	return &be;
}
