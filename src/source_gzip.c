/*
 * source_gzip.c - the gzip decoder: ISA-L's igzip streaming inflate.
 *
 * Why ISA-L, not zlib: on the benchmark CDRs (bench/README.md, "gzip
 * library") igzip inflates several times faster than zlib's inflate, and
 * decoding runs on the reader thread, ahead of every worker: its speed is
 * the ceiling of a gzip run.
 *
 * A file may hold several members end to end (`cat a.gz b.gz`, pigz
 * --independent, log rotation appending): they decode as one stream. After
 * a member's trailer the next bytes must be another member or the end;
 * anything else (trailing garbage, a stray zero) is corrupt, since gzip(1)
 * would warn about it too and a CDR file has no use for it. Corrupt data
 * (bad deflate block, CRC-32 or length mismatch, a bad header) and a file
 * that ends inside a member fail with -EBADMSG and say which in `why`.
 *
 * Sections: state - fill - make.
 */
#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <stdio.h>
#include <stdlib.h>

#include "source.h"

/* ---- state ----------------------------------------------------------- */

typedef struct gz {
	struct inflate_state st;
	unsigned char *in; /* [CDR__SRC_RAW] */
	int eof;	   /* the raw layer has no more bytes */
	uint64_t members;  /* members finished */
} gz;

static const char *isal_error(int rc)
{
	switch (rc) {
	case ISAL_INVALID_BLOCK: return "invalid deflate block";
	case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
	case ISAL_INVALID_LOOKBACK: return "invalid back-reference distance";
	case ISAL_INVALID_WRAPPER: return "bad gzip header";
	case ISAL_UNSUPPORTED_METHOD: return "unsupported compression method";
	case ISAL_INCORRECT_CHECKSUM: return "CRC-32 or length mismatch";
	default: return "undecodable data";
	}
}

static void member_start(gz *g)
{
	isal_inflate_reset(&g->st);
	/* Parse the gzip header and check the CRC-32 and length trailer. */
	g->st.crc_flag = ISAL_GZIP;
}

/* ---- fill ------------------------------------------------------------ */

static ssize_t gzip_fill(cdr__source *s, char *buf, size_t len)
{
	gz *g = s->dec;
	size_t out = 0;

	while (out < len) {
		if (!g->st.avail_in && !g->eof) {
			ssize_t n = cdr__source_raw(s, g->in, CDR__SRC_RAW);
			if (n < 0)
				return n;
			g->eof = n == 0;
			g->st.next_in = g->in;
			g->st.avail_in = (uint32_t)n;
		}
		if (g->st.block_state == ISAL_BLOCK_FINISH) {
			/* isal_inflate gives back the bytes it read ahead
			 * past a finished member, so avail_in holds what
			 * follows the trailer. */
			if (!g->st.avail_in)
				break; /* eof after a whole member: the end */
			member_start(g);
		}
		size_t room = len - out;
		g->st.next_out = (uint8_t *)buf + out;
		g->st.avail_out = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
		int rc = isal_inflate(&g->st);
		size_t made = (size_t)(g->st.next_out - ((uint8_t *)buf + out));
		out += made;
		if (rc < 0) {
			snprintf(s->why, sizeof(s->why),
				 "corrupt gzip data (member %llu): %s",
				 (unsigned long long)g->members + 1,
				 isal_error(rc));
			return -EBADMSG;
		}
		if (g->st.block_state == ISAL_BLOCK_FINISH) {
			g->members++;
			continue;
		}
		/* Nothing left to read and nothing more comes out: the file
		 * ends inside a member. */
		if (g->eof && !g->st.avail_in && !made) {
			snprintf(s->why, sizeof(s->why),
				 "truncated gzip data (ends inside member %llu)",
				 (unsigned long long)g->members + 1);
			return -EBADMSG;
		}
	}
	return (ssize_t)out;
}

/* ---- make ------------------------------------------------------------ */

static void gzip_fini(cdr__source *s)
{
	gz *g = s->dec;
	if (g)
		free(g->in);
	free(g);
}

int cdr__source_gzip(cdr__source *s)
{
	gz *g = calloc(1, sizeof(*g));
	if (!g || !(g->in = malloc(CDR__SRC_RAW))) {
		free(g);
		return -ENOMEM;
	}
	isal_inflate_init(&g->st);
	g->st.crc_flag = ISAL_GZIP;
	s->comp = CDR_COMP_GZIP;
	s->dec = g;
	s->fill = gzip_fill;
	s->fini = gzip_fini;
	return 0;
}
