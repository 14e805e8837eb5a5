/*
 * agg.c - accumulate rated records and compute the monthly charges.
 *
 * Each worker owns one cdr__acc per tariff: a dense array of per-account
 * sums (an account index is an array index, so adding a record is a few
 * 128-bit adds) and a small hash of allowance buckets, filled only for rows
 * that hold packages. Workers merge once at the end; every sum is
 * commutative, so totals do not depend on thread count or input order.
 *
 * After the merge, totals_render works per subscriber row: recurring fees
 * with proration, package allowances (dearest first), outage credits with
 * their cap; then one line per account with the columns rounded once.
 *
 * Sections: accumulators - buckets - recurring fees - allowances - outages
 * - totals (compute_monthly brings the three monthly parts together).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil.h"
#include "internal.h"

/* ---- accumulators ---------------------------------------------------- */

#define BK_EMPTY UINT32_MAX

static int bk_alloc(cdr__acc *a, uint32_t cap)
{
	a->bk = calloc(cap, sizeof(*a->bk));
	if (!a->bk)
		return -ENOMEM;
	for (uint32_t i = 0; i < cap; i++)
		a->bk[i].row = BK_EMPTY;
	a->bk_mask = cap - 1;
	a->bk_n = 0;
	return 0;
}

int cdr__acc_init(cdr__acc *a, const cdr_tariff *t)
{
	memset(a, 0, sizeof(*a));
	a->t = t;
	a->acct = cdr__calloc_huge(t->naccounts, sizeof(*a->acct));
	if (!a->acct || bk_alloc(a, 64)) {
		cdr__acc_fini(a);
		return -ENOMEM;
	}
	return 0;
}

void cdr__acc_fini(cdr__acc *a)
{
	free(a->acct);
	free(a->wide);
	free(a->bk);
	a->acct = NULL;
	a->wide = NULL;
	a->bk = NULL;
}

/* ---- buckets --------------------------------------------------------- */

static uint32_t bk_hash(uint32_t row, uint32_t rr, uint32_t z, uint32_t b)
{
	uint64_t h = ((uint64_t)row << 32 | rr) * 0x9E3779B97F4A7C15ULL;
	h ^= ((uint64_t)z << 8 | b) * 0xC2B2AE3D27D4EB4FULL;
	return (uint32_t)(h >> 32);
}

static cdr__bucket *bk_slot(cdr__acc *a, uint32_t row, uint32_t rr,
			    uint32_t z, uint32_t b)
{
	for (uint32_t i = bk_hash(row, rr, z, b) & a->bk_mask;;
	     i = (i + 1) & a->bk_mask) {
		cdr__bucket *k = &a->bk[i];
		if (k->row == BK_EMPTY || (k->row == row && k->rate_row == rr &&
					   k->zone == z && k->band == b))
			return k;
	}
}

static int bk_grow(cdr__acc *a)
{
	cdr__bucket *old = a->bk;
	uint32_t cap = (a->bk_mask + 1) * 2, n = a->bk_mask + 1;
	if (bk_alloc(a, cap)) {
		a->bk = old;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		if (old[i].row != BK_EMPTY) {
			*bk_slot(a, old[i].row, old[i].rate_row, old[i].zone,
				 old[i].band) = old[i];
			a->bk_n++;
		}
	free(old);
	return 0;
}

static int bk_add(cdr__acc *a, uint32_t row, uint32_t rr, uint32_t z,
		  uint32_t b, u128 units, int sign)
{
	if (a->bk_n * 2 >= a->bk_mask && bk_grow(a))
		return -ENOMEM;
	cdr__bucket *k = bk_slot(a, row, rr, z, b);
	if (k->row == BK_EMPTY) {
		k->row = row;
		k->rate_row = rr;
		k->zone = z;
		k->band = b;
		k->units = 0;
		a->bk_n++;
	}
	k->units = sign > 0 ? k->units + units : k->units - units;
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

/* Add d to sum f of account i: in 64 bits when it stays there, else
 * in the wide table (made on first use). */
static int add_field(cdr__acc *a, uint32_t i, int f, i128 d)
{
	int64_t *v = &a->acct[i].f[f], r;
	if (d >= INT64_MIN && d <= INT64_MAX &&
	    !__builtin_add_overflow(*v, (int64_t)d, &r)) {
		*v = r;
		return 0;
	}
	if (!a->wide) {
		a->wide = cdr__calloc_huge(a->t->naccounts, sizeof(*a->wide));
		if (!a->wide)
			return -ENOMEM;
	}
	a->wide[i].f[f] += d;
	return 0;
}

i128 cdr__acc_get(const cdr__acc *a, uint32_t i, int f)
{
	return (i128)a->acct[i].f[f] + (a->wide ? a->wide[i].f[f] : 0);
}

int cdr__acc_add(cdr__acc *a, const cdr__rated *x, int sign)
{
	const uint32_t i = x->account;
	const i128 s = sign;
	static const int qty_f[CDR_NSVC] = {CDR_F_VOICE_S, CDR_F_SMS,
					    CDR_F_DATA_B};
	static const int charge_f[CDR_NSVC] = {CDR_F_VOICE_C, CDR_F_SMS_C,
					       CDR_F_DATA_C};
	int rc = add_field(a, i, CDR_F_RECORDS, s);
	if (!rc && x->late)
		rc = add_field(a, i, CDR_F_LATE, s);
	if (!rc && x->quantity)
		rc = add_field(a, i, qty_f[x->service], s * (i128)x->quantity);
	if (!rc && x->charge_micros)
		rc = add_field(a, i, charge_f[x->service],
			       s * x->charge_micros);
	if (rc)
		return rc;
	/* Only rows with packages can use a bucket; late records never do. */
	if (x->late || x->rate_row < 0 || !x->has_pkgs)
		return 0;
	if (a->t->band_split && x->service == CDR_VOICE && x->quantity)
		return bk_add_split(a, x, sign);
	return bk_add(a, (uint32_t)x->row, (uint32_t)x->rate_row, x->zone,
		      x->band, x->quantity, sign);
}

int cdr__acc_merge(cdr__acc *into, const cdr__acc *from)
{
	for (uint32_t i = 0; i < into->t->naccounts; i++)
		for (int f = 0; f < CDR_NF; f++)
			if (add_field(into, i, f, cdr__acc_get(from, i, f)))
				return -ENOMEM;
	for (uint32_t i = 0; i <= from->bk_mask; i++) {
		const cdr__bucket *k = &from->bk[i];
		if (k->row != BK_EMPTY &&
		    bk_add(into, k->row, k->rate_row, k->zone, k->band,
			   k->units, 1))
			return -ENOMEM;
	}
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


/* Dearest price per unit first; ties by zone, band (bytes), rate line. */
typedef struct dear_ctx {
	const cdr_tariff *t;
} dear_ctx;

static int cmp_dear(const void *pa, const void *pb, void *ctx)
{
	const cdr__bucket *a = pa, *b = pb;
	const cdr_tariff *t = ((const dear_ctx *)ctx)->t;
	if (a->row != b->row)
		return a->row < b->row ? -1 : 1;
	const cdr__rate_row *ra = &t->rates[a->rate_row],
			    *rb = &t->rates[b->rate_row];
	u128 x = (u128)(uint64_t)ra->price_micros * rb->unit;
	u128 y = (u128)(uint64_t)rb->price_micros * ra->unit;
	if (x != y)
		return x > y ? -1 : 1;
	const char *za = a->zone < t->nzones ? t->zone_names[a->zone] : "*";
	const char *zb = b->zone < t->nzones ? t->zone_names[b->zone] : "*";
	int c = strcmp(za, zb);
	if (c)
		return c;
	c = strcmp(t->band_names[a->band], t->band_names[b->band]);
	if (c)
		return c;
	return (ra->line > rb->line) - (ra->line < rb->line);
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
			  cdr__bucket *bk, size_t n)
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
				credit += (i128)cdr__div_round(
					(u128)(uint64_t)rr->price_micros * take,
					rr->unit);
				bk[i].units -= take;
				left -= take;
			}
		}
	}
	return credit;
}

/* ---- outages --------------------------------------------------------- */

/*
 * Credit one outage into outage[row] for every row of its number it meets.
 * A row is active from its `from` day's local 00:00 to the end of its `to`
 * day, so a line disconnected on the 23rd gets nothing for the 24th, and an
 * outage that began under a row ending before the period still credits its
 * part under the next row. Rows are few per number: a linear walk.
 */
static void outage_parts(const cdr_tariff *t, const cdr__period *p,
			 const cdr__outage *o, i128 *outage)
{
	int64_t a0 = o->from_utc > p->start_utc ? o->from_utc : p->start_utc;
	int64_t b0 = o->to_utc < p->end_utc ? o->to_utc : p->end_utc;
	if (b0 <= a0)
		return;
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
		outage[ri] += rnd((u128)fee * (uint64_t)(b - a),
				  (u128)30 * 86400);
	}
}

/* ---- totals ---------------------------------------------------------- */

/* What the month adds to an account beyond its records. */
typedef struct acct_extra {
	i128 allowance, recurring, outage;
	uint8_t present; /* a row overlaps the period: it gets a line */
} acct_extra;

/*
 * The monthly charges, per subscriber row, into x[account]: recurring
 * fees, then allowances (buckets grouped by row: sorting by row first and
 * dearness second puts each row's buckets together, in taking order),
 * then outages, capped per row at that row's prorated plan fee - which is
 * why the prorated plan fee of every row is kept in plan_fee[].
 */
static int compute_monthly(const cdr__acc *a, const cdr__period *p,
			   acct_extra *x)
{
	const cdr_tariff *t = a->t;
	int64_t *plan_fee = calloc(t->nrows + 1, sizeof(int64_t));
	i128 *outage = calloc(t->nrows + 1, sizeof(i128));
	cdr__bucket *bk = malloc(((size_t)a->bk_n + 1) * sizeof(*bk));
	if (!plan_fee || !outage || !bk) {
		free(plan_fee);
		free(outage);
		free(bk);
		return -ENOMEM;
	}

	for (uint32_t i = 0; i < t->nrows; i++) {
		const cdr__sub_row *r = &t->rows[i];
		if (r->from_day > p->last_day || r->to_day < p->first_day)
			continue;
		acct_extra *e = &x[r->account];
		e->present = 1;
		plan_fee[i] = prorate(t, r, p, t->plans[r->plan].fee_micros);
		e->recurring += plan_fee[i];
		for (uint32_t k = 0; k < r->npkg; k++)
			e->recurring += prorate(
				t, r, p,
				t->packages[t->row_pkgs[r->first_pkg + k]]
					.fee_micros);
	}

	size_t n = 0;
	for (uint32_t i = 0; i <= a->bk_mask; i++)
		if (a->bk[i].row != BK_EMPTY && a->bk[i].units)
			bk[n++] = a->bk[i];
	/* qsort_r passes a non-const context: wrap the tariff pointer. */
	dear_ctx ctx = {t};
	if (n)
		qsort_r(bk, n, sizeof(*bk), cmp_dear, &ctx);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && bk[j].row == bk[i].row)
			j++;
		const cdr__sub_row *r = &t->rows[bk[i].row];
		x[r->account].allowance += row_allowance(t, r, bk + i, j - i);
		i = j;
	}

	/* Outages: cut at the period's bounds and at the number's rows, each
	 * part at its own row's plan fee and rounded on its own; a row's sum
	 * is capped below. Seconds under no row credit nothing. */
	for (uint32_t i = 0; i < t->noutages; i++)
		outage_parts(t, p, &t->outages[i], outage);
	for (uint32_t i = 0; i < t->nrows; i++)
		if (outage[i])
			x[t->rows[i].account].outage +=
				outage[i] < plan_fee[i] ? outage[i] : plan_fee[i];

	free(plan_fee);
	free(outage);
	free(bk);
	return 0;
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

static void sb_u(sbuf *s, u128 v)
{
	s->n += cdr__fmt_u128(s->b + s->n, v);
}

static void sb_scaled(sbuf *s, i128 v, int dec)
{
	s->b[s->n++] = ',';
	s->n += cdr__fmt_scaled(s->b + s->n, v, dec);
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
	static const int qty[5] = {CDR_F_RECORDS, CDR_F_LATE, CDR_F_VOICE_S,
				   CDR_F_SMS, CDR_F_DATA_B};
	static const int charge[3] = {CDR_F_VOICE_C, CDR_F_SMS_C,
				      CDR_F_DATA_C};
	const cdr_tariff *t = a->t;
	acct_extra *x = calloc(t->naccounts, sizeof(*x));
	cdr__figures *f = malloc(((size_t)t->naccounts + 1) * sizeof(*f));
	int rc = x && f ? compute_monthly(a, p, x) : -ENOMEM;
	size_t k = 0;
	i128 scale = 1;
	for (int i = t->decimals; i < 6; i++)
		scale *= 10;
	for (uint32_t i = 0; !rc && i < t->naccounts; i++) {
		if (!cdr__acc_get(a, i, CDR_F_RECORDS) && !x[i].present)
			continue;
		cdr__figures *r = &f[k++];
		r->acct = t->accounts[i];
		r->acct_n = strlen(r->acct);
		for (int q = 0; q < 5; q++)
			r->qty[q] = (u128)cdr__acc_get(a, i, qty[q]);
		/* Rounded once, kept as the micros the printed figure is. */
		for (int c = 0; c < 3; c++)
			r->amt[c] = cdr__round_to_decimals(
					    cdr__acc_get(a, i, charge[c]),
					    t->decimals) *
				    scale;
		r->amt[3] = cdr__round_to_decimals(x[i].allowance, t->decimals) *
			    scale;
		r->amt[4] = cdr__round_to_decimals(x[i].recurring, t->decimals) *
			    scale;
		r->amt[5] = cdr__round_to_decimals(x[i].outage, t->decimals) *
			    scale;
		r->amt[6] = r->amt[0] + r->amt[1] + r->amt[2] - r->amt[3] +
			    r->amt[4] - r->amt[5];
	}
	free(x);
	if (rc) {
		free(f);
		return rc;
	}
	*rows = f;
	*n = k;
	return 0;
}

int cdr__totals_render(const cdr__acc *a, const cdr__period *p, char **buf,
		       size_t *len)
{
	static const char header[] =
		"account,period,records,late_records,voice_seconds,sms_count,"
		"data_bytes,voice_charge,sms_charge,data_charge,"
		"allowance_credit,recurring_charge,outage_credit,total\n";
	const int dec = a->t->decimals;
	cdr__figures *f;
	size_t n;
	sbuf s = {0};
	char period[16];
	int rc = cdr__totals_figures(a, p, &f, &n);
	if (rc)
		return rc;
	i128 scale = 1;
	for (int i = dec; i < 6; i++)
		scale *= 10;
	snprintf(period, sizeof(period), "%04d-%02d", p->year, p->month);
	if ((rc = sb_reserve(&s, sizeof(header))))
		goto out;
	sb_put(&s, header, sizeof(header) - 1);
	for (size_t i = 0; i < n; i++) {
		const cdr__figures *r = &f[i];
		if ((rc = sb_reserve(&s, r->acct_n + 16 + (size_t)12 * 48)))
			goto out;
		sb_put(&s, r->acct, r->acct_n);
		s.b[s.n++] = ',';
		sb_put(&s, period, strlen(period));
		for (int k = 0; k < 5; k++) {
			s.b[s.n++] = ',';
			sb_u(&s, r->qty[k]);
		}
		for (int k = 0; k < 7; k++)
			sb_scaled(&s, r->amt[k] / scale, dec);
		s.b[s.n++] = '\n';
	}
out:
	free(f);
	if (rc) {
		free(s.b);
		return rc;
	}
	*buf = s.b;
	*len = s.n;
	return 0;
}
