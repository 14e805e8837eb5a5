/*
 * source_zstd.c - the zstd decoder (libzstd's streaming API).
 *
 * ZSTD_decompressStream reads frames one after another by itself, so
 * multi-frame files (`zstd -c a >x; zstd -c b >>x`, pzstd, seekable-format
 * writers) and skippable frames need nothing here. It returns 0 exactly
 * when a frame is fully decoded and flushed; the input may end only
 * there, else it was cut short. Frame checksums, when the writer added
 * them, are checked by the library.
 *
 * Memory: the window a frame asks for, up to libzstd's default limit
 * (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 128 MiB); a frame that asks for more is
 * refused as corrupt (`zstd --long=31` output would need --memory).
 *
 * Sections: state - fill - make.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

#include "source.h"

/* ---- state ----------------------------------------------------------- */

typedef struct zs {
	ZSTD_DStream *d;
	unsigned char *in; /* [CDR__SRC_RAW] */
	ZSTD_inBuffer ib;
	int eof;
	size_t hint; /* the last return of ZSTD_decompressStream; 0: between frames */
} zs;

/* ---- fill ------------------------------------------------------------ */

static ssize_t zstd_fill(cdr__source *s, char *buf, size_t len)
{
	zs *z = s->dec;
	ZSTD_outBuffer ob = {buf, len, 0};

	while (ob.pos < ob.size) {
		if (z->ib.pos == z->ib.size && !z->eof) {
			ssize_t n = cdr__source_raw(s, z->in, CDR__SRC_RAW);
			if (n < 0)
				return n;
			z->eof = n == 0;
			z->ib = (ZSTD_inBuffer){z->in, (size_t)n, 0};
		}
		/* Between frames with nothing left: the end. (A call on
		 * no input there would ask for the next frame's header.) */
		if (z->eof && z->ib.pos == z->ib.size && z->hint == 0)
			break;
		size_t before = ob.pos;
		/* At the end of the input this still runs again while the
		 * frame holds decoded bytes that did not fit last time. */
		size_t rc = ZSTD_decompressStream(z->d, &ob, &z->ib);
		if (ZSTD_isError(rc)) {
			snprintf(s->why, sizeof(s->why), "corrupt zstd data: %s",
				 ZSTD_getErrorName(rc));
			return -EBADMSG;
		}
		z->hint = rc;
		if (z->eof && z->ib.pos == z->ib.size && ob.pos == before) {
			if (rc == 0)
				break; /* the end, between frames */
			snprintf(s->why, sizeof(s->why),
				 "truncated zstd data (ends inside a frame)");
			return -EBADMSG;
		}
	}
	return (ssize_t)ob.pos;
}

/* ---- make ------------------------------------------------------------ */

static void zstd_fini(cdr__source *s)
{
	zs *z = s->dec;
	if (z) {
		ZSTD_freeDStream(z->d);
		free(z->in);
	}
	free(z);
}

int cdr__source_zstd(cdr__source *s)
{
	zs *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->d = ZSTD_createDStream();
	z->in = malloc(CDR__SRC_RAW);
	if (!z->d || !z->in) {
		ZSTD_freeDStream(z->d);
		free(z->in);
		free(z);
		return -ENOMEM;
	}
	z->hint = 1; /* no frame seen yet: an empty input is truncated */
	s->comp = CDR_COMP_ZSTD;
	s->dec = z;
	s->fill = zstd_fill;
	s->fini = zstd_fini;
	return 0;
}
