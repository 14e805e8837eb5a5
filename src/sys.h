/*
 * sys.h - the system calls of the reader and the writer, through a table.
 *
 * As in SQLite's VFS, every call that can fail for reasons outside the
 * program goes through cdr__sys, so tests can swap in versions that return
 * ENOSPC, EIO, EINTR or short counts, refuse io_uring or fail its
 * completions, and check that a run fails cleanly (message, no output at
 * a final name, no temporaries) or recovers. Production code never changes the table.
 */
#ifndef CDR_SYS_H
#define CDR_SYS_H

#include <sys/types.h>

struct io_uring;
struct io_uring_cqe;

typedef struct cdr__sys {
	int (*open)(const char *path, int flags, mode_t mode);
	ssize_t (*read)(int fd, void *buf, size_t n);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	int (*fsync)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*uring_init)(unsigned entries, struct io_uring *ring,
			  unsigned flags);
	/* The completion of a read: a test may hand back its own copy of
	 * the CQE, with another result (-EIO, a short count), or -EINTR;
	 * the caller marks the ring's CQE seen either way. */
	int (*uring_wait_cqe)(struct io_uring *ring,
			      struct io_uring_cqe **cqe);
} cdr__sys;

/* The table in use; tests assign to its members and restore them. */
extern cdr__sys cdr__sys_table;
/* The real calls, for restoring. */
extern const cdr__sys cdr__sys_default;

#endif
