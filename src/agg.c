/*
 * agg.c - accumulate rated records: the per-account sums and the
 * allowance log.
 *
 * Each worker owns one cdr__acc per tariff: a dense array of per-account
 * sums (an account index is an array index, so adding a record is a few
 * 64-bit adds) and an append-only log of allowance entries, one per
 * record whose row holds an allowance of its service. Workers merge once
 * at the end (the logs are handed over whole); every sum is commutative,
 * so totals do not depend on thread count or input order.
 *
 * After the merge the log is sealed (cdr__acc_seal: grouped by row, each
 * row's entries in SPEC 7's taking order, equal buckets added up) and
 * read back a row at a time (agg.h) by the monthly charges (monthly.c)
 * and cdr__acc_buckets.
 *
 * Sections: accumulators - buckets (the log, the adds, take back, merge)
 * - taking order - the log by row (its seal, cdr__acc_buckets).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "breakdown.h"
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

/* ---- taking order ---------------------------------------------------- */

/* The ranks of dear_rank (agg.h), made once per run over the tariff. */
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
	/* dear_init writes the rank of every zone (pn is a permutation of
	 * names' addresses): clang's analyzer cannot follow that through
	 * qsort, and finds zone[za] unwritten on a path. */
	// NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
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

/* ---- the log by row -------------------------------------------------- */

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

void cdr__bk_rows_free(bk_rows *b)
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

int cdr__bk_rows_init(bk_rows *b, const cdr__acc *a)
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
		cdr__bk_rows_free(b);
		return rc;
	}
	bk_scatter(NULL, a, b->off, b->e);
	return 0;
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

int cdr__row_buckets(bk_rows *b, bk_scratch *s, uint32_t r)
{
	s->n = 0;
	if (!cdr__bk_rows_count(b, r))
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
		cdr__bk_rows_free(&b);
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
	int rc = cdr__bk_rows_init(&b, a);
	for (uint32_t r = 0; !rc && b.off && r < a->t->nrows; r++)
		if (!(rc = cdr__row_buckets(&b, &sc, r)) && sc.n)
			rc = fn(ctx, r, sc.bk, sc.n);
	cdr__bk_rows_free(&b);
	free(sc.bk);
	free(sc.slot);
	return rc;
}
