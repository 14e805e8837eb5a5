/*
 * source.c - opening a source: the magic, the raw layer, plain bytes.
 *
 * The decoders (source_gzip.c, source_zstd.c) read compressed bytes
 * through cdr__source_raw, so they run over io_uring or read(2) alike and
 * see a stream's sniffed head like any other bytes. Plain input is the
 * raw layer itself: no copy beyond the one the backend makes.
 *
 * Sections: names - raw bytes (and their spool) - plain - open and close.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "source.h"
#include "write.h"

/* ---- names ----------------------------------------------------------- */

static const char *const comp_names[CDR_NCOMP] = {"plain", "gzip", "zstd"};

const char *cdr_comp_name(int c)
{
	return c >= 0 && c < CDR_NCOMP ? comp_names[c] : NULL;
}

/* ---- raw bytes ------------------------------------------------------- */

/* Copy the raw bytes just handed out to the spool, at their place. */
static int spool_raw(cdr__source *s, const void *buf, size_t n)
{
	if (s->spool_fd < 0 || !n)
		return 0;
	if (cdr__pwrite_all(s->spool_fd, buf, n,
			    (off_t)(s->spool_at + s->spooled))) {
		int e = errno ? errno : EIO;
		snprintf(s->why, sizeof(s->why), "spooling: %s", strerror(e));
		return -e;
	}
	s->spooled += n;
	return 0;
}

ssize_t cdr__source_raw(cdr__source *s, void *buf, size_t len)
{
	size_t got = 0;
	if (s->head_at < s->head_n) {
		got = s->head_n - s->head_at < len ? s->head_n - s->head_at
						   : len;
		memcpy(buf, s->head + s->head_at, got);
		s->head_at += got;
	}
	int rc;
	if (got == len)
		return (rc = spool_raw(s, buf, got)) ? rc : (ssize_t)got;
	size_t want = len - got;
	if (s->raw_len - s->raw_off < want) /* a region ends before fd does */
		want = (size_t)(s->raw_len - s->raw_off);
	ssize_t n = want ? s->be->fill(s->be, s->fd, (char *)buf + got, want,
				       s->regular ? (int64_t)(s->raw_base +
							      s->raw_off)
						  : -1)
			 : 0;
	if (n < 0)
		return n;
	s->raw_off += (uint64_t)n;
	got += (size_t)n;
	return (rc = spool_raw(s, buf, got)) ? rc : (ssize_t)got;
}

/* ---- plain ----------------------------------------------------------- */

static ssize_t plain_fill(cdr__source *s, char *buf, size_t len)
{
	return cdr__source_raw(s, buf, len);
}

/* ---- open and close -------------------------------------------------- */

/* Sniff the magic of a source whose raw layer is set up, and choose. */
static int sniff(cdr__source *s)
{
	static const unsigned char gz[2] = {0x1f, 0x8b};
	static const unsigned char zs[4] = {0x28, 0xb5, 0x2f, 0xfd};
	int regular = s->regular;

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

static void init(cdr__source *s, int fd, cdr__backend *be, int regular)
{
	memset(s, 0, sizeof(*s));
	s->be = be;
	s->fd = fd;
	s->regular = regular;
	s->raw_len = UINT64_MAX;
	s->spool_fd = -1;
	s->fill = plain_fill;
}

int cdr__source_open(cdr__source *s, int fd, cdr__backend *be, int regular)
{
	init(s, fd, be, regular);
	return sniff(s);
}

int cdr__source_open_region(cdr__source *s, int fd, uint64_t base,
			    uint64_t len)
{
	init(s, fd, cdr__backend_read(), 1);
	s->raw_base = base;
	s->raw_len = len;
	return sniff(s);
}

void cdr__source_spool(cdr__source *s, int fd, uint64_t at)
{
	s->spool_fd = fd;
	s->spool_at = at;
	s->spooled = 0;
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

/* ---- a directory's inputs ----------------------------------------------- */

typedef struct {
	char *path;
	uint64_t size;
} dir_ent;

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const dir_ent *)a)->path, ((const dir_ent *)b)->path);
}

int cdr__list_dir(const char *dir, char ***names, uint64_t **sizes, size_t *n)
{
	*names = NULL;
	*sizes = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	dir_ent *e = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(dir) + strlen(de->d_name) + 2;
		char *full = malloc(len);
		if (!full) {
			rc = -ENOMEM;
			break;
		}
		snprintf(full, len, "%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(full, &st) || !S_ISREG(st.st_mode)) {
			free(full);
			continue;
		}
		if (cnt == cap) {
			size_t nc = cap ? 2 * cap : 16;
			dir_ent *ne = realloc(e, nc * sizeof(*ne));
			if (!ne) {
				free(full);
				rc = -ENOMEM;
				break;
			}
			e = ne;
			cap = nc;
		}
		e[cnt++] = (dir_ent){full, (uint64_t)st.st_size};
	}
	closedir(d);
	char **nm = NULL;
	uint64_t *sz = NULL;
	if (!rc && cnt && (!(nm = malloc(cnt * sizeof(*nm))) ||
			   !(sz = malloc(cnt * sizeof(*sz)))))
		rc = -ENOMEM;
	if (rc) {
		for (size_t i = 0; i < cnt; i++)
			free(e[i].path);
		free(e);
		free(nm);
		return rc;
	}
	if (cnt)
		qsort(e, cnt, sizeof(*e), cmp_ent);
	for (size_t i = 0; i < cnt; i++) {
		nm[i] = e[i].path;
		sz[i] = e[i].size;
	}
	free(e);
	*names = nm;
	*sizes = sz;
	*n = cnt;
	return 0;
}
