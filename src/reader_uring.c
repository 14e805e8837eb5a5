/*
 * reader_uring.c - the io_uring backend (liburing).
 *
 * The ring is created once per run and owned by the reader thread. A fill
 * is split into up to DEPTH reads of SLICE bytes that are all in flight at
 * once, so the kernel works on the whole buffer in parallel instead of one
 * read at a time; completions may arrive in any order, each says which
 * slice it was through user_data. Pipes (off == -1) are read one request
 * at a time, since their data has no offsets to split on. Completions are
 * waited for through the system-call table (sys.h), so that tests can fail
 * them, cut them short or interrupt them.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sys.h"

#define DEPTH 8
#define SLICE ((size_t)512 * 1024)

typedef struct uring_be {
	cdr__backend be;
	struct io_uring ring;
} uring_be;

/* Read len bytes at off (or the stream position) in slices; returns the
 * contiguous bytes read from the start, or -errno. */
static ssize_t fill_uring(cdr__backend *b, int fd, char *buf, size_t len,
			  int64_t off)
{
	uring_be *u = (uring_be *)b;
	size_t done = 0;

	while (done < len) {
		size_t nslice = off < 0 ? 1 : (len - done + SLICE - 1) / SLICE;
		if (nslice > DEPTH)
			nslice = DEPTH;
		size_t got[DEPTH] = {0}, want[DEPTH];
		uint8_t retry[DEPTH] = {0};
		for (size_t i = 0; i < nslice; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
			size_t o = done + i * SLICE;
			want[i] = len - o < SLICE || off < 0 ? len - o : SLICE;
			if (off < 0 && want[i] > SLICE)
				want[i] = SLICE;
			io_uring_prep_read(sqe, fd, buf + o, (unsigned)want[i],
					   off < 0 ? (uint64_t)-1
						   : (uint64_t)(off + (int64_t)o));
			io_uring_sqe_set_data64(sqe, i);
		}
		int rc = io_uring_submit(&u->ring);
		if (rc < 0)
			return rc;
		int err = 0;
		for (size_t i = 0; i < nslice; i++) {
			struct io_uring_cqe *cqe;
			do
				rc = cdr__sys_table.uring_wait_cqe(&u->ring,
								   &cqe);
			while (rc == -EINTR);
			if (rc < 0)
				return rc;
			size_t k = (size_t)io_uring_cqe_get_data64(cqe);
			/* An interrupted read is read again, as read(2)'s
			 * EINTR is; taken for 0 bytes it would end the file
			 * early and drop its records. */
			if (cqe->res == -EINTR || cqe->res == -EAGAIN)
				retry[k] = 1;
			else if (cqe->res < 0 && !err)
				err = cqe->res;
			else if (cqe->res > 0)
				got[k] = (size_t)cqe->res;
			io_uring_cqe_seen(&u->ring, cqe);
		}
		if (err)
			return err;
		/* A short slice is the end of file, or a short read that we
		 * simply continue from; either way stop at the first gap. */
		for (size_t i = 0; i < nslice; i++) {
			done += got[i];
			if (got[i] < want[i]) {
				if (got[i] == 0 && !retry[i])
					return (ssize_t)done;
				goto again;
			}
		}
		continue;
again:;
	}
	return (ssize_t)done;
}

static void close_uring(cdr__backend *b)
{
	uring_be *u = (uring_be *)b;
	io_uring_queue_exit(&u->ring);
	free(u);
}

cdr__backend *cdr__backend_uring(int *why)
{
	uring_be *u = calloc(1, sizeof(*u));
	if (!u) {
		*why = -ENOMEM;
		return NULL;
	}
	int rc = cdr__sys_table.uring_init(DEPTH, &u->ring, 0);
	if (rc < 0) {
		free(u);
		*why = rc;
		return NULL;
	}
	u->be.name = "io_uring";
	u->be.fill = fill_uring;
	u->be.close = close_uring;
	return &u->be;
}
