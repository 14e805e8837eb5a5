/*
 * write.h - output sets (cdr_outputs, write.c): what the run needs of them.
 */
#ifndef CDR_WRITE_H
#define CDR_WRITE_H

#include <stddef.h>
#include <sys/types.h>

#include "cdrate/cdrate.h"

/* Write all of buf (retrying short writes and EINTR); 0 or -1 with errno. */
int cdr__write_all(int fd, const void *buf, size_t len);
/* The same at offset `off` (pwrite: the fd must not be O_APPEND). */
int cdr__pwrite_all(int fd, const void *buf, size_t len, off_t off);

/*
 * The file the bytes of output `id` go to while the run lasts: a
 * temporary opened O_RDWR | O_APPEND, so workers may append whole lines
 * from several threads and finish_output may read it back and compact it.
 * -1 for id 0 or an unopened set.
 */
int cdr__outputs_fd(const cdr_outputs *o, int id);
/* "--rejects out/r.csv", "standard output": output `id` in messages. */
const char *cdr__outputs_label(const cdr_outputs *o, int id);

#endif
