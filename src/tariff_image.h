/*
 * tariff_image.h - the subscriber tables of a tariff as tariff.c builds
 * them, and the compiled image of them that tariff_image.c writes and
 * maps (cdr_tariff_load_cached). Shared by those two files, and by the
 * pass (run.c) for the inline prefetch of a number's slot.
 */
#ifndef CDR_TARIFF_IMAGE_H
#define CDR_TARIFF_IMAGE_H

#include "internal.h"

/* The number table (tariff.c, "the subscriber table"): shards by the
 * hash's top bits, open addressing, one 64-byte slot a number. */
#define SUB_SHARD_BITS 4
#define SUB_SHARDS (1u << SUB_SHARD_BITS)

typedef struct subslot {
	uint64_t h, k0, k1;
	uint32_t first_row; /* the subscriber's rows, sorted by first day */
	uint32_t nrows;	    /* 0 = empty slot */
	/* The first row's fields the rating needs: one line per lookup. */
	int64_t from_day, to_day;
	uint32_t account, plan;
	uint32_t has_pkgs, pad;
} subslot; /* 64 bytes, line-aligned by cdr__calloc_huge */

typedef struct cdr__submap {
	subslot *s[SUB_SHARDS];
	uint32_t mask[SUB_SHARDS];
	uint32_t n[SUB_SHARDS];
} cdr__submap;

/* Prefetch the slot where the number of hash h is looked for first
 * (m may be NULL: no subscribers). */
static inline void cdr__submap_prefetch(const cdr__submap *m, uint64_t h)
{
	const unsigned k = (unsigned)(h >> (64 - SUB_SHARD_BITS));
	if (m)
		__builtin_prefetch(&m->s[k][(uint32_t)h & m->mask[k]]);
}

/* An image file opened and checked: header, checksums, fingerprint. */
typedef struct cdr__timg cdr__timg;

/*
 * Open the image at `path` and check it against the tariff fingerprint
 * `fp` (cdr_tariff_fingerprint's hex). 0: usable; 1: not (absent, stale,
 * corrupt, another version or byte order: `why` says which); -errno for
 * out of memory.
 */
int cdr__timg_open(cdr__timg **out, const char *path, const char *fp,
		   char *why, size_t whylen);
void cdr__timg_close(cdr__timg *img);

/*
 * Give t (its plans and packages loaded, its subscriber tables not) the
 * image's subscriber tables. 0: done, t owns img from now on; 1: the
 * plans or packages t loaded are not those the image was made with (a
 * file changed since the fingerprint: `why`), nothing changed; -ENOMEM.
 */
int cdr__timg_attach(cdr_tariff *t, cdr__timg *img, char *why,
		     size_t whylen);
/* Release what cdr__timg_attach gave t (from cdr_tariff_free). */
void cdr__timg_detach(cdr_tariff *t);

/* How the number table is used: 0 in place, 1 copied to huge pages. */
extern int cdr__timg_copy;

/* tariff.c: the load of cdr_tariff_load, with the subscriber tables from
 * img when it fits (*used set to 1; img then belongs to the tariff) and
 * from the CSV otherwise (*used 0, why says why). */
int cdr__tariff_load_img(cdr_tariff **out, const char *dir,
			 const char *subscribers_path, cdr__timg *img,
			 int *used, char *why, size_t whylen, char *err,
			 size_t errlen);

#endif
