/*
 * rate.c - price one parsed record under one tariff (contract steps 3-10).
 *
 * Pure function of (tariff, period, record): no state, no allocation, so
 * workers call it concurrently and the duplicate resolver can call it again
 * later to take a record's contribution back out exactly.
 *
 * Sections: period - start instant - billed quantity - split pricing - the
 * record.
 */
#include <assert.h>
#include <string.h>

#include "civil.h"
#include "internal.h"

#define UNIX_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

/* ---- period ---------------------------------------------------------- */

int cdr__period_init(cdr__period *p, const cdr_tariff *t, int year, int month)
{
	p->year = year;
	p->month = month;
	p->first_day = cdr__days_from_civil(year, (unsigned)month, 1);
	p->last_day = p->first_day +
		      cdr__days_in_month(year, (unsigned)month) - 1;
	p->start_utc = cdr__tz_local_to_utc(t->tz, p->first_day * 86400);
	p->end_utc = cdr__tz_local_to_utc(t->tz, (p->last_day + 1) * 86400);
	return 0;
}

/* ---- start instant --------------------------------------------------- */

int cdr__start_utc(const cdr_tariff *t, const cdr__rec *r, int64_t *utc)
{
	int64_t u = r->start;
	if (r->start_kind == CDR_START_LOCAL)
		u = cdr__tz_local_to_utc(t->tz, r->start);
	if (u < 0 || u > UNIX_MAX)
		return CDR_R_START;
	*utc = u;
	return CDR_OK;
}

/* ---- billed quantity ------------------------------------------------- */

static uint64_t billed(uint64_t d, const cdr__rate_row *rr)
{
	if (d == 0)
		return 0;
	if (d <= rr->first)
		return rr->first;
	uint64_t steps = (d - rr->first + rr->increment - 1) / rr->increment;
	return rr->first + steps * rr->increment;
}

/* ---- split pricing --------------------------------------------------- */

/*
 * Seconds per band. Every piece of one call in one band is priced at the
 * same rate row (rows are chosen by the record's start day), so a band is
 * the key: it tells the price and the allowance bucket alike, and there are
 * at most CDR_BAND_STAR bands. pos[] maps a band to its entry; only the
 * bands a call touches are ever initialised.
 */
static void acc_init(cdr__pieces *acc)
{
	acc->n = 0;
	memset(acc->pos, 0xff, sizeof(acc->pos));
}

static void acc_add_secs(cdr__pieces *acc, uint32_t row, unsigned band,
			 uint64_t secs)
{
	unsigned i = acc->pos[band];
	if (i == 0xff) {
		i = acc->n++;
		acc->pos[band] = (uint8_t)i;
		acc->band[i] = (uint8_t)band;
		acc->row[i] = row;
		acc->secs[i] = 0;
	}
	assert(acc->row[i] == row);
	acc->secs[i] += secs;
}

/* Walk [from, to) piece by piece: cut at band boundaries of the local
 * day and at offset changes; each piece at its band's row. */
static int walk_pieces(const cdr_tariff *t, uint32_t plan, uint32_t zone,
		       int64_t start_day, int64_t from, int64_t to,
		       cdr__pieces *acc)
{
	for (int64_t tt = from; tt < to;) {
		int64_t local = tt + cdr__tz_offset_at(t->tz, tt);
		int64_t day = cdr__floor_div(local, 86400);
		int64_t sod = local - day * 86400;
		unsigned dt = cdr__day_type(t, day);
		const cdr__band_seg *seg = t->segs[dt];
		while (sod >= (int64_t)seg->to_min * 60)
			seg++;
		int64_t piece_end =
			tt + (day * 86400 + (int64_t)seg->to_min * 60 - local);
		int64_t change = cdr__tz_next_change(t->tz, tt);
		if (change < piece_end)
			piece_end = change;
		if (to < piece_end)
			piece_end = to;
		int32_t row = cdr__rate_find(t, plan, CDR_VOICE, zone, seg->band,
					     start_day);
		if (row < 0)
			return -1;
		acc_add_secs(acc, (uint32_t)row, seg->band,
			     (uint64_t)(piece_end - tt));
		tt = piece_end;
	}
	return 0;
}

#define WEEK (7 * (int64_t)86400)

/*
 * The next instant after tt where the weekly band pattern may break: an
 * offset change, or the start or end of a holiday (local days; converted
 * with the offset at tt, exact because no offset change comes first).
 */
static int64_t next_irregular(const cdr_tariff *t, int64_t tt)
{
	int64_t change = cdr__tz_next_change(t->tz, tt);
	int32_t off = cdr__tz_offset_at(t->tz, tt);
	int64_t day = cdr__floor_div(tt + off, 86400);
	uint32_t a = 0, b = t->nholidays;
	while (a < b) { /* first holiday on or after the local day */
		uint32_t m = (a + b) / 2;
		if (t->holidays[m] < day)
			a = m + 1;
		else
			b = m;
	}
	int64_t h = INT64_MAX;
	if (a < t->nholidays)
		h = (t->holidays[a] == day ? day + 1 : t->holidays[a]) * 86400 -
		    off;
	return change < h ? change : h;
}

/*
 * Cut [utc, utc + q) at band boundaries (local time, so DST changes cut
 * too); each piece at its own band's row for the record's start day.
 * Calls may last up to 10^12 s (31,700 years): between offset changes and
 * holidays the bands repeat every week, so a long stretch is counted as one
 * walked week times the number of whole weeks (a fuzzed 10^12 s call took
 * 0.5 s piece by piece). Returns -1 when a piece's band has no rate.
 */
static int split_walk(const cdr_tariff *t, uint32_t plan, uint32_t zone,
		      int64_t start_day, int64_t utc, uint64_t q,
		      cdr__pieces *acc)
{
	const int64_t end = utc + (int64_t)q;

	acc_init(acc);
	for (int64_t tt = utc; tt < end;) {
		int64_t horizon = next_irregular(t, tt);
		if (horizon > end)
			horizon = end;
		if (horizon - tt < 3 * WEEK) {
			if (walk_pieces(t, plan, zone, start_day, tt, horizon,
					acc))
				return -1;
			tt = horizon;
			continue;
		}
		/* Whole weeks, keeping at least one to walk near the horizon. */
		int64_t weeks = (horizon - tt) / WEEK - 1;
		cdr__pieces wk;
		acc_init(&wk);
		if (walk_pieces(t, plan, zone, start_day, tt, tt + WEEK, &wk))
			return -1;
		for (unsigned i = 0; i < wk.n; i++)
			acc_add_secs(acc, wk.row[i], wk.band[i],
				     wk.secs[i] * (uint64_t)weeks);
		tt += weeks * WEEK;
	}
	return 0;
}

/*
 * The price of a split call: the exact rational sum over its bands, rounded
 * once: whole parts per band, and the remainders added over the common
 * multiple of the units (tariff.c keeps that multiple below 2^64; each
 * remainder term is below it, so 255 of them stay far inside 128 bits).
 */
static int split_charge(const cdr_tariff *t, uint32_t plan, uint32_t zone,
			int64_t start_day, int64_t utc, uint64_t q, u128 *out)
{
	cdr__pieces acc;
	if (split_walk(t, plan, zone, start_day, utc, q, &acc))
		return -1;

	u128 whole = 0, frac = 0;
	uint64_t l = 1;
	for (unsigned i = 0; i < acc.n; i++) {
		uint64_t u = t->rates[acc.row[i]].unit;
		assert(u >= 1); /* tariff.c refuses unit 0 */
		l = l / cdr__gcd(l, u) * u;
	}
	for (unsigned i = 0; i < acc.n; i++) {
		const cdr__rate_row *rr = &t->rates[acc.row[i]];
		u128 s = (u128)(uint64_t)rr->price_micros * acc.secs[i];
		whole += s / rr->unit;
		frac += (s % rr->unit) * (l / rr->unit);
	}
	whole += frac / l;
	if (2 * (frac % l) >= l) /* half up, once */
		whole++;
	*out = whole;
	return 0;
}

int cdr__split_pieces(const cdr_tariff *t, const cdr__rated *x,
		      cdr__pieces *out)
{
	assert(x->row >= 0 && x->service == CDR_VOICE);
	const int64_t utc = x->start_utc;
	int64_t local = utc + cdr__tz_offset_at(t->tz, utc);
	return split_walk(t, t->rows[x->row].plan, x->zone,
			  cdr__floor_div(local, 86400), utc, x->quantity, out);
}

/* ---- the record ------------------------------------------------------ */

void cdr__rate_record(const cdr_tariff *t, const cdr__period *p,
		      const cdr__rec *r, int64_t utc, cdr__rated *out)
{
	cdr__subhit hit;
	cdr__sub_find(t, r->sub, r->sub_len, cdr__sub_hash(r->sub, r->sub_len),
		      &hit);
	cdr__rate_record_hit(t, p, r, utc, &hit, out);
}

void cdr__rate_record_hit(const cdr_tariff *t, const cdr__period *p,
			  const cdr__rec *r, int64_t utc,
			  const cdr__subhit *hit, cdr__rated *out)
{
	out->service = r->service;
	out->late = 0;
	out->is_free = 0;
	out->has_pkgs = 0;
	out->row = -1;
	out->rate_row = -1;
	out->band = CDR_BAND_STAR;
	out->quantity = 0;
	out->start_utc = utc;
	out->charge_micros = 0;
	out->account = t->dash_account;

	if (utc >= p->end_utc) {
		out->reason = CDR_R_AFTER_PERIOD;
		return;
	}
	out->late = utc < p->start_utc;

	uint32_t zone = t->nzones; /* data records have zone `*` */
	if (r->service != CDR_DATA) {
		int32_t z = cdr__zone_lookup(t, r->dest, r->dest_len);
		if (z < 0) {
			out->reason = CDR_R_NO_ZONE;
			return;
		}
		zone = (uint32_t)z;
	}
	out->zone = zone;

	int64_t local = utc + cdr__tz_offset_at(t->tz, utc);
	int64_t day = cdr__floor_div(local, 86400);
	/* One row (the usual case): its fields came with the lookup. */
	int32_t row = -1;
	uint32_t plan = 0;
	if (hit->nrows == 1) {
		if (hit->from_day <= day && day <= hit->to_day) {
			row = (int32_t)hit->first;
			out->account = hit->account;
			plan = hit->plan;
			out->has_pkgs = hit->has_pkgs;
		}
	} else if ((row = cdr__row_in(t, hit->first, hit->nrows, day)) >= 0) {
		out->account = t->rows[row].account;
		plan = t->rows[row].plan;
		out->has_pkgs = t->rows[row].npkg != 0;
	}
	out->row = row;

	if (zone < t->nzones && t->zone_free[zone]) {
		/* Emergency numbers: free, and reachable from any line. */
		out->is_free = 1;
		out->reason = CDR_OK;
		return;
	}
	if (row < 0) {
		out->reason = hit->known ? CDR_R_INACTIVE
					 : CDR_R_UNKNOWN_SUBSCRIBER;
		return;
	}

	unsigned minute = (unsigned)((local - day * 86400) / 60);
	uint32_t band = t->minute_band[cdr__day_type(t, day)][minute];
	out->band = band;
	int32_t rr_i = cdr__rate_find(t, plan, r->service, zone, band, day);
	if (rr_i < 0) {
		out->reason = CDR_R_NO_RATE;
		return;
	}
	const cdr__rate_row *rr = &t->rates[rr_i];
	out->rate_row = rr_i;

	uint64_t d = r->service == CDR_VOICE ? r->duration
		     : r->service == CDR_SMS ? 1
					     : r->volume;
	uint64_t q = billed(d, rr);
	out->quantity = q;
	out->reason = CDR_OK;
	if (q == 0)
		return; /* nothing used: no connect fee either */

	u128 usage;
	if (t->band_split && r->service == CDR_VOICE) {
		if (split_charge(t, plan, zone, day, utc, q, &usage)) {
			out->reason = CDR_R_NO_RATE;
			return;
		}
	} else {
		u128 prod = (u128)(uint64_t)rr->price_micros * q;
		usage = cdr__div_round(prod, rr->unit);
	}
	out->charge_micros = (i128)usage + rr->connect_micros;
}
