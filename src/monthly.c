/*
 * monthly.c - the monthly charges of SPEC 7, per account.
 *
 * After the merge the month works per subscriber row: recurring fees
 * with proration, package allowances drawn from the row's buckets
 * (agg.c's log, dearest first), outage credits with their cap; then one
 * account's figures with each amount column rounded once (account_line
 * brings the three monthly parts together). The accounts run in up to
 * two ranges on as many threads; totals.c prints the figures as the
 * totals CSV, cdr__totals_figures hands them over as they are.
 *
 * Sections: recurring fees - allowances - outages - the month (its
 * object, an account's line, the account ranges, cdr__totals_figures).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakdown.h"
#include "internal.h"
#include "monthly.h"

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

/* cdr__acc_takes: row_allowance over every row, each take to fn. */
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

/* The credit lists (monthly.h): appended to, then summed by key. */
static int credit_add(credits *l, uint32_t key, i128 v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		keyed_credit *n = realloc(l->c, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->c = n;
		l->cap = cap;
	}
	l->c[l->n++] = (keyed_credit){key, v};
	return 0;
}

static int cmp_credit(const void *a, const void *b)
{
	uint32_t x = ((const keyed_credit *)a)->key,
		 y = ((const keyed_credit *)b)->key;
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

/* ---- the month ------------------------------------------------------- */

void cdr__month_free(month *m)
{
	cdr__bk_rows_free(&m->b);
	free(m->acc_off);
	free(m->acc_rows);
	free(m->out.c);
}

static int row_in_period(const cdr__sub_row *r, const cdr__period *p)
{
	return r->from_day <= p->last_day && r->to_day >= p->first_day;
}

int cdr__month_init(month *m, const cdr__acc *a, const cdr__period *p)
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
	int rc = cdr__bk_rows_init(&m->b, a);
	m->acc_off = calloc((size_t)t->naccounts + 1, sizeof(*m->acc_off));
	m->acc_rows = malloc(((size_t)t->nrows + 1) * sizeof(*m->acc_rows));
	if (rc || !m->acc_off || !m->acc_rows) {
		cdr__month_free(m);
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
		cdr__month_free(m);
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
		int rc = cdr__row_buckets(&m->b, sc, ri);
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
			j->rc = cdr__totals_line(&j->s, &fig, j->m);
		} else if (got && j->keep == 2) {
			j->rc = cdr__totals_line(&j->s, &fig, j->m);
			cdr__bd_figs_add(&j->fs, &fig);
		} else if (got) {
			if (j->text &&
			    (j->rc = cdr__totals_line(&j->s, &fig, j->m)))
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

/*
 * Run the accounts in up to a->threads (at most 2) ranges of about equal
 * work (rows and log entries), on that many threads; the ranges' results
 * in order are what one thread would give.
 */
int cdr__month_jobs(month *m, int text, month_job *j, int *nj)
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
				sum += 1 + cdr__bk_rows_count(&m->b,
								 m->acc_rows[k]);
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

cdr__figures *cdr__month_figures(month_job *j, int nj, int want, size_t *n)
{
	size_t total = 0;
	for (int k = 0; k < nj; k++)
		total += j[k].n;
	cdr__figures *f = want ? malloc((total + 1) * sizeof(*f)) : NULL;
	for (int k = 0, o = 0; k < nj; k++) {
		if (f && j[k].n)
			memcpy(f + o, j[k].f, j[k].n * sizeof(*f));
		o += (int)j[k].n;
		free(j[k].f);
		j[k].f = NULL;
	}
	*n = total;
	return f;
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
	int rc = cdr__month_init(&m, a, p);
	if (rc)
		return rc;
	rc = cdr__month_jobs(&m, 0, j, &nj);
	size_t total;
	cdr__figures *f = cdr__month_figures(j, nj, !rc, &total);
	if (!rc && !f)
		rc = -ENOMEM;
	cdr__month_free(&m);
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
