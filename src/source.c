/*
 * source.c - opening a source: the magic, the raw layer, plain bytes.
 *
 * The decoders (source_gzip.c, source_zstd.c) read compressed bytes
 * through cdr__source_raw, so they run over io_uring or read(2) alike and
 * see a stream's sniffed head like any other bytes. Plain input is the
 * raw layer itself: no copy beyond the one the backend makes.
 *
 * Sections: names - raw bytes - plain - open and close.
 */
#include <errno.h>
#include <string.h>

#include "source.h"

/* ---- names ----------------------------------------------------------- */

static const char *const comp_names[CDR_NCOMP] = {"plain", "gzip", "zstd"};

const char *cdr_comp_name(int c)
{
	return c >= 0 && c < CDR_NCOMP ? comp_names[c] : NULL;
}

/* ---- raw bytes ------------------------------------------------------- */

ssize_t cdr__source_raw(cdr__source *s, void *buf, size_t len)
{
	size_t got = 0;
	if (s->head_at < s->head_n) {
		got = s->head_n - s->head_at < len ? s->head_n - s->head_at
						   : len;
		memcpy(buf, s->head + s->head_at, got);
		s->head_at += got;
	}
	if (got == len)
		return (ssize_t)got;
	ssize_t n = s->be->fill(s->be, s->fd, (char *)buf + got, len - got,
				s->regular ? (int64_t)s->raw_off : -1);
	if (n < 0)
		return n;
	s->raw_off += (uint64_t)n;
	return (ssize_t)(got + (size_t)n);
}

/* ---- plain ----------------------------------------------------------- */

static ssize_t plain_fill(cdr__source *s, char *buf, size_t len)
{
	return cdr__source_raw(s, buf, len);
}

/* ---- open and close -------------------------------------------------- */

int cdr__source_open(cdr__source *s, int fd, cdr__backend *be, int regular)
{
	static const unsigned char gz[2] = {0x1f, 0x8b};
	static const unsigned char zs[4] = {0x28, 0xb5, 0x2f, 0xfd};

	memset(s, 0, sizeof(*s));
	s->be = be;
	s->fd = fd;
	s->regular = regular;
	s->fill = plain_fill;
	/* Four bytes tell every magic apart. A pipe's fill waits for all
	 * four (or the end), so a writer's short first write cannot make
	 * gzip look like text. */
	ssize_t n = cdr__source_raw(s, s->head, sizeof(s->head));
	if (n < 0)
		return (int)n;
	s->head_n = (size_t)n;
	if (regular) { /* read the file again from its start */
		s->head_n = 0;
		s->raw_off = 0;
	}
	if (n >= 4 && !memcmp(s->head, zs, 4))
		return cdr__source_zstd(s);
	if (n >= 2 && !memcmp(s->head, gz, 2))
		return cdr__source_gzip(s);
	return 0;
}

ssize_t cdr__source_fill(cdr__source *s, char *buf, size_t len)
{
	return s->fill(s, buf, len);
}

int cdr__source_seekable(const cdr__source *s)
{
	return s->regular && s->comp == CDR_COMP_NONE;
}

void cdr__source_close(cdr__source *s)
{
	if (s && s->fini)
		s->fini(s);
	if (s) {
		s->fini = NULL;
		s->dec = NULL;
	}
}
