/*
 * agg.c - accumulate rated records and compute the monthly charges.
 *
 * Each worker owns one cdr__acc per tariff: a dense array of per-account
 * sums (an account index is an array index, so adding a record is a few
 * 64-bit adds) and an append-only log of allowance entries, one per
 * record whose row holds an allowance of its service. Workers merge once
 * at the end (the logs are handed over whole); every sum is commutative,
 * so totals do not depend on thread count or input order.
 *
 * After the merge, totals_render works per subscriber row: recurring fees
 * with proration, package allowances (dearest first), outage credits with
 * their cap; then one line per account with the columns rounded once.
 *
 * Sections: accumulators - buckets - recurring fees - allowances - outages
 * - totals (account_line brings the three monthly parts together, per
 * account, on up to two threads by account range).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakdown.h"
#include "civil.h"
#include "internal.h"

/* ---- accumulators ---------------------------------------------------- */

int cdr__acc_init(cdr__acc *a, const cdr_tariff *t)
{
	memset(a, 0, sizeof(*a));
	a->t = t;
	a->acct = cdr__calloc_huge(t->naccounts, sizeof(*a->acct));
	if (!a->acct) {
		cdr__acc_fini(a);
		return -ENOMEM;
	}
	return 0;
}

void cdr__acc_fini(cdr__acc *a)
{
	cdr__free_huge(a->acct);
	cdr__free_huge(a->wide);
	for (uint32_t i = 0; i < a->nchunks; i++)
		free(a->chunks[i]);
	free(a->chunks);
	free(a->sealed_off);
	free(a->sealed);
	a->sealed_off = NULL;
	a->sealed = NULL;
	a->sealed_n = 0;
	a->acct = NULL;
	a->wide = NULL;
	a->chunks = NULL;
	a->nchunks = a->chunks_cap = 0;
	a->bk_n = 0;
	cdr__bd_free(a->bd);
	a->bd = NULL;
}

/* ---- buckets --------------------------------------------------------- */

/*
 * The pass only appends: one small entry per record (or split piece) to
 * the worker's log, in chunks that are never copied or re-hashed. Merging
 * workers hands the chunks over; the buckets are made once, at the end
 * (cdr__acc_buckets): a counting sort by row, then each row's few entries
 * sorted in taking order and coalesced. Every sum is commutative, so the
 * buckets do not depend on the order entries arrived in.
 */
static int log_push(cdr__acc *a, cdr__bkchunk *c)
{
	if (a->nchunks == a->chunks_cap) {
		uint32_t cap = a->chunks_cap ? a->chunks_cap * 2 : 16;
		cdr__bkchunk **n = realloc(a->chunks, cap * sizeof(cdr__bkchunk *));
		if (!n)
			return -ENOMEM;
		a->chunks = n;
		a->chunks_cap = cap;
	}
	a->chunks[a->nchunks++] = c;
	return 0;
}

/* Billed units stay below 3 * 10^12 (SPEC 3 and 4); a larger figure is
 * carried in several entries all the same (bk_add_long). */
static __attribute__((noinline)) int
bk_add_long(cdr__acc *a, uint32_t row, uint32_t rr, uint32_t z, uint32_t b,
	    uint64_t units, int sign)
{
	do {
		cdr__bkchunk *c = a->nchunks ? a->chunks[a->nchunks - 1] : NULL;
		if (!c || c->n == CDR_BK_CHUNK) {
			c = malloc(sizeof(*c) + CDR_BK_CHUNK * sizeof(c->e[0]));
			if (!c || log_push(a, c)) {
				free(c);
				return -ENOMEM;
			}
			c->n = 0;
		}
		uint64_t u = units <= INT64_MAX ? units : INT64_MAX;
		cdr__bkent *e = &c->e[c->n++];
		e->row = row;
		e->rate_row = rr;
		e->zone = z;
		e->band = (uint8_t)b;
		e->units = sign > 0 ? (int64_t)u : -(int64_t)u;
		a->bk_n++;
		units -= u;
	} while (units);
	return 0;
}

/* One entry in the last chunk when it has room and the units fit in one
 * entry (always, in practice); else bk_add_long. */
static inline __attribute__((always_inline)) int
bk_add(cdr__acc *a, uint32_t row, uint32_t rr, uint32_t z, uint32_t b,
       uint64_t units, int sign)
{
	cdr__bkchunk *c = a->nchunks ? a->chunks[a->nchunks - 1] : NULL;
	if (__builtin_expect(!c || c->n == CDR_BK_CHUNK || units > INT64_MAX,
			     0))
		return bk_add_long(a, row, rr, z, b, units, sign);
	cdr__bkent *e = &c->e[c->n++];
	e->row = row;
	e->rate_row = rr;
	e->zone = z;
	e->band = (uint8_t)b;
	e->units = sign > 0 ? (int64_t)units : -(int64_t)units;
	a->bk_n++;
	return 0;
}

/*
 * A split voice call fills one bucket per band it crossed, each with that
 * band's seconds under the row that priced them: an allowance then credits
 * a piece at the price it was charged, never the start band's price for
 * seconds billed cheaper. The pieces are walked again here rather than
 * carried in every cdr__rated (a few KiB); it costs one more walk per
 * split call of a row with packages, and rate.c's walk is deterministic,
 * so a duplicate taken back (sign -1) empties exactly the same buckets.
 */
static int bk_add_split(cdr__acc *a, const cdr__rated *x, int sign)
{
	cdr__pieces pc;
	if (cdr__split_pieces(a->t, x, &pc))
		return -EINVAL; /* rate.c priced these very pieces */
	for (unsigned i = 0; i < pc.n; i++) {
		int rc = bk_add(a, (uint32_t)x->row, pc.row[i], x->zone,
				pc.band[i], pc.secs[i], sign);
		if (rc)
			return rc;
	}
	return 0;
}

/* The part of d that leaves 64 bits goes to the wide table (made on first
 * use): out of line, since no real month gets there. */
static __attribute__((noinline, cold)) int
add_wide(cdr__acc *a, uint32_t i, int f, i128 d)
{
	if (!a->wide) {
		a->wide = cdr__calloc_huge(a->t->naccounts, sizeof(*a->wide));
		if (!a->wide)
			return -ENOMEM;
	}
	a->wide[i].f[f] += d;
	return 0;
}

/* Add d to sum f of account i: in 64 bits when it stays there, else
 * in the wide table. */
static inline __attribute__((always_inline)) int
add_field(cdr__acc *a, uint32_t i, int f, i128 d)
{
	int64_t *v = &a->acct[i].f[f], r;
	if (d >= INT64_MIN && d <= INT64_MAX &&
	    !__builtin_add_overflow(*v, (int64_t)d, &r)) {
		*v = r;
		return 0;
	}
	return add_wide(a, i, f, d);
}

/* The same for a figure known to fit in 64 bits: one overflow test. */
static inline __attribute__((always_inline)) int
add_field64(cdr__acc *a, uint32_t i, int f, int64_t d)
{
	int64_t *v = &a->acct[i].f[f], r;
	if (__builtin_expect(__builtin_add_overflow(*v, d, &r), 0))
		return add_wide(a, i, f, d);
	*v = r;
	return 0;
}

i128 cdr__acc_get(const cdr__acc *a, uint32_t i, int f)
{
	return (i128)a->acct[i].f[f] + (a->wide ? a->wide[i].f[f] : 0);
}

/* A service's quantity and charge sums are the service's index past the
 * voice ones. */
_Static_assert(CDR_F_SMS == CDR_F_VOICE_S + CDR_SMS &&
		       CDR_F_DATA_B == CDR_F_VOICE_S + CDR_DATA &&
		       CDR_F_SMS_C == CDR_F_VOICE_C + CDR_SMS &&
		       CDR_F_DATA_C == CDR_F_VOICE_C + CDR_DATA,
	       "sums of a service at fixed distances");

/* Whether this record's row can fill an allowance bucket of its service
 * (allow: the tariff's row_allow_svc); late records never do. */
static inline __attribute__((always_inline)) int
takes_bucket(const uint8_t *allow, const cdr__rated *x)
{
	return x->has_pkgs && !x->late && x->rate_row >= 0 &&
	       (allow[x->row] >> x->service & 1);
}

static inline __attribute__((always_inline)) int
add_bucket(cdr__acc *a, int split, const cdr__rated *x, int sign)
{
	if (split && x->service == CDR_VOICE && x->quantity)
		return bk_add_split(a, x, sign);
	return bk_add(a, (uint32_t)x->row, (uint32_t)x->rate_row, x->zone,
		      x->band, x->quantity, sign);
}

/*
 * Any record, either sign, with the breakdown: each figure is added with
 * one overflow test when it fits in 64 bits (billed units stay below
 * 3 * 10^12, SPEC 3 and 4), in 128 bits (add_wide) when it or the sum
 * does not. sign is +1 or -1: d is negated as (d ^ m) - m, m = 0 or -1,
 * which needs d > INT64_MIN.
 */
static __attribute__((noinline)) int acc_add_any(cdr__acc *a,
						 const cdr__rated *x, int sign)
{
	const uint32_t i = x->account;
	const int64_t m = sign < 0 ? -1 : 0;
	int rc = add_field64(a, i, CDR_F_RECORDS, sign);
	if (a->bd && !rc)
		rc = cdr__bd_add(a->bd, x, sign);
	if (rc)
		return rc;
	const int svc = x->service;
	if (x->late && (rc = add_field64(a, i, CDR_F_LATE, sign)))
		return rc;
	const uint64_t q = x->quantity;
	if (q <= INT64_MAX)
		rc = add_field64(a, i, CDR_F_VOICE_S + svc,
				 ((int64_t)q ^ m) - m);
	else
		rc = add_wide(a, i, CDR_F_VOICE_S + svc, sign * (i128)q);
	if (rc)
		return rc;
	const i128 c = x->charge_micros;
	const int64_t c64 = (int64_t)c;
	if (c64 == c && c64 != INT64_MIN)
		rc = add_field64(a, i, CDR_F_VOICE_C + svc, (c64 ^ m) - m);
	else
		rc = add_wide(a, i, CDR_F_VOICE_C + svc, sign * c);
	if (rc)
		return rc;
	return takes_bucket(a->t->row_allow_svc, x)
		       ? add_bucket(a, a->t->band_split, x, sign)
		       : 0;
}

/*
 * The pass's case: a record added (sign +1), its four sums staying in
 * 64 bits. All four are checked before any is stored; 0 when stored, 1
 * when nothing was and the record needs acc_add_any.
 */
static inline __attribute__((always_inline)) int
add_sums_fast(cdr__acc *a, const cdr__rated *x)
{
	int64_t *f = a->acct[x->account].f;
	const int svc = x->service;
	const uint64_t q = x->quantity;
	const i128 c = x->charge_micros;
	const int64_t c64 = (int64_t)c;
	const int late = x->late; /* rare: a branch, not an add */
	int64_t r0, r1 = 0, r2, r3;
	if (__builtin_expect(q > INT64_MAX || c64 != c ||
				     __builtin_add_overflow(f[CDR_F_RECORDS],
							    1, &r0) ||
				     __builtin_add_overflow(
					     f[CDR_F_VOICE_S + svc],
					     (int64_t)q, &r2) ||
				     __builtin_add_overflow(
					     f[CDR_F_VOICE_C + svc], c64,
					     &r3) ||
				     (late && __builtin_add_overflow(
						      f[CDR_F_LATE], 1, &r1)),
			     0))
		return 1;
	f[CDR_F_RECORDS] = r0;
	f[CDR_F_VOICE_S + svc] = r2;
	f[CDR_F_VOICE_C + svc] = r3;
	if (late)
		f[CDR_F_LATE] = r1;
	return 0;
}

int cdr__acc_add(cdr__acc *a, const cdr__rated *x, int sign)
{
	if (sign != 1 || a->bd || add_sums_fast(a, x))
		return acc_add_any(a, x, sign);
	return takes_bucket(a->t->row_allow_svc, x)
		       ? add_bucket(a, a->t->band_split, x, 1)
		       : 0;
}

static inline cdr__bkchunk *last_chunk(const cdr__acc *a)
{
	return a->nchunks ? a->chunks[a->nchunks - 1] : NULL;
}

/*
 * The pass's batch: no call a record, and what is the same for every
 * record (the breakdown or not, the tariff's tables, the log's last chunk
 * and its fill) read once. With the breakdown each record goes through
 * acc_add_any, which calls cdr__bd_add where it always did. An entry goes
 * straight into the last chunk (n: its fill, stored back before any call
 * and at the end); a split call, a full or missing chunk and units past
 * INT64_MAX take add_bucket.
 */
int cdr__acc_add_batch(cdr__acc *a, const cdr__rated *x, uint32_t mask)
{
	int rc = 0;
	if (a->bd) {
		for (; mask && !rc; mask &= mask - 1)
			rc = acc_add_any(
				a, x + (size_t)__builtin_ctz(mask) * CDR_SIDES, 1);
		return rc;
	}
	const uint8_t *allow = a->t->row_allow_svc;
	const int split = a->t->band_split;
	cdr__bkchunk *c = last_chunk(a);
	uint32_t n0 = c ? c->n : CDR_BK_CHUNK, n = n0;
	for (; mask; mask &= mask - 1) {
		const cdr__rated *y =
			x + (size_t)__builtin_ctz(mask) * CDR_SIDES;
		const int fast = !add_sums_fast(a, y);
		if (fast && !takes_bucket(allow, y))
			continue;
		if (fast && n < CDR_BK_CHUNK && y->quantity <= INT64_MAX &&
		    !(split && y->service == CDR_VOICE && y->quantity)) {
			cdr__bkent *e = &c->e[n++];
			e->row = (uint32_t)y->row;
			e->rate_row = (uint32_t)y->rate_row;
			e->zone = y->zone;
			e->band = (uint8_t)y->band;
			e->units = (int64_t)y->quantity;
			continue;
		}
		if (c) {
			c->n = n;
			a->bk_n += n - n0;
		}
		rc = fast ? add_bucket(a, split, y, 1) : acc_add_any(a, y, 1);
		if (rc)
			return rc;
		c = last_chunk(a);
		n0 = n = c ? c->n : CDR_BK_CHUNK;
	}
	if (c) {
		c->n = n;
		a->bk_n += n - n0;
	}
	return 0;
}

int cdr__acc_merge(cdr__acc *into, cdr__acc *from)
{
	for (uint32_t i = 0; i < into->t->naccounts; i++)
		for (int f = 0; f < CDR_NF; f++)
			if (add_field(into, i, f, cdr__acc_get(from, i, f)))
				return -ENOMEM;
	if (from->sealed_off)
		return -EINVAL; /* workers' logs are merged before sealing */
	if (into->bd && from->bd && cdr__bd_merge(into->bd, from->bd))
		return -ENOMEM;
	for (uint32_t i = 0; i < from->nchunks; i++) {
		if (log_push(into, from->chunks[i])) {
			/* the chunks not handed over stay with from */
			memmove(from->chunks, from->chunks + i,
				(from->nchunks - i) * sizeof(cdr__bkchunk *));
			from->nchunks -= i;
			return -ENOMEM;
		}
		into->bk_n += from->chunks[i]->n;
	}
	free(from->chunks);
	from->chunks = NULL;
	from->nchunks = from->chunks_cap = 0;
	from->bk_n = 0;
	return 0;
}

/* ---- recurring fees -------------------------------------------------- */

static int64_t rnd(u128 num, u128 den)
{
	return (int64_t)cdr__div_round(num, den);
}

/* A fee for one subscriber row in the period, prorated. */
static int64_t prorate(const cdr_tariff *t, const cdr__sub_row *r,
		       const cdr__period *p, int64_t fee)
{
	int64_t dim = p->last_day - p->first_day + 1;
	int mode = t->proration;
	/* A plan change is not an installation or a disconnection. */
	if (r->change_start || r->change_end)
		mode = 1;
	if (mode == 2)
		return fee;
	if (mode == 1) {
		int64_t a = r->from_day > p->first_day ? r->from_day
						       : p->first_day;
		int64_t b = r->to_day < p->last_day ? r->to_day : p->last_day;
		return rnd((u128)fee * (uint64_t)(b - a + 1), (u128)dim);
	}
	int half = 0;
	if (r->from_day >= p->first_day && r->from_day - p->first_day + 1 >= 16)
		half = 1; /* installed on the 16th or later */
	if (r->to_day <= p->last_day && r->to_day - p->first_day + 1 <= 15)
		half = 1; /* disconnected by the 15th */
	return half ? rnd((u128)fee, 2) : fee;
}

/* ---- allowances ------------------------------------------------------ */


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

static int cmp_rate_dear(const void *pa, const void *pb, void *ctx)
{
	const cdr__rate_row *rates = ctx;
	const cdr__rate_row *ra = &rates[*(const uint32_t *)pa],
			    *rb = &rates[*(const uint32_t *)pb];
	u128 x = (u128)(uint64_t)ra->price_micros * rb->unit;
	u128 y = (u128)(uint64_t)rb->price_micros * ra->unit;
	return (x < y) - (x > y);
}

static int cmp_rate_line(const void *pa, const void *pb, void *ctx)
{
	const cdr__rate_row *rates = ctx;
	uint32_t la = rates[*(const uint32_t *)pa].line,
		 lb = rates[*(const uint32_t *)pb].line;
	return (la > lb) - (la < lb);
}

static int cmp_name_ptr(const void *pa, const void *pb)
{
	return strcmp(**(const char *const *const *)pa,
		      **(const char *const *const *)pb);
}

static void dear_free(dear_rank *k)
{
	free(k->dear);
	free(k->line);
	free(k->zone);
	k->dear = k->line = k->zone = NULL;
}

static int dear_init(dear_rank *k, const cdr_tariff *t)
{
	static const char star[] = "*";
	memset(k, 0, sizeof(*k));
	k->t = t;
	uint32_t nr = t->nrates, nz = t->nzones + 1, nb = t->nbands;
	uint32_t *ord = malloc(((size_t)(nr > nz ? nr : nz) + 1) * sizeof(*ord));
	const char **names = malloc((size_t)(nz > nb ? nz : nb) * sizeof(*names));
	const char ***pn = malloc((size_t)(nz > nb ? nz : nb + 1) * sizeof(*pn));
	k->dear = malloc(((size_t)nr + 1) * sizeof(uint32_t));
	k->line = malloc(((size_t)nr + 1) * sizeof(uint32_t));
	k->zone = malloc((size_t)nz * sizeof(uint32_t));
	if (!ord || !names || !pn || !k->dear || !k->line || !k->zone) {
		free(ord);
		free(names);
		free(pn);
		dear_free(k);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < nr; i++)
		ord[i] = i;
	if (nr)
		qsort_r(ord, nr, sizeof(*ord), cmp_rate_dear, t->rates);
	for (uint32_t i = 0, c = 0; i < nr; i++) {
		if (i && cmp_rate_dear(&ord[i - 1], &ord[i], t->rates))
			c++;
		k->dear[ord[i]] = c;
	}
	for (uint32_t i = 0; i < nr; i++)
		ord[i] = i;
	if (nr)
		qsort_r(ord, nr, sizeof(*ord), cmp_rate_line, t->rates);
	for (uint32_t i = 0; i < nr; i++)
		k->line[ord[i]] = i;
	/* Zone names, `*` for data's zone nzones; then band names. Equal
	 * names (none in a loaded tariff) would share a rank. */
	for (uint32_t i = 0; i < nz; i++) {
		names[i] = i < t->nzones ? t->zone_names[i] : star;
		pn[i] = &names[i];
	}
	qsort(pn, nz, sizeof(*pn), cmp_name_ptr);
	for (uint32_t i = 0, c = 0; i < nz; i++) {
		if (i && strcmp(*pn[i - 1], *pn[i]) != 0)
			c++;
		k->zone[pn[i] - names] = c;
	}
	for (uint32_t i = 0; i < nb && i < 256; i++) {
		names[i] = t->band_names[i];
		pn[i] = &names[i];
	}
	if (nb > 256)
		nb = 256; /* bands are uint8_t, CDR_BAND_STAR not among them */
	if (nb)
		qsort(pn, nb, sizeof(*pn), cmp_name_ptr);
	for (uint32_t i = 0, c = 0; i < nb; i++) {
		if (i && strcmp(*pn[i - 1], *pn[i]) != 0)
			c++;
		k->band[pn[i] - names] = c;
	}
	free(ord);
	free(names);
	free(pn);
	return 0;
}

/* Is bucket (rate row ra, zone za, band ba) before (rb, zb, bb) in
 * taking order? 0: the same bucket. */
static inline int key_cmp(const dear_rank *k, uint32_t ra, uint32_t za,
			  uint32_t ba, uint32_t rb, uint32_t zb, uint32_t bb)
{
	za = za < k->t->nzones ? za : k->t->nzones;
	zb = zb < k->t->nzones ? zb : k->t->nzones;
	uint64_t x = (uint64_t)k->dear[ra] << 32 | k->zone[za];
	uint64_t y = (uint64_t)k->dear[rb] << 32 | k->zone[zb];
	if (x != y)
		return x < y ? -1 : 1;
	x = (uint64_t)k->band[ba & 255] << 32 | k->line[ra];
	y = (uint64_t)k->band[bb & 255] << 32 | k->line[rb];
	return (x > y) - (x < y);
}

static inline int ent_cmp(const dear_rank *k, const cdr__bkent *a,
			  const cdr__bkent *b)
{
	return key_cmp(k, a->rate_row, a->zone, a->band, b->rate_row, b->zone,
		       b->band);
}

static int bk_cmp_q(const void *pa, const void *pb, void *ctx)
{
	const cdr__bucket *a = pa, *b = pb;
	return key_cmp(ctx, a->rate_row, a->zone, a->band, b->rate_row,
		       b->zone, b->band);
}

/* A row's few entries: insertion sort in taking order. */
static void ent_sort(const dear_rank *k, cdr__bkent *e, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		cdr__bkent v = e[i];
		size_t j = i;
		for (; j && ent_cmp(k, &v, &e[j - 1]) < 0; j--)
			e[j] = e[j - 1];
		e[j] = v;
	}
}

/* Scratch of cdr__acc_buckets: the buckets of one row, and for a row of
 * many entries (a heavy caller: hundreds of thousands) an open-addressing
 * index over them, sized by the buckets (few), not the entries. */
typedef struct bk_scratch {
	cdr__bucket *bk;
	size_t n, cap;
	uint32_t *slot; /* bucket index + 1, 0 empty */
	uint32_t mask;
} bk_scratch;

/* u + v in the wrapping arithmetic of unsigned bucket sums (an entry is
 * never INT64_MIN: bk_add keeps |units| <= INT64_MAX). */
static inline u128 add_units(u128 u, int64_t v)
{
	return v >= 0 ? u + (uint64_t)v : u - (uint64_t)-v;
}

static int scratch_put(bk_scratch *s, uint32_t row, const cdr__bkent *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		cdr__bucket *nb = realloc(s->bk, cap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		s->bk = nb;
		s->cap = cap;
	}
	s->bk[s->n++] = (cdr__bucket){row, e->rate_row, e->zone, e->band,
				      add_units(0, e->units)};
	return 0;
}

static uint32_t ent_hash(uint32_t rr, uint32_t z, uint32_t b)
{
	uint64_t h = ((uint64_t)rr << 32 | z) * 0x9E3779B97F4A7C15ULL;
	h ^= (uint64_t)b * 0xC2B2AE3D27D4EB4FULL;
	return (uint32_t)(h >> 32);
}

static int scratch_rehash(bk_scratch *s, uint32_t cap)
{
	uint32_t *ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	free(s->slot);
	s->slot = ns;
	s->mask = cap - 1;
	for (size_t i = 0; i < s->n; i++) {
		const cdr__bucket *b = &s->bk[i];
		uint32_t j = ent_hash(b->rate_row, b->zone, b->band) & s->mask;
		while (s->slot[j])
			j = (j + 1) & s->mask;
		s->slot[j] = (uint32_t)i + 1;
	}
	return 0;
}

/* Coalesce a large row's entries through the index. */
static int scratch_hash_row(bk_scratch *s, uint32_t row, const cdr__bkent *e,
			    size_t n)
{
	int rc = s->slot ? 0 : scratch_rehash(s, 256);
	if (!rc)
		memset(s->slot, 0, ((size_t)s->mask + 1) * sizeof(*s->slot));
	for (size_t i = 0; i < n && !rc; i++) {
		uint32_t j = ent_hash(e[i].rate_row, e[i].zone, e[i].band) &
			     s->mask;
		for (;; j = (j + 1) & s->mask) {
			uint32_t b = s->slot[j];
			if (!b) {
				if ((rc = scratch_put(s, row, &e[i])))
					break;
				s->slot[j] = (uint32_t)s->n;
				if (s->n * 2 > s->mask)
					rc = scratch_rehash(s, (s->mask + 1) * 2);
				break;
			}
			if (!s->bk)
				return -EINVAL; /* a slot without its bucket */
			cdr__bucket *k = &s->bk[b - 1];
			if (k->rate_row == e[i].rate_row && k->zone == e[i].zone &&
			    k->band == e[i].band) {
				k->units = add_units(k->units, e[i].units);
				break;
			}
		}
	}
	return rc;
}

/* The log, sorted once: entries counting-sorted by row. `own`: off and e
 * were made here (else they are the accumulator's sealed log, read-only:
 * already in taking order, so nothing is sorted in them). */
typedef struct bk_rows {
	uint32_t *off; /* [nrows + 1]: row r's entries e[off[r] .. off[r + 1]) */
	cdr__bkent *e;
	dear_rank k;
	int own;
} bk_rows;

static void bk_rows_free(bk_rows *b)
{
	if (b->own) {
		free(b->off);
		free(b->e);
	}
	b->off = NULL;
	b->e = NULL;
	dear_free(&b->k);
}

/* The counting sort: counts, end offsets, then scatter back to front, so
 * off[r] ends as the start of row r's entries. With `release`, each chunk
 * is freed once scattered (a is being sealed). */
static void bk_scatter(cdr__acc *a, const cdr__acc *ca, uint32_t *off,
		       cdr__bkent *e)
{
	const uint32_t nrows = ca->t->nrows;
	for (size_t i = 0; i < ca->sealed_n; i++)
		off[ca->sealed[i].row]++;
	for (uint32_t c = 0; c < ca->nchunks; c++)
		for (uint32_t i = 0; i < ca->chunks[c]->n; i++)
			off[ca->chunks[c]->e[i].row]++;
	for (uint32_t r = 0, sum = 0; r <= nrows; r++)
		off[r] = sum += off[r];
	for (size_t i = 0; i < ca->sealed_n; i++)
		e[--off[ca->sealed[i].row]] = ca->sealed[i];
	for (uint32_t c = 0; c < ca->nchunks; c++) {
		for (uint32_t i = 0; i < ca->chunks[c]->n; i++)
			e[--off[ca->chunks[c]->e[i].row]] = ca->chunks[c]->e[i];
		if (a) {
			free(a->chunks[c]);
			a->chunks[c] = NULL;
		}
	}
}

static int bk_rows_init(bk_rows *b, const cdr__acc *a)
{
	const uint32_t nrows = a->t->nrows;
	memset(b, 0, sizeof(*b));
	if (!a->bk_n)
		return 0; /* off stays NULL: no row has an entry */
	if (!a->nchunks && a->sealed_off) {
		b->off = a->sealed_off;
		b->e = a->sealed;
		return 0;
	}
	b->own = 1;
	b->off = calloc((size_t)nrows + 1, sizeof(*b->off));
	b->e = malloc(a->bk_n * sizeof(*b->e));
	int rc = b->off && b->e ? dear_init(&b->k, a->t) : -ENOMEM;
	if (rc) {
		bk_rows_free(b);
		return rc;
	}
	bk_scatter(NULL, a, b->off, b->e);
	return 0;
}

static uint32_t bk_rows_count(const bk_rows *b, uint32_t r)
{
	return b->off ? b->off[r + 1] - b->off[r] : 0;
}

/* Equal entries, one after the other, into the scratch buckets. */
static int coalesce_sorted(const dear_rank *k, bk_scratch *s, uint32_t r,
			   const cdr__bkent *e, size_t n)
{
	int rc = 0;
	for (size_t j = 0; j < n && !rc; j++) {
		const cdr__bucket *l = s->n ? &s->bk[s->n - 1] : NULL;
		int same = j && l &&
			   (k ? !ent_cmp(k, &e[j - 1], &e[j])
			      : l->rate_row == e[j].rate_row &&
					l->zone == e[j].zone && l->band == e[j].band);
		if (same)
			s->bk[s->n - 1].units =
				add_units(s->bk[s->n - 1].units, e[j].units);
		else
			rc = scratch_put(s, r, &e[j]);
	}
	return rc;
}

/* Row r's buckets with units, in taking order, into s->bk[0 .. s->n).
 * Each row's entries are its own: threads may take rows apart. */
static int row_buckets_at(bk_rows *b, bk_scratch *s, uint32_t r, size_t i,
			  size_t end)
{
	int rc = 0;
	cdr__bkent *e = b->e;
	s->n = 0;
	if (!b->own) {
		/* sealed: in taking order already */
		rc = coalesce_sorted(NULL, s, r, e + i, end - i);
	} else if (end - i > 32) {
		/* Few buckets under many entries: coalesce, then order the
		 * buckets. */
		rc = scratch_hash_row(s, r, e + i, end - i);
		if (!rc)
			qsort_r(s->bk, s->n, sizeof(*s->bk), bk_cmp_q, &b->k);
	} else {
		ent_sort(&b->k, e + i, end - i);
		rc = coalesce_sorted(&b->k, s, r, e + i, end - i);
	}
	/* Buckets whose entries cancel out (duplicates taken back) are not
	 * buckets. */
	size_t n = 0;
	for (size_t j = 0; j < s->n; j++)
		if (s->bk[j].units)
			s->bk[n++] = s->bk[j];
	s->n = n;
	return rc;
}

static int row_buckets(bk_rows *b, bk_scratch *s, uint32_t r)
{
	s->n = 0;
	if (!bk_rows_count(b, r))
		return 0;
	return row_buckets_at(b, s, r, b->off[r], b->off[r + 1]);
}

/*
 * The seal's rows [r0, r1) after the scatter: each row's buckets in
 * taking order, written in place from e[off[r0]] on (a row never grows,
 * so nothing unread is overwritten). `end` is where row r1 - 1 ends, as
 * the scatter left it: off[r1] belongs to the next range, which another
 * thread may be rewriting. Rows that find no memory for the scratch are
 * kept as they are (unsorted) and make rc -ENOMEM.
 */
typedef struct {
	bk_rows *b;
	uint32_t r0, r1;
	size_t start, end, w; /* w: where the range's entries end */
	int rc;
} seal_part;

static void *seal_rows(void *arg)
{
	seal_part *p = arg;
	bk_rows *b = p->b;
	bk_scratch sc = {0};
	size_t w = p->start;
	for (uint32_t r = p->r0; r < p->r1; r++) {
		size_t i = b->off[r];
		size_t end = r + 1 == p->r1 ? p->end : b->off[r + 1];
		b->off[r] = (uint32_t)w;
		if (i == end)
			continue;
		if (row_buckets_at(b, &sc, r, i, end)) {
			p->rc = -ENOMEM;
			memmove(b->e + w, b->e + i, (end - i) * sizeof(*b->e));
			w += end - i;
			continue;
		}
		for (size_t k = 0; k < sc.n; k++) {
			u128 u = sc.bk[k].units;
			/* a bucket past int64 (never in practice) as several
			 * entries; never more entries than the row had */
			do {
				uint64_t part = u > INT64_MAX ? INT64_MAX : (uint64_t)u;
				b->e[w++] = (cdr__bkent){r, sc.bk[k].rate_row,
							 sc.bk[k].zone,
							 (uint8_t)sc.bk[k].band,
							 {0},
							 (int64_t)part};
				u -= part;
			} while (u);
		}
	}
	free(sc.bk);
	free(sc.slot);
	p->w = w;
	return NULL;
}

/* Below this many entries one thread seals faster than two start. */
size_t cdr__seal_split_min = 65536;

int cdr__acc_seal(cdr__acc *a)
{
	const uint32_t nrows = a->t->nrows;
	if (!a->nchunks)
		return 0;
	bk_rows b;
	memset(&b, 0, sizeof(b));
	b.own = 1;
	b.off = calloc((size_t)nrows + 1, sizeof(*b.off));
	b.e = malloc(a->bk_n * sizeof(*b.e));
	int rc = b.off && b.e ? dear_init(&b.k, a->t) : -ENOMEM;
	if (rc) {
		bk_rows_free(&b);
		return rc;
	}
	/* From here on nothing fails that loses entries: the chunks go as
	 * they are read, and each row is rewritten in place. */
	bk_scatter(a, a, b.off, b.e);
	free(a->chunks);
	a->chunks = NULL;
	a->nchunks = a->chunks_cap = 0;
	free(a->sealed_off);
	free(a->sealed);
	/* Two ranges of rows with about half the entries each, on two
	 * threads when the run had two workers; each row's buckets are its
	 * own, so the result is the same bytes either way. */
	seal_part part[2] = {{&b, 0, nrows, 0, b.off[nrows], 0, 0},
			     {&b, nrows, nrows, 0, 0, 0, 0}};
	int np = 1;
	if (a->threads > 1 && a->bk_n >= cdr__seal_split_min && nrows > 1) {
		uint32_t lo = 0, hi = nrows; /* first row starting past half */
		const size_t half = b.off[nrows] / 2;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			if (b.off[mid] < half)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > 0 && lo < nrows) {
			part[0].r1 = lo;
			part[0].end = b.off[lo];
			part[1] = (seal_part){&b, lo, nrows, b.off[lo],
					      b.off[nrows], 0, 0};
			np = 2;
		}
	}
	pthread_t th;
	int started = np == 2 && !pthread_create(&th, NULL, seal_rows, &part[1]);
	seal_rows(&part[0]);
	if (started)
		pthread_join(th, NULL);
	else if (np == 2)
		seal_rows(&part[1]);
	size_t w = part[0].w;
	if (np == 2) {
		/* the second range's entries moved down behind the first's */
		const size_t gap = part[1].start - w;
		memmove(b.e + w, b.e + part[1].start,
			(part[1].w - part[1].start) * sizeof(*b.e));
		for (uint32_t r = part[1].r0; r < nrows; r++)
			b.off[r] -= (uint32_t)gap;
		w = part[1].w - gap;
	}
	rc = part[0].rc ? part[0].rc : part[1].rc;
	b.off[nrows] = (uint32_t)w;
	dear_free(&b.k);
	cdr__bkent *shrunk = realloc(b.e, (w ? w : 1) * sizeof(*b.e));
	if (shrunk) /* a failed shrink keeps the larger block */
		b.e = shrunk;
	a->sealed = b.e;
	a->sealed_off = b.off;
	a->sealed_n = w;
	a->bk_n = w;
	if (rc) {
		/* not in taking order: hand it back as a log to sort again */
		a->sealed_off = NULL;
		free(b.off);
		a->bk_n = w;
		rc = 0;
		/* the entries stay in sealed[], read back by bk_scatter */
	}
	return rc;
}

int cdr__acc_buckets(const cdr__acc *a, cdr__bk_fn fn, void *ctx)
{
	bk_rows b;
	bk_scratch sc = {0};
	int rc = bk_rows_init(&b, a);
	for (uint32_t r = 0; !rc && b.off && r < a->t->nrows; r++)
		if (!(rc = row_buckets(&b, &sc, r)) && sc.n)
			rc = fn(ctx, r, sc.bk, sc.n);
	bk_rows_free(&b);
	free(sc.bk);
	free(sc.slot);
	return rc;
}

static int allow_matches(const cdr_tariff *t, const cdr__allowance *al,
			 const cdr__bucket *b)
{
	return t->rates[b->rate_row].service == al->service &&
	       (al->zone == CDR_ANY || (uint32_t)al->zone == b->zone) &&
	       (al->band == CDR_ANY || (uint32_t)al->band == b->band);
}

/*
 * Credits of one row's buckets bk[0..n), already sorted dearest first.
 * Packages in the row's order, each package's allowances in file order;
 * an allowance drains the dearest matching buckets first, and what one
 * takes the next cannot take again (the buckets are consumed in place).
 * Each take is rounded on its own, as the contract says; connect fees
 * are not in the buckets, so they are never credited.
 */
static i128 row_allowance(const cdr_tariff *t, const cdr__sub_row *r,
			  cdr__bucket *bk, size_t n, cdr__take_fn fn, void *ctx)
{
	i128 credit = 0;
	for (uint32_t k = 0; k < r->npkg; k++) {
		const cdr__package *pk = &t->packages[t->row_pkgs[r->first_pkg + k]];
		for (uint32_t j = 0; j < pk->nallow; j++) {
			const cdr__allowance *al = &t->allows[pk->first_allow + j];
			u128 left = al->amount;
			for (size_t i = 0; i < n && left; i++) {
				if (!bk[i].units || !allow_matches(t, al, &bk[i]))
					continue;
				u128 take = bk[i].units < left ? bk[i].units
							       : left;
				const cdr__rate_row *rr = &t->rates[bk[i].rate_row];
				i128 c = (i128)cdr__div_round(
					(u128)(uint64_t)rr->price_micros * take,
					rr->unit);
				credit += c;
				if (fn)
					fn(ctx, &bk[i], c);
				bk[i].units -= take;
				left -= take;
			}
		}
	}
	return credit;
}

typedef struct takes_ctx {
	const cdr_tariff *t;
	cdr__take_fn fn;
	void *ctx;
} takes_ctx;

static int takes_row(void *arg, uint32_t row, cdr__bucket *bk, size_t n)
{
	takes_ctx *c = arg;
	row_allowance(c->t, &c->t->rows[row], bk, n, c->fn, c->ctx);
	return 0;
}

int cdr__acc_takes(const cdr__acc *a, cdr__take_fn fn, void *ctx)
{
	takes_ctx c = {a->t, fn, ctx};
	return cdr__acc_buckets(a, takes_row, &c);
}

/* ---- outages --------------------------------------------------------- */

/* Credits keyed by row, then by account: outages are few, so a short
 * list instead of an array over every row. */
typedef struct credit {
	uint32_t key;
	i128 v;
} credit;

typedef struct credits {
	credit *c;
	size_t n, cap;
} credits;

static int credit_add(credits *l, uint32_t key, i128 v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		credit *n = realloc(l->c, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->c = n;
		l->cap = cap;
	}
	l->c[l->n++] = (credit){key, v};
	return 0;
}

static int cmp_credit(const void *a, const void *b)
{
	uint32_t x = ((const credit *)a)->key, y = ((const credit *)b)->key;
	return (x > y) - (x < y);
}

/* Sort by key and add up each key's credits. */
static void credits_sum(credits *l)
{
	if (!l->n)
		return;
	qsort(l->c, l->n, sizeof(*l->c), cmp_credit);
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (n && l->c[n - 1].key == l->c[i].key)
			l->c[n - 1].v += l->c[i].v;
		else
			l->c[n++] = l->c[i];
	l->n = n;
}

/*
 * Credit one outage, per row, for every row of its number it meets.
 * A row is active from its `from` day's local 00:00 to the end of its `to`
 * day, so a line disconnected on the 23rd gets nothing for the 24th, and an
 * outage that began under a row ending before the period still credits its
 * part under the next row. Rows are few per number: a linear walk.
 */
static int outage_parts(const cdr_tariff *t, const cdr__period *p,
			const cdr__outage *o, credits *outage)
{
	int64_t a0 = o->from_utc > p->start_utc ? o->from_utc : p->start_utc;
	int64_t b0 = o->to_utc < p->end_utc ? o->to_utc : p->end_utc;
	if (b0 <= a0)
		return 0;
	const cdr__subscriber *s = &t->subs[o->sub];
	for (uint32_t k = 0; k < s->nrows; k++) {
		const uint32_t ri = s->first_row + k;
		const cdr__sub_row *r = &t->rows[ri];
		int64_t ra = cdr__tz_local_to_utc(t->tz, r->from_day * 86400);
		int64_t rb = r->to_day == CDR_DAY_OPEN
				     ? INT64_MAX
				     : cdr__tz_local_to_utc(
					       t->tz, (r->to_day + 1) * 86400);
		int64_t a = a0 > ra ? a0 : ra, b = b0 < rb ? b0 : rb;
		if (b <= a)
			continue;
		int64_t fee = t->plans[r->plan].fee_micros;
		if (credit_add(outage, ri,
			       rnd((u128)fee * (uint64_t)(b - a),
				   (u128)30 * 86400)))
			return -ENOMEM;
	}
	return 0;
}

/* ---- totals ---------------------------------------------------------- */

/*
 * Everything the month needs, prepared once and then read by account
 * ranges on several threads: the log sorted by row, each account's rows,
 * and the outage credits per account (capped per row at the row's
 * prorated plan fee). Each account's figures depend on its own rows
 * only, so ranges of accounts rendered apart and put end to end are the
 * bytes one thread would write.
 */
typedef struct month {
	const cdr__acc *a;
	const cdr_tariff *t;
	const cdr__period *p;
	bk_rows b;
	uint32_t *acc_off;  /* [naccounts + 1] */
	uint32_t *acc_rows; /* account i: acc_rows[acc_off[i] .. acc_off[i+1]) */
	credits out;	    /* by account */
	i128 scale;	    /* micros per printed unit of the last place */
	char period[16];
	size_t period_n;
} month;

static void month_free(month *m)
{
	bk_rows_free(&m->b);
	free(m->acc_off);
	free(m->acc_rows);
	free(m->out.c);
}

static int row_in_period(const cdr__sub_row *r, const cdr__period *p)
{
	return r->from_day <= p->last_day && r->to_day >= p->first_day;
}

static int month_init(month *m, const cdr__acc *a, const cdr__period *p)
{
	const cdr_tariff *t = a->t;
	memset(m, 0, sizeof(*m));
	m->a = a;
	m->t = t;
	m->p = p;
	m->scale = 1;
	for (int i = t->decimals; i < 6; i++)
		m->scale *= 10;
	snprintf(m->period, sizeof(m->period), "%04d-%02d", p->year, p->month);
	m->period_n = strlen(m->period);
	int rc = bk_rows_init(&m->b, a);
	m->acc_off = calloc((size_t)t->naccounts + 1, sizeof(*m->acc_off));
	m->acc_rows = malloc(((size_t)t->nrows + 1) * sizeof(*m->acc_rows));
	if (rc || !m->acc_off || !m->acc_rows) {
		month_free(m);
		return rc ? rc : -ENOMEM;
	}
	/* Rows by account, in row order within an account. */
	for (uint32_t i = 0; i < t->nrows; i++)
		m->acc_off[t->rows[i].account + 1]++;
	for (uint32_t i = 0; i < t->naccounts; i++)
		m->acc_off[i + 1] += m->acc_off[i];
	for (uint32_t i = 0; i < t->nrows; i++)
		m->acc_rows[m->acc_off[t->rows[i].account]++] = i;
	for (uint32_t i = t->naccounts; i > 0; i--)
		m->acc_off[i] = m->acc_off[i - 1];
	m->acc_off[0] = 0;

	/* Outages: cut at the period's bounds and at the number's rows, each
	 * part at its own row's plan fee and rounded on its own; a row's sum
	 * is capped at its prorated plan fee (0 for a row outside the
	 * period). Seconds under no row credit nothing. */
	credits rows = {0};
	for (uint32_t i = 0; !rc && i < t->noutages; i++)
		rc = outage_parts(t, p, &t->outages[i], &rows);
	credits_sum(&rows);
	for (size_t i = 0; !rc && i < rows.n; i++) {
		const cdr__sub_row *r = &t->rows[rows.c[i].key];
		i128 cap = row_in_period(r, p)
				   ? prorate(t, r, p, t->plans[r->plan].fee_micros)
				   : 0;
		if (rows.c[i].v)
			rc = credit_add(&m->out, r->account,
					rows.c[i].v < cap ? rows.c[i].v : cap);
	}
	free(rows.c);
	credits_sum(&m->out);
	if (rc)
		month_free(m);
	return rc;
}

/*
 * Account i's totals line as figures: 1 when it has one (a record, or a
 * row overlapping the period), 0 when not, or -ENOMEM. Recurring fees,
 * then allowances per row (its buckets in taking order), then the
 * outage credit; each amount column rounded once from its micro sum,
 * `total` the sum of the rounded columns. *oc is a cursor into m->out
 * for accounts taken in increasing order.
 */
static int account_line(month *m, bk_scratch *sc, uint32_t i, size_t *oc,
			cdr__figures *f)
{
	static const int qty[5] = {CDR_F_RECORDS, CDR_F_LATE, CDR_F_VOICE_S,
				   CDR_F_SMS, CDR_F_DATA_B};
	static const int charge[3] = {CDR_F_VOICE_C, CDR_F_SMS_C,
				      CDR_F_DATA_C};
	const cdr_tariff *t = m->t;
	const cdr__period *p = m->p;
	i128 allowance = 0, recurring = 0, outage = 0;
	int present = 0;
	for (uint32_t j = m->acc_off[i]; j < m->acc_off[i + 1]; j++) {
		const uint32_t ri = m->acc_rows[j];
		const cdr__sub_row *r = &t->rows[ri];
		if (row_in_period(r, p)) {
			present = 1;
			recurring += prorate(t, r, p, t->plans[r->plan].fee_micros);
			for (uint32_t k = 0; k < r->npkg; k++)
				recurring += prorate(
					t, r, p,
					t->packages[t->row_pkgs[r->first_pkg + k]]
						.fee_micros);
		}
		int rc = row_buckets(&m->b, sc, ri);
		if (rc)
			return rc;
		if (sc->n)
			allowance += row_allowance(t, r, sc->bk, sc->n, NULL,
						   NULL);
	}
	while (*oc < m->out.n && m->out.c[*oc].key < i)
		++*oc;
	if (*oc < m->out.n && m->out.c[*oc].key == i)
		outage = m->out.c[*oc].v;
	if (!present && !cdr__acc_get(m->a, i, CDR_F_RECORDS))
		return 0;
	f->acct = t->accounts[i];
	f->acct_n = strlen(f->acct);
	for (int q = 0; q < 5; q++)
		f->qty[q] = (u128)cdr__acc_get(m->a, i, qty[q]);
	/* Rounded once, kept as the micros the printed figure is. */
	for (int c = 0; c < 3; c++)
		f->amt[c] = cdr__round_to_decimals(cdr__acc_get(m->a, i, charge[c]),
						   t->decimals) *
			    m->scale;
	f->amt[3] = cdr__round_to_decimals(allowance, t->decimals) * m->scale;
	f->amt[4] = cdr__round_to_decimals(recurring, t->decimals) * m->scale;
	f->amt[5] = cdr__round_to_decimals(outage, t->decimals) * m->scale;
	f->amt[6] = f->amt[0] + f->amt[1] + f->amt[2] - f->amt[3] + f->amt[4] -
		    f->amt[5];
	return 1;
}

typedef struct sbuf {
	char *b;
	size_t n, cap;
} sbuf;

static int sb_reserve(sbuf *s, size_t more)
{
	if (s->n + more <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 4096;
	while (cap < s->n + more)
		cap *= 2;
	char *nb = realloc(s->b, cap);
	if (!nb)
		return -ENOMEM;
	s->b = nb;
	s->cap = cap;
	return 0;
}

static void sb_put(sbuf *s, const char *p, size_t n)
{
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

/* One figures line, as the totals file prints it, straight into s. */
static int sb_line(sbuf *s, const cdr__figures *r, const month *m)
{
	const i128 scale = m->scale;
	const int dec = m->t->decimals;
	int rc = sb_reserve(s, r->acct_n + 16 + (size_t)12 * 48);
	if (rc || !s->b)
		return rc ? rc : -ENOMEM;
	char *o = s->b + s->n;
	memcpy(o, r->acct, r->acct_n);
	o += r->acct_n;
	*o++ = ',';
	memcpy(o, m->period, m->period_n);
	o += m->period_n;
	for (int k = 0; k < 5; k++) {
		*o++ = ',';
		o += r->qty[k] <= UINT64_MAX ? cdr__fmt_u64(o, (uint64_t)r->qty[k])
					     : cdr__fmt_u128(o, r->qty[k]);
	}
	for (int k = 0; k < 7; k++) {
		*o++ = ',';
		/* amt is a multiple of scale: divide in 64 bits when it fits */
		i128 v = r->amt[k] >= -INT64_MAX && r->amt[k] <= INT64_MAX
				 ? (i128)((int64_t)r->amt[k] / (int64_t)scale)
				 : r->amt[k] / scale;
		o += cdr__fmt_scaled(o, v, dec);
	}
	*o++ = '\n';
	s->n = (size_t)(o - s->b);
	return 0;
}

/* One thread's part: accounts [lo, hi), as figures or as text. */
typedef struct month_job {
	month *m;
	uint32_t lo, hi;
	int text;
	int keep;	 /* text == 1: the figures too (a breakdown's): 1
			    all, 2 only their sums and largest totals (fs) */
	cdr__figures *f; /* text == 0, or keep 1 */
	cdr__bdfigs fs;	 /* keep 2 */
	size_t n;
	sbuf s; /* text == 1 */
	int rc;
} month_job;

static void *month_part(void *arg)
{
	month_job *j = arg;
	bk_scratch sc = {0};
	size_t oc = 0, cap = 0;
	cdr__figures fig;
	while (oc < j->m->out.n && j->m->out.c[oc].key < j->lo)
		oc++;
	for (uint32_t i = j->lo; i < j->hi && !j->rc; i++) {
		int got = account_line(j->m, &sc, i, &oc, &fig);
		if (got < 0) {
			j->rc = got;
		} else if (got && j->text && !j->keep) {
			j->rc = sb_line(&j->s, &fig, j->m);
		} else if (got && j->keep == 2) {
			j->rc = sb_line(&j->s, &fig, j->m);
			cdr__bd_figs_add(&j->fs, &fig);
		} else if (got) {
			if (j->text && (j->rc = sb_line(&j->s, &fig, j->m)))
				break;
			if (j->n == cap) {
				cap = cap ? cap * 2 : 4096;
				cdr__figures *nf = realloc(j->f, cap * sizeof(*nf));
				if (!nf) {
					j->rc = -ENOMEM;
					break;
				}
				j->f = nf;
			}
			j->f[j->n++] = fig;
		}
	}
	free(sc.bk);
	free(sc.slot);
	return NULL;
}

#define MONTH_MAX_THREADS 2

/*
 * Run the accounts in up to a->threads (at most 2) ranges of about equal
 * work (rows and log entries), on that many threads; the ranges' results
 * in order are what one thread would give.
 */
static int month_jobs(month *m, int text, month_job *j, int *nj)
{
	const cdr_tariff *t = m->t;
	int n = m->a->threads > 1 ? MONTH_MAX_THREADS : 1;
	uint32_t cut[MONTH_MAX_THREADS + 1] = {0};
	cut[n] = t->naccounts;
	if (n > 1) {
		uint64_t total = (uint64_t)t->naccounts + t->nrows + m->a->bk_n,
			 sum = 0;
		uint32_t i = 0;
		for (; i < t->naccounts && sum * 2 < total; i++) {
			sum += 1;
			for (uint32_t k = m->acc_off[i]; k < m->acc_off[i + 1]; k++)
				sum += 1 + bk_rows_count(&m->b, m->acc_rows[k]);
		}
		cut[1] = i;
	}
	pthread_t th[MONTH_MAX_THREADS];
	int started[MONTH_MAX_THREADS] = {0};
	for (int k = 0; k < n; k++) {
		j[k].m = m; /* the caller zeroed j */
		j[k].lo = cut[k];
		j[k].hi = cut[k + 1];
		j[k].text = text;
		j[k].keep = !text || !m->a->bd || m->a->bd->fig ||
					    m->a->bd->has_figs
				    ? 0
			    : m->a->bd->keep_figs ? 1
						  : 2;
	}
	for (int k = 1; k < n; k++)
		started[k] = !pthread_create(&th[k], NULL, month_part, &j[k]);
	month_part(&j[0]);
	for (int k = 1; k < n; k++)
		if (started[k])
			pthread_join(th[k], NULL);
		else
			month_part(&j[k]);
	*nj = n;
	int rc = 0;
	for (int k = 0; k < n; k++)
		if (j[k].rc && !rc)
			rc = j[k].rc;
	return rc;
}

/*
 * One line per account with a record or a row in the period, in the
 * accounts' bytewise order (their dense indexes are that order). Each
 * amount column is rounded once from its micro sum; `total` adds the
 * rounded columns, so every printed line adds up.
 */
int cdr__totals_figures(const cdr__acc *a, const cdr__period *p,
			cdr__figures **rows, size_t *n)
{
	month m;
	month_job j[MONTH_MAX_THREADS] = {{0}};
	int nj = 0;
	int rc = month_init(&m, a, p);
	if (rc)
		return rc;
	rc = month_jobs(&m, 0, j, &nj);
	size_t total = 0;
	for (int k = 0; k < nj; k++)
		total += j[k].n;
	cdr__figures *f = rc ? NULL : malloc((total + 1) * sizeof(*f));
	if (!rc && !f)
		rc = -ENOMEM;
	for (int k = 0, o = 0; k < nj; k++) {
		if (f && j[k].n)
			memcpy(f + o, j[k].f, j[k].n * sizeof(*f));
		o += (int)j[k].n;
		free(j[k].f);
	}
	month_free(&m);
	if (rc) {
		free(f);
		return rc;
	}
	/* A breakdown keeps a copy (breakdown.h). */
	if (a->bd && !a->bd->fig && (a->bd->fig = malloc((total + 1) * sizeof(*f)))) {
		memcpy(a->bd->fig, f, total * sizeof(*f));
		a->bd->nfig = total;
	}
	*rows = f;
	*n = total;
	return 0;
}

int cdr__totals_render(const cdr__acc *a, const cdr__period *p, char **buf,
		       size_t *len)
{
	static const char header[] =
		"account,period,records,late_records,voice_seconds,sms_count,"
		"data_bytes,voice_charge,sms_charge,data_charge,"
		"allowance_credit,recurring_charge,outage_credit,total\n";
	month m;
	month_job j[MONTH_MAX_THREADS] = {{0}};
	int nj = 0;
	int rc = month_init(&m, a, p);
	if (rc)
		return rc;
	/* The first part's buffer starts with the header and takes the
	 * others at its end (a realloc of a large block moves no bytes). */
	j[0].s.b = malloc(4096);
	j[0].s.cap = 4096;
	if (!j[0].s.b) {
		month_free(&m);
		return -ENOMEM;
	}
	memcpy(j[0].s.b, header, sizeof(header) - 1);
	j[0].s.n = sizeof(header) - 1;
	rc = month_jobs(&m, 1, j, &nj);
	size_t total = 0;
	for (int k = 0; k < nj; k++)
		total += j[k].s.n;
	if (!rc)
		rc = sb_reserve(&j[0].s, total - j[0].s.n + 1);
	for (int k = 1; k < nj; k++) {
		if (!rc && j[k].s.n)
			sb_put(&j[0].s, j[k].s.b, j[k].s.n);
		free(j[k].s.b);
	}
	/* A breakdown keeps the figures (breakdown.h), all parts in order,
	 * or their sums and largest totals. */
	if (j[0].keep == 2 && !rc) {
		a->bd->figs = j[0].fs;
		for (int k = 1; k < nj; k++)
			cdr__bd_figs_merge(&a->bd->figs, &j[k].fs);
		a->bd->has_figs = 1;
	} else if (j[0].keep == 1 && nj == 1 && !rc) {
		a->bd->fig = j[0].f; /* one part: as it is */
		a->bd->nfig = j[0].n;
	} else if (j[0].keep == 1) {
		size_t nf = 0;
		for (int k = 0; k < nj; k++)
			nf += j[k].n;
		cdr__figures *f = rc ? NULL : malloc((nf + 1) * sizeof(*f));
		for (int k = 0, o = 0; f && k < nj; k++) {
			if (j[k].n)
				memcpy(f + o, j[k].f, j[k].n * sizeof(*f));
			o += (int)j[k].n;
		}
		for (int k = 0; k < nj; k++)
			free(j[k].f);
		if (f) {
			a->bd->fig = f;
			a->bd->nfig = nf;
		}
	}
	char *out = j[0].s.b;
	if (rc)
		free(out);
	month_free(&m);
	if (rc)
		return rc;
	*buf = out;
	*len = total;
	return 0;
}
