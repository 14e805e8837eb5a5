/*
 * write.h - output files that appear whole or not at all (write.c).
 */
#ifndef CDR_WRITE_H
#define CDR_WRITE_H

#include <stddef.h>

/* An output being written under a temporary name next to its final one. */
typedef struct cdr__tmpfile {
	char *final;	/* final path */
	char *tmp;	/* temporary path, registered for signal cleanup */
	int fd;
} cdr__tmpfile;

/* Write all of buf (retrying short writes and EINTR); 0 or -1 with errno. */
int cdr__write_all(int fd, const void *buf, size_t len);
/* Create `path`.tmp.PID.N opened O_APPEND. 0 or -errno, message in err. */
int cdr__tmp_open(cdr__tmpfile *f, const char *path, char *err, size_t errlen);
/* fsync and rename into place. 0 or -errno with message. */
int cdr__tmp_commit(cdr__tmpfile *f, char *err, size_t errlen);
/* Close and remove the temporary file (NULL-safe, idempotent). */
void cdr__tmp_abort(cdr__tmpfile *f);

#endif
