/*
 * fuzz_source.c - libFuzzer target: the sources (source.h) on any bytes.
 *
 * The input is put in a memfd and read twice: as a regular file (offsets,
 * the magic sniffed and read again from 0) and as a stream (the sniffed
 * head handed out again), with fills of a size the first byte picks. The
 * target aborts when:
 *
 *   - a fill fails with anything but -EBADMSG, or -EBADMSG without a why;
 *   - plain bytes come out other than they went in;
 *   - the file and stream passes disagree (bytes, status, compression);
 *   - a fill returns more than asked, or data after a short fill.
 *
 * Decoded output is capped at 4 MiB a pass: a few bytes of zstd can
 * describe gigabytes, and the cap keeps the fuzzer on the decoders' logic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP ((size_t)4 << 20)

typedef struct pass {
	int rc, comp;
	unsigned char *out;
	size_t n;
} pass;

static void run(int fd, int regular, size_t len, pass *p)
{
	cdr__source s;
	char *buf = malloc(len);
	memset(p, 0, sizeof(*p));
	p->out = malloc(CAP);
	if (!buf || !p->out)
		abort();
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	p->rc = cdr__source_open(&s, fd, cdr__backend_read(), regular);
	p->comp = s.comp;
	int ended = 0;
	while (!p->rc && p->n < CAP) {
		size_t want = len < CAP - p->n ? len : CAP - p->n;
		ssize_t got = cdr__source_fill(&s, buf, want);
		if (got < 0) {
			p->rc = (int)got;
			if (got != -EBADMSG || !s.why[0]) {
				fprintf(stderr, "fill: %zd, why '%s'\n", got, s.why);
				abort();
			}
			break;
		}
		if ((size_t)got > want || (ended && got))
			abort();
		memcpy(p->out + p->n, buf, (size_t)got);
		p->n += (size_t)got;
		if (!got)
			break;
		/* Short only at the end: one more fill must give 0. */
		if ((size_t)got < want)
			ended = 1;
	}
	cdr__source_close(&s);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t lens[] = {1, 7, 4096, 65536, (size_t)1 << 20};
	size_t len = lens[size ? data[0] % 5 : 0];
	int fd = memfd_create("fuzz_source", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	pass f, st;
	run(fd, 1, len, &f);
	run(fd, 0, len, &st);
	close(fd);
	if (f.rc != st.rc || f.comp != st.comp || f.n != st.n ||
	    memcmp(f.out, st.out, f.n))
		abort();
	if (f.comp == CDR_COMP_NONE &&
	    (f.rc || f.n != size || (size && memcmp(f.out, data, size))))
		abort();
	free(f.out);
	free(st.out);
	return 0;
}
