/*
 * source.h - one input's bytes, whatever carries them (SPEC 11,
 * "Compressed files").
 *
 * A source sits between the raw byte layer (a cdr__backend: read(2)/pread
 * or io_uring, internal.h) and the reader's line framing (reader.c's
 * read_input). It is opened on a descriptor, looks at the first bytes and
 * becomes one of:
 *
 *   plain  the bytes as they are; seekable when the descriptor is a
 *          regular file (duplicates are read back from it by offset);
 *   gzip   1f 8b: decoded with ISA-L's igzip (source_gzip.c);
 *   zstd   28 b5 2f fd: decoded with libzstd (source_zstd.c).
 *
 * Decoded bytes have no offsets in the file they came from, so a
 * compressed input is never seekable: the offsets the duplicate check
 * records are offsets in the decoded stream, and its lines are found again
 * by decoding once more (dedup.c). A compressed regular file is decoded
 * again from its path; a compressed stream keeps its *compressed* bytes in
 * the run's spool as they are read (cdr__source_spool), several times
 * fewer than the decoded ones, and is decoded again from there
 * (cdr__source_open_region). A plain stream is spooled as it is, by the
 * reader.
 *
 * The magic decides, never the name: `x.csv` may hold gzip, `x.gz` plain
 * text. A stream's first bytes, read to look at the magic, are handed out
 * again first; a regular file is simply read again from offset 0.
 *
 * Threads: a source belongs to the thread that opened it (the reader).
 *
 * Cost: decoding runs on the reader thread, ahead of the workers. ISA-L
 * and libzstd decode CDR text at 0.4-0.75 GB/s here, faster than two
 * workers rate it (about 0.1-0.2 GB/s), so the decoder keeps up; what a
 * compressed input adds is the reader's share of two cores. Copying the
 * decoded bytes into a spool, as a pipe's are, once cost more than the
 * decoding itself (31% of a gzip run's samples in the kernel's copy for
 * pwrite, against 11% in ISA-L): hence no spool of decoded bytes
 * (bench/README.md, "Compressed inputs").
 */
#ifndef CDR_SOURCE_H
#define CDR_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cdrate/cdrate.h"
#include "internal.h"

/* Compressed bytes read from the raw layer at a time. Compressed CDRs are
 * 5-10x smaller than their text, so 1 MiB decodes to about one CHUNK of
 * lines; with io_uring it is two slices read in parallel. */
#define CDR__SRC_RAW ((size_t)1 << 20)

typedef struct cdr__source cdr__source;

struct cdr__source {
	/* The raw layer. */
	cdr__backend *be;
	int fd;
	int regular;	  /* fd is a regular file, read at raw_base + raw_off */
	uint64_t raw_off; /* raw bytes taken from fd so far */
	uint64_t raw_base, raw_len; /* a region of fd (UINT64_MAX: to its end) */
	/* Where the raw bytes handed out are copied (cdr__source_spool), or
	 * -1; spooled counts them. */
	int spool_fd;
	uint64_t spool_at, spooled;
	/* A stream's first bytes, read to find the magic, given out again. */
	unsigned char head[4];
	size_t head_n, head_at;

	int comp; /* CDR_COMP_* */
	/*
	 * Up to len decoded bytes into buf: short only at the end of the
	 * input (0 then), or -errno. A decoder returns -EBADMSG for data
	 * that is corrupt or cut short and says what in `why`.
	 */
	ssize_t (*fill)(cdr__source *s, char *buf, size_t len);
	void (*fini)(cdr__source *s); /* the decoder's state, if any */
	void *dec;
	char why[128];
};

/*
 * Open a source on fd (not taken over: the caller closes it), reading
 * through `be` at offsets when `regular`, else at the stream position.
 * Reads the first bytes to choose plain, gzip or zstd. Returns 0 or
 * -errno (-ENOMEM when a decoder cannot be made).
 */
int cdr__source_open(cdr__source *s, int fd, cdr__backend *be, int regular);
/*
 * Open a source on the bytes fd holds at [base, base + len), read by
 * offset with read(2): a compressed stream's spooled bytes, decoded again.
 */
int cdr__source_open_region(cdr__source *s, int fd, uint64_t base,
			    uint64_t len);
/*
 * From now on copy every raw byte the decoder takes (the sniffed head
 * included) to fd at `at` onwards, so a stream can be decoded again later;
 * s->spooled counts them. A failed write fails the fill with -errno and
 * says so in `why`.
 */
void cdr__source_spool(cdr__source *s, int fd, uint64_t at);
/* Decoded bytes (see fill above). */
ssize_t cdr__source_fill(cdr__source *s, char *buf, size_t len);
/* Can lines be read back from the descriptor at the offsets fill gave?
 * Only a plain regular file; a stream is spooled, and compressed bytes
 * are decoded again to find their lines (dedup.c). */
int cdr__source_seekable(const cdr__source *s);
/* Free the decoder; NULL-safe, idempotent. */
void cdr__source_close(cdr__source *s);

/* For the decoders: raw bytes, the head first; short only at the end. */
ssize_t cdr__source_raw(cdr__source *s, void *buf, size_t len);
/* Make s's decoder (fill, fini, dec); 0 or -ENOMEM. */
int cdr__source_gzip(cdr__source *s);
int cdr__source_zstd(cdr__source *s);

/*
 * The inputs a directory stands for (SPEC 2: its regular files, by name):
 * `*names` gets n malloc'd "DIR/NAME" paths sorted bytewise and `*sizes`
 * their sizes (either array NULL when n is 0; free each name, then both).
 * Entries that are not regular files, or vanish while listed, are left
 * out. 0, or -errno from opendir, or -ENOMEM.
 */
int cdr__list_dir(const char *dir, char ***names, uint64_t **sizes,
		  size_t *n);

#endif
