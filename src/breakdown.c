/*
 * breakdown.c - where the money came from: the sums behind --breakdown
 * and --report, and the breakdown CSV.
 *
 * During the pass each worker's accumulator (agg.c) hands every rated
 * record, and every duplicate taken back (sign -1), to its cdr__bd: a
 * small open-addressing table of (service, plan, zone, band) cells,
 * records and charge by local hour x band and by local day, and rejects
 * by input with a few sample lines per reason (the smallest by input path
 * and offset, so the same whatever thread saw them; a duplicate's loser
 * moves to `duplicate` when dedup.c takes it back, cdr__bd_undo, so each
 * is a line of its final reason). Workers' tables are added together at
 * the merge; every sum is commutative.
 *
 * At the end cdr__bd_rows turns one side (or both sides of a rerate) into
 * rows keyed by names: the allowance takes of the totals (cdr__acc_takes)
 * credited to their cells, a `rounding` row per service that carries the
 * difference between the cells' rounded charges and the totals file's
 * columns (each rounded once per account), and a `monthly` row with the
 * totals' recurring and outage columns. Rows are sorted bytewise by their
 * key columns; the README describes the CSV.
 *
 * Sections: collecting - rows - CSV.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakdown.h"
#include "civil.h"
#include "internal.h"

/* ---- collecting ------------------------------------------------------- */

cdr__bd *cdr__bd_new(const cdr_tariff *t, const cdr__period *p, uint32_t nin)
{
	cdr__bd *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->t = t;
	b->p = p;
	b->nband = t->nbands + 1;
	b->nplans = t->nplans;
	b->local0 = p->first_day * 86400;
	b->span = (uint64_t)(p->last_day - p->first_day + 1) * 86400;
	/* One offset from the first midnight to the end of the period? Then
	 * an instant is in the period's local days exactly when it is in
	 * [utc0, utc0 + span), its local time utc - utc0 + local0. */
	int32_t off = cdr__tz_offset_at(t->tz, p->start_utc);
	b->utc0 = b->local0 - off;
	b->fixed = b->utc0 == p->start_utc &&
		   cdr__tz_next_change(t->tz, p->start_utc) >=
			   b->utc0 + (int64_t)b->span;
	b->cap = 64;
	b->cells = calloc(b->cap, sizeof(*b->cells));
	if (t->cell_off) {
		size_t nd = cdr__rate_cell(t, t->nplans, 0, 0, 0);
		if (nd && nd <= CDR_BD_DENSE_MAX &&
		    (b->dc = calloc(nd, sizeof(*b->dc))))
			b->ndc = (uint32_t)nd;
	}
	b->nhp = (uint32_t)(b->span / 3600);
	b->hp_rec = calloc((size_t)b->nhp * b->nband, sizeof(*b->hp_rec));
	b->hp_chg = calloc((size_t)b->nhp * b->nband, sizeof(*b->hp_chg));
	b->hour_rec = calloc((size_t)24 * b->nband, sizeof(*b->hour_rec));
	b->hour_chg = calloc((size_t)24 * b->nband, sizeof(*b->hour_chg));
	b->nin = nin;
	b->rej_in = calloc(nin ? nin : 1, sizeof(*b->rej_in));
	if (!b->cells || !b->hour_rec || !b->hour_chg || !b->rej_in ||
	    !b->hp_rec || !b->hp_chg) {
		cdr__bd_free(b);
		return NULL;
	}
	return b;
}

void cdr__bd_free(cdr__bd *b)
{
	if (!b)
		return;
	free(b->cells);
	free(b->dc);
	free(b->hour_rec);
	free(b->hour_chg);
	free(b->hp_rec);
	free(b->hp_chg);
	free(b->rej_in);
	free(b->fig);
	free(b);
}

#define cell_key cdr__bd_key

static cdr__bdcell *cell_at(cdr__bd *b, uint64_t key);

static int cells_grow(cdr__bd *b)
{
	cdr__bdcell *old = b->cells;
	uint32_t ocap = b->cap;
	cdr__bdcell *n = calloc((size_t)ocap * 2, sizeof(*n));
	if (!n)
		return -ENOMEM;
	b->cells = n;
	b->cap = ocap * 2;
	b->ncells = 0;
	for (uint32_t i = 0; i < ocap; i++)
		if (old[i].key) {
			cdr__bdcell *c = cell_at(b, old[i].key);
			*c = old[i];
		}
	free(old);
	return 0;
}

/* The cell of key, made when new; NULL only when the table is full. */
static cdr__bdcell *cell_at(cdr__bd *b, uint64_t key)
{
	uint32_t m = b->cap - 1, i = cdr__bd_slot(key, b->cap);
	for (;; i = (i + 1) & m) {
		cdr__bdcell *c = &b->cells[i];
		if (c->key == key)
			return c;
		if (!c->key) {
			if ((b->ncells + 1) * 4 > b->cap * 3)
				return NULL;
			memset(c, 0, sizeof(*c));
			c->key = key;
			b->ncells++;
			return c;
		}
	}
}

static cdr__bdcell *cell_get(cdr__bd *b, uint64_t key)
{
	cdr__bdcell *c = cell_at(b, key);
	if (!c && !cells_grow(b))
		c = cell_at(b, key);
	return c;
}

cdr__bdcell *cdr__bd_cell(cdr__bd *b, uint64_t key)
{
	return cell_get(b, key);
}

/* The row's plan, or nplans for a record without a row (a free call). */
static uint32_t rec_plan(const cdr_tariff *t, int32_t row)
{
	return row >= 0 ? t->rows[row].plan : t->nplans;
}

static uint32_t band_ix(const cdr__bd *b, uint32_t band)
{
	return band < b->t->nbands ? band : b->t->nbands;
}

int cdr__bd_add_slow(cdr__bd *b, const cdr__rated *x, int sign)
{
	const cdr_tariff *t = b->t;
	cdr__bdcell *c = cell_get(b, cell_key(x->service, rec_plan(t, x->row),
					      x->zone, band_ix(b, x->band)));
	if (!c)
		return -ENOMEM;
	c->records += sign;
	c->late += x->late ? sign : 0;
	c->qty += sign * (i128)x->quantity;
	c->charge += sign * x->charge_micros;
	/* Local hour and day of the start. */
	int64_t local = x->start_utc + cdr__tz_win_offset(&b->p->tzw, x->start_utc);
	int64_t day = cdr__floor_div(local, 86400);
	int64_t hour = (local - day * 86400) / 3600;
	size_t h = (size_t)hour * b->nband + band_ix(b, x->band);
	int64_t d = day - b->p->first_day;
	if (d >= 0 && d <= b->p->last_day - b->p->first_day) {
		/* in the period: the hour of the period, as the fast path */
		size_t hp = ((size_t)d * 24 + (size_t)hour) * b->nband +
			    band_ix(b, x->band);
		b->hp_rec[hp] += sign;
		b->hp_chg[hp] += sign * x->charge_micros;
		return 0;
	}
	b->hour_rec[h] += sign;
	b->hour_chg[h] += sign * x->charge_micros;
	size_t di = d < 0 ? CDR_BD_DAYS - 2 : CDR_BD_DAYS - 1;
	b->day_rec[di] += sign;
	b->day_chg[di] += sign * x->charge_micros;
	return 0;
}

/* Dense cells dc[0, n) of tariff t added to b's hash table. */
static int dense_add(cdr__bd *b, const cdr__bddense *dc, uint32_t n)
{
	const cdr_tariff *t = b->t;
	for (uint32_t i = 0; i < n; i++) {
		const cdr__bddense *d = &dc[i];
		if (!d->records && !d->qty && !d->charge)
			continue;
		/* cdr__rate_cell's index, taken apart */
		uint32_t band = i % t->nbands, r = i / t->nbands;
		uint32_t zone = r % (t->nzones + 1);
		r /= t->nzones + 1;
		cdr__bdcell *c = cell_get(b, cell_key(r % CDR_NSVC, r / CDR_NSVC,
						      zone, band));
		if (!c)
			return -ENOMEM;
		c->records += d->records;
		c->qty += d->qty;
		c->charge += d->charge;
	}
	return 0;
}

int cdr__bd_fold(cdr__bd *b)
{
	int rc = dense_add(b, b->dc, b->ndc);
	if (!rc && b->ndc)
		memset(b->dc, 0, (size_t)b->ndc * sizeof(*b->dc));
	return rc;
}

static void sample_put(cdr__bd *b, int reason, uint64_t order,
		       const char *line, size_t n)
{
	cdr__bdsample *s = b->sample[reason];
	b->nsample[reason]++;
	/* Keep the CDR_BD_POOL smallest orders, sorted. */
	int at = CDR_BD_POOL;
	while (at > 0 && (!s[at - 1].order || s[at - 1].order > order))
		at--;
	if (at == CDR_BD_POOL || (at > 0 && s[at - 1].order == order))
		return; /* not among the first, or there already */
	memmove(&s[at + 1], &s[at], (size_t)(CDR_BD_POOL - 1 - at) * sizeof(*s));
	s[at].order = order;
	s[at].n = (uint16_t)(n < CDR_BD_SAMPLE_MAX ? n : CDR_BD_SAMPLE_MAX);
	memcpy(s[at].line, line, s[at].n);
}

/* The sample of order taken out of reason's (when it is there). */
static void sample_drop(cdr__bd *b, int reason, uint64_t order)
{
	cdr__bdsample *s = b->sample[reason];
	b->nsample[reason]--;
	for (int at = 0; at < CDR_BD_POOL && s[at].order; at++)
		if (s[at].order == order) {
			memmove(&s[at], &s[at + 1],
				(size_t)(CDR_BD_POOL - 1 - at) * sizeof(*s));
			s[CDR_BD_POOL - 1].order = 0;
			return;
		}
}

void cdr__bd_sample(cdr__bd *b, int reason, uint64_t order, const char *line,
		    size_t n)
{
	sample_put(b, reason, order, line, n);
}

void cdr__bd_reject(cdr__bd *b, uint32_t in, uint64_t order, int reason,
		    const char *line, size_t n)
{
	if (in < b->nin)
		b->rej_in[in]++;
	/* order 0 is the empty slot: every order is shifted up by one. */
	sample_put(b, reason, order + 1, line, n);
}

void cdr__bd_undo(cdr__bd *b, uint32_t in, uint64_t order, int reason,
		  const char *line, size_t n)
{
	if (reason == CDR_OK) {
		cdr__bd_reject(b, in, order, CDR_R_DUPLICATE, line, n);
		return;
	}
	/* Counted as a reject of its input when it was read; its sample,
	 * if it was one, is no longer a line of that reason. */
	sample_drop(b, reason, order + 1);
	sample_put(b, CDR_R_DUPLICATE, order + 1, line, n);
}

/* Larger total first, then account name (the report's order). */
static int fig_before(const cdr__figures *x, const cdr__figures *y)
{
	if (x->amt[6] != y->amt[6])
		return x->amt[6] > y->amt[6];
	return strcmp(x->acct, y->acct) < 0;
}

static void top_put(cdr__bdfigs *s, const cdr__figures *f)
{
	if (s->ntop == CDR_BD_TOP && !fig_before(f, &s->top[CDR_BD_TOP - 1]))
		return;
	uint32_t at = s->ntop < CDR_BD_TOP ? s->ntop++ : CDR_BD_TOP - 1;
	while (at > 0 && fig_before(f, &s->top[at - 1])) {
		s->top[at] = s->top[at - 1];
		at--;
	}
	s->top[at] = *f;
}

void cdr__bd_figs_add(cdr__bdfigs *s, const cdr__figures *f)
{
	s->sum[0] += f->amt[0];
	s->sum[1] += f->amt[1];
	s->sum[2] += f->amt[2];
	s->sum[3] += f->amt[3];
	s->sum[4] += f->amt[4];
	s->sum[5] += f->amt[5];
	s->sum[6] += f->amt[6];
	s->n++;
	/* most accounts are below the last kept: one comparison */
	if (s->ntop < CDR_BD_TOP || f->amt[6] >= s->top[CDR_BD_TOP - 1].amt[6])
		top_put(s, f);
}

void cdr__bd_figs_merge(cdr__bdfigs *into, const cdr__bdfigs *from)
{
	for (int c = 0; c < 7; c++)
		into->sum[c] += from->sum[c];
	into->n += from->n;
	for (uint32_t i = 0; i < from->ntop; i++)
		top_put(into, &from->top[i]);
}

int cdr__bd_merge(cdr__bd *into, const cdr__bd *from)
{
	if (into->ndc == from->ndc) {
		for (uint32_t i = 0; i < from->ndc; i++) {
			const cdr__bddense *f = &from->dc[i];
			cdr__bddense *d = &into->dc[i];
			d->records += f->records;
			d->qty += f->qty;
			d->charge += f->charge;
		}
	} else if (dense_add(into, from->dc, from->ndc)) {
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < from->cap; i++) {
		const cdr__bdcell *f = &from->cells[i];
		if (!f->key)
			continue;
		cdr__bdcell *c = cell_get(into, f->key);
		if (!c)
			return -ENOMEM;
		c->records += f->records;
		c->late += f->late;
		c->qty += f->qty;
		c->charge += f->charge;
		c->allow += f->allow;
	}
	for (size_t i = 0; i < (size_t)24 * into->nband; i++) {
		into->hour_rec[i] += from->hour_rec[i];
		into->hour_chg[i] += from->hour_chg[i];
	}
	for (size_t i = 0; i < (size_t)into->nhp * into->nband; i++) {
		into->hp_rec[i] += from->hp_rec[i];
		into->hp_chg[i] += from->hp_chg[i];
	}
	for (int i = 0; i < CDR_BD_DAYS; i++) {
		into->day_rec[i] += from->day_rec[i];
		into->day_chg[i] += from->day_chg[i];
	}
	for (uint32_t i = 0; i < into->nin && i < from->nin; i++)
		into->rej_in[i] += from->rej_in[i];
	for (int r = 0; r < CDR_NREASON; r++) {
		int64_t seen = into->nsample[r] + from->nsample[r];
		for (int k = 0; k < CDR_BD_POOL; k++)
			if (from->sample[r][k].order)
				sample_put(into, r, from->sample[r][k].order,
					   from->sample[r][k].line,
					   from->sample[r][k].n);
		into->nsample[r] = seen;
	}
	return 0;
}

/* ---- rows -------------------------------------------------------------- */

static const char *const svc_names[CDR_NSVC] = {"voice", "sms", "data"};

/* Key texts live in one arena, referred to by offset until it stops
 * moving (rows_fix). */
static int arena_put(cdr__bdrows *o, const char *s, size_t n, size_t *at)
{
	if (o->an + n + 1 > o->acap) {
		size_t cap = o->acap ? o->acap * 2 : 4096;
		while (cap < o->an + n + 1)
			cap *= 2;
		char *a = realloc(o->arena, cap);
		if (!a)
			return -ENOMEM;
		o->arena = a;
		o->acap = cap;
	}
	*at = o->an;
	memcpy(o->arena + o->an, s, n);
	o->arena[o->an + n] = '\0';
	o->an += n + 1;
	return 0;
}

/* A new row of side s with the given keys (NULL: empty). */
static cdr__bdrow *row_new(cdr__bdrows *o, int s, const char *const *k)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 256;
		cdr__bdrow *n = realloc(o->row, cap * sizeof(*n));
		if (!n)
			return NULL;
		o->row = n;
		o->cap = cap;
	}
	cdr__bdrow *r = &o->row[o->n];
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < CDR_BK_N; i++) {
		size_t at;
		const char *v = k[i] ? k[i] : "";
		if (arena_put(o, v, strlen(v), &at))
			return NULL;
		r->ko[i] = at; /* r->k[i] once the arena stops moving */
	}
	r->has[s] = 1;
	o->n++;
	return r;
}

static int cmp_row(const void *pa, const void *pb)
{
	const cdr__bdrow *a = pa, *b = pb;
	for (int i = 0; i < CDR_BK_N; i++) {
		int c = strcmp(a->k[i], b->k[i]);
		if (c)
			return c;
	}
	return 0;
}

static i128 units(i128 micros, int decimals)
{
	return cdr__round_to_decimals(micros, decimals);
}

static void take_cb(void *ctx, const cdr__bucket *b, i128 credit)
{
	cdr__bd *bd = ctx;
	const cdr_tariff *t = bd->t;
	cdr__bdcell *c = cell_get(bd, cell_key(t->rates[b->rate_row].service,
					       t->rows[b->row].plan, b->zone,
					       band_ix(bd, b->band)));
	if (c)
		c->allow += credit;
	else
		bd->nin = UINT32_MAX; /* noted: out of memory */
}

int cdr__bd_credit(const cdr__acc *a)
{
	cdr__bd *bd = a->bd;
	if (cdr__bd_fold(bd))
		return -ENOMEM;
	/* A second call would credit twice: the credits are cleared first. */
	for (uint32_t i = 0; i < bd->cap; i++)
		bd->cells[i].allow = 0;
	uint32_t keep_nin = bd->nin;
	int rc = cdr__acc_takes(a, take_cb, bd);
	if (rc)
		return rc;
	if (bd->nin == UINT32_MAX)
		return -ENOMEM;
	bd->nin = keep_nin;
	bd->credited = 1;
	return 0;
}

/* One side's rows into o (as side s). */
static int side_rows(const cdr__bdside *sd, int s, const char *const *paths,
		     uint32_t nin, cdr__bdrows *o, const cdr__figures **figp,
		     size_t *nfigp)
{
	const cdr__acc *a = sd->acc;
	cdr__bd *bd = a->bd;
	const cdr_tariff *t = a->t;
	const int dec = t->decimals;
	int rc;
	if (!bd)
		return -EINVAL;
	if ((rc = cdr__bd_fold(bd)))
		return rc;
	/* The totals' allowance takes, credited to their cells, unless
	 * they are there already. */
	if (!bd->credited && (rc = cdr__bd_credit(a)))
		return rc;

	/* The totals file's columns, as printed, summed over accounts: the
	 * figures kept as the totals or the delta were made (or only their
	 * sums and largest totals), else made now (and kept). */
	i128 scale = 1;
	for (int i = dec; i < 6; i++)
		scale *= 10;
	i128 tot[7] = {0};
	if (!bd->fig && bd->has_figs) {
		*figp = bd->figs.top;
		*nfigp = bd->figs.ntop;
		o->naccts[s] = bd->figs.n;
		o->total[s] = bd->figs.sum[6];
		for (int c = 0; c < 7; c++)
			tot[c] = bd->figs.sum[c] / scale;
		goto cells;
	}
	if (!bd->fig) {
		cdr__figures *tmp;
		size_t ntmp;
		if ((rc = cdr__totals_figures(a, sd->per, &tmp, &ntmp)))
			return rc;
		free(tmp);
		if (!bd->fig)
			return -ENOMEM;
	}
	const cdr__figures *f = bd->fig;
	size_t nf = bd->nfig;
	*figp = f;
	*nfigp = nf;
	o->naccts[s] = nf;
	for (size_t i = 0; i < nf; i++)
		for (int c = 0; c < 7; c++)
			tot[c] += f[i].amt[c]; /* each a multiple of scale */
	o->total[s] = tot[6];
	for (int c = 0; c < 7; c++)
		tot[c] /= scale;

cells:;
	i128 cells_chg[CDR_NSVC] = {0}, cells_allow = 0;
	for (uint32_t i = 0; i < bd->cap; i++) {
		const cdr__bdcell *c = &bd->cells[i];
		if (!c->key || (!c->records && !c->qty && !c->charge && !c->allow))
			continue;
		uint32_t svc = (uint32_t)(c->key & 3) - 1;
		uint32_t band = (uint32_t)(c->key >> 2 & 0xff);
		uint32_t zone = (uint32_t)(c->key >> 10 & 0xffffff);
		uint32_t plan = (uint32_t)(c->key >> 34);
		const char *k[CDR_BK_N] = {
			"cell", svc_names[svc],
			plan < t->nplans ? t->plans[plan].name : "-",
			zone < t->nzones ? t->zone_names[zone] : "*",
			band < t->nbands ? t->band_names[band] : "*", NULL};
		cdr__bdrow *r = row_new(o, s, k);
		if (!r)
			return -ENOMEM;
		r->v[s][CDR_BV_RECORDS] = c->records;
		r->v[s][CDR_BV_LATE] = c->late;
		r->v[s][CDR_BV_QTY] = c->qty;
		r->v[s][CDR_BV_CHARGE] = units(c->charge, dec);
		r->v[s][CDR_BV_ALLOW] = units(c->allow, dec);
		cells_chg[svc] += r->v[s][CDR_BV_CHARGE];
		cells_allow += r->v[s][CDR_BV_ALLOW];
	}
	/* Rounding: the totals' columns less the cells' rounded sums. */
	for (int v = 0; v < CDR_NSVC; v++) {
		const char *k[CDR_BK_N] = {"rounding", svc_names[v], NULL, NULL,
					   NULL, NULL};
		cdr__bdrow *r = row_new(o, s, k);
		if (!r)
			return -ENOMEM;
		r->v[s][CDR_BV_CHARGE] = tot[v] - cells_chg[v];
	}
	{
		const char *k[CDR_BK_N] = {"rounding", "*", NULL, NULL, NULL, NULL};
		cdr__bdrow *r = row_new(o, s, k);
		if (!r)
			return -ENOMEM;
		r->v[s][CDR_BV_ALLOW] = tot[3] - cells_allow;
		const char *m[CDR_BK_N] = {"monthly", NULL, NULL, NULL, NULL, NULL};
		if (!(r = row_new(o, s, m)))
			return -ENOMEM;
		r->v[s][CDR_BV_RECURRING] = tot[4];
		r->v[s][CDR_BV_OUTAGE] = tot[5];
	}
	/* The hours of the period folded into hours of day and days (the
	 * bd is done with: this runs once, cdr__bd_rows being called once
	 * per run; a second call finds hp already folded and empty). */
	for (uint32_t hp = 0; hp < bd->nhp; hp++)
		for (uint32_t b = 0; b < bd->nband; b++) {
			size_t i = (size_t)hp * bd->nband + b;
			size_t hd = (size_t)(hp % 24) * bd->nband + b;
			bd->hour_rec[hd] += bd->hp_rec[i];
			bd->hour_chg[hd] += bd->hp_chg[i];
			bd->day_rec[hp / 24] += bd->hp_rec[i];
			bd->day_chg[hp / 24] += bd->hp_chg[i];
			bd->hp_rec[i] = 0;
			bd->hp_chg[i] = 0;
		}
	/* Local hour x band. */
	for (uint32_t h = 0; h < 24; h++)
		for (uint32_t b = 0; b < bd->nband; b++) {
			size_t i = (size_t)h * bd->nband + b;
			if (!bd->hour_rec[i] && !bd->hour_chg[i])
				continue;
			char hk[4];
			snprintf(hk, sizeof(hk), "%02u", h);
			const char *k[CDR_BK_N] = {
				"hour", NULL, NULL, NULL,
				b < t->nbands ? t->band_names[b] : "*", hk};
			cdr__bdrow *r = row_new(o, s, k);
			if (!r)
				return -ENOMEM;
			r->v[s][CDR_BV_RECORDS] = bd->hour_rec[i];
			r->v[s][CDR_BV_CHARGE] = units(bd->hour_chg[i], dec);
		}
	/* Local days of the period (and before it: late records). */
	for (int d = 0; d < CDR_BD_DAYS; d++) {
		if (!bd->day_rec[d] && !bd->day_chg[d])
			continue;
		char dk[48];
		if (d == CDR_BD_DAYS - 2) {
			snprintf(dk, sizeof(dk), "earlier");
		} else if (d == CDR_BD_DAYS - 1) {
			snprintf(dk, sizeof(dk), "later");
		} else {
			int64_t y;
			unsigned mo, da;
			cdr__civil_from_days(sd->per->first_day + d, &y, &mo, &da);
			snprintf(dk, sizeof(dk), "%04d-%02u-%02u", (int)y, mo, da);
		}
		const char *k[CDR_BK_N] = {"day", NULL, NULL, NULL, NULL, dk};
		cdr__bdrow *r = row_new(o, s, k);
		if (!r)
			return -ENOMEM;
		r->v[s][CDR_BV_RECORDS] = bd->day_rec[d];
		r->v[s][CDR_BV_CHARGE] = units(bd->day_chg[d], dec);
	}
	/* Rejects by reason (the run's final counts) and by input. */
	for (int c = 1; c < CDR_NREASON; c++) {
		if (!sd->by_reason[c])
			continue;
		const char *k[CDR_BK_N] = {"reject_reason", NULL, NULL, NULL,
					   NULL, cdr_reason_name(c)};
		cdr__bdrow *r = row_new(o, s, k);
		if (!r)
			return -ENOMEM;
		r->v[s][CDR_BV_RECORDS] = (i128)sd->by_reason[c];
	}
	for (uint32_t i = 0; i < nin && i < bd->nin; i++) {
		if (!bd->rej_in[i])
			continue;
		const char *k[CDR_BK_N] = {"reject_file", NULL, NULL, NULL,
					   NULL, paths[i]};
		cdr__bdrow *r = row_new(o, s, k);
		if (!r)
			return -ENOMEM;
		r->v[s][CDR_BV_RECORDS] = bd->rej_in[i];
	}
	return 0;
}

void cdr__bd_rows_free(cdr__bdrows *o)
{
	free(o->row);
	free(o->arena);
	memset(o, 0, sizeof(*o));
}

int cdr__bd_rows(const cdr__bdside *side, int nsides,
		 const char *const *paths, uint32_t nin, cdr__bdrows *o)
{
	memset(o, 0, sizeof(*o));
	o->sides = nsides;
	o->decimals = side[0].acc->t->decimals;
	o->currency = side[0].acc->t->currency;
	o->bd = side[0].acc->bd;
	o->year = side[0].per->year;
	o->month = side[0].per->month;
	int rc = 0;
	for (int s = 0; !rc && s < nsides; s++)
		rc = side_rows(&side[s], s, paths, nin, o, &o->fig[s],
			       &o->nfig[s]);
	if (rc) {
		cdr__bd_rows_free(o);
		return rc;
	}
	for (size_t i = 0; i < o->n; i++)
		for (int k = 0; k < CDR_BK_N; k++)
			o->row[i].k[k] = o->arena + o->row[i].ko[k];
	qsort(o->row, o->n, sizeof(*o->row), cmp_row);
	/* A rerate: rows of equal keys from the two sides become one. */
	size_t n = 0;
	for (size_t i = 0; i < o->n; i++) {
		if (n && !cmp_row(&o->row[n - 1], &o->row[i])) {
			cdr__bdrow *d = &o->row[n - 1], *r = &o->row[i];
			for (int s = 0; s < 2; s++)
				if (r->has[s]) {
					d->has[s] = 1;
					for (int v = 0; v < CDR_BV_N; v++)
						d->v[s][v] += r->v[s][v];
				}
		} else {
			o->row[n++] = o->row[i];
		}
	}
	o->n = n;
	return 0;
}

/* ---- CSV --------------------------------------------------------------- */

typedef struct sbuf {
	char *b;
	size_t n, cap;
	int oom;
} sbuf;

static char *sb_room(sbuf *s, size_t more)
{
	if (s->oom)
		return NULL;
	if (s->n + more > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->n + more)
			cap *= 2;
		char *b = realloc(s->b, cap);
		if (!b) {
			s->oom = 1;
			return NULL;
		}
		s->b = b;
		s->cap = cap;
	}
	return s->b + s->n;
}

static void sb_put(sbuf *s, const char *p, size_t n)
{
	char *o = sb_room(s, n);
	if (o) {
		memcpy(o, p, n);
		s->n += n;
	}
}

static void sb_puts(sbuf *s, const char *p)
{
	sb_put(s, p, strlen(p));
}

/* A CSV field: quoted (quotes doubled) when it holds , " or a line end. */
static void sb_field(sbuf *s, const char *p)
{
	if (!p[strcspn(p, ",\"\r\n")]) {
		sb_puts(s, p);
		return;
	}
	char *o = sb_room(s, 2 * strlen(p) + 2);
	if (!o)
		return;
	*o++ = '"';
	for (; *p; p++) {
		if (*p == '"')
			*o++ = '"';
		*o++ = *p;
	}
	*o++ = '"';
	s->n = (size_t)(o - s->b);
}

static void sb_num(sbuf *s, i128 v, int dec)
{
	char *o = sb_room(s, 48);
	if (o)
		s->n += cdr__fmt_scaled(o, v, dec);
}

static const char *const val_names[CDR_BV_N] = {
	"records",	    "late_records",	"quantity",    "charge",
	"allowance_credit", "recurring_charge", "outage_credit"};

int cdr__bd_csv(const cdr__bdrows *rows, char **buf, size_t *len)
{
	sbuf s = {0};
	sb_puts(&s, "table,service,plan,zone,band,key");
	for (int side = 0; side < rows->sides; side++)
		for (int v = 0; v < CDR_BV_N; v++) {
			sb_puts(&s, side ? ",old_" : ",");
			sb_puts(&s, val_names[v]);
		}
	sb_puts(&s, "\n");
	for (size_t i = 0; i < rows->n; i++) {
		const cdr__bdrow *r = &rows->row[i];
		for (int k = 0; k < CDR_BK_N; k++) {
			if (k)
				sb_puts(&s, ",");
			sb_field(&s, r->k[k]);
		}
		for (int side = 0; side < rows->sides; side++)
			for (int v = 0; v < CDR_BV_N; v++) {
				sb_puts(&s, ",");
				sb_num(&s, r->v[side][v],
				       v >= CDR_BV_CHARGE ? rows->decimals : 0);
			}
		sb_puts(&s, "\n");
	}
	if (s.oom) {
		free(s.b);
		return -ENOMEM;
	}
	*buf = s.b;
	*len = s.n;
	return 0;
}

int cdr__bd_render(cdr__bdrows *rows, char **csv, size_t *csv_len,
		   const char *const *summary, int nsummary, char **html,
		   size_t *html_len)
{
	int rc = csv ? cdr__bd_csv(rows, csv, csv_len) : 0;
	if (!rc && html) {
		rc = cdr__report_html(rows, summary, nsummary, html, html_len);
		if (rc && csv) {
			free(*csv);
			*csv = NULL;
		}
	}
	cdr__bd_rows_free(rows);
	return rc;
}
