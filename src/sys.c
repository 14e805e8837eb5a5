/*
 * sys.c - the default system-call table (see sys.h).
 */
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <unistd.h>

#include "sys.h"

static int sys_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int sys_uring_init(unsigned entries, struct io_uring *ring,
			  unsigned flags)
{
	return io_uring_queue_init(entries, ring, flags);
}

/* liburing's own is inline: the table needs a function to point at. */
static int sys_uring_wait_cqe(struct io_uring *ring,
			      struct io_uring_cqe **cqe)
{
	return io_uring_wait_cqe(ring, cqe);
}

const cdr__sys cdr__sys_default = {
	sys_open, read,	  pread,  write,	  pwrite,
	fsync,	  rename, sys_uring_init, sys_uring_wait_cqe,
};

cdr__sys cdr__sys_table = {
	sys_open, read,	  pread,  write,	  pwrite,
	fsync,	  rename, sys_uring_init, sys_uring_wait_cqe,
};
