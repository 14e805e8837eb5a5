/*
 * agg.h - agg.c's allowance log read back a row at a time, for the
 * monthly charges (monthly.c, through monthly.h). Private to agg.c and
 * the month; the accumulator itself (cdr__acc) is declared in
 * internal.h.
 *
 * cdr__bk_rows_init groups a merged accumulator's log by row (or lends
 * the sealed log as it is); cdr__row_buckets then gives one row's
 * buckets in SPEC 7's taking order into a caller's scratch. Rows are
 * independent: threads may read rows apart, each with its own scratch
 * (the caller frees its bk and slot).
 */
#ifndef CDR_AGG_H
#define CDR_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/*
 * SPEC 7's taking order within a row: dearest price per unit first, ties
 * by zone, band (bytes), rate line. Each of the four is a rank computed
 * once per run over the tariff's rate rows, zones and bands, so ordering
 * a bucket costs a few integer compares (and the rank of a rate row's
 * line, with its zone and band, names the bucket: equal keys are one
 * bucket).
 */
typedef struct dear_rank {
	const cdr_tariff *t;
	uint32_t *dear; /* [nrates] dearness class, 0 dearest */
	uint32_t *line; /* [nrates] rank of the rate row's line */
	uint32_t *zone; /* [nzones + 1] rank of the zone's name, `*` at nzones */
	uint32_t band[256];
} dear_rank;

/* Scratch of cdr__row_buckets: the buckets of one row, and for a row of
 * many entries (a heavy caller: hundreds of thousands) an open-addressing
 * index over them, sized by the buckets (few), not the entries. */
typedef struct bk_scratch {
	cdr__bucket *bk;
	size_t n, cap;
	uint32_t *slot; /* bucket index + 1, 0 empty */
	uint32_t mask;
} bk_scratch;

/* The log, sorted once: entries counting-sorted by row. `own`: off and e
 * were made by cdr__bk_rows_init (else they are the accumulator's sealed log, read-only:
 * already in taking order, so nothing is sorted in them). */
typedef struct bk_rows {
	uint32_t *off; /* [nrows + 1]: row r's entries e[off[r] .. off[r + 1]) */
	cdr__bkent *e;
	dear_rank k;
	int own;
} bk_rows;

/* Row r's entries, before they are added up: a measure of its work. */
static inline uint32_t cdr__bk_rows_count(const bk_rows *b, uint32_t r)
{
	return b->off ? b->off[r + 1] - b->off[r] : 0;
}

/* The log of merged accumulator a by row into b: 0, or -ENOMEM with b
 * left empty (freeing it again does nothing). */
int cdr__bk_rows_init(bk_rows *b, const cdr__acc *a);
void cdr__bk_rows_free(bk_rows *b);
/* Row r's buckets with units, in taking order, into s->bk[0 .. s->n).
 * 0 or -ENOMEM. */
int cdr__row_buckets(bk_rows *b, bk_scratch *s, uint32_t r);

#endif
