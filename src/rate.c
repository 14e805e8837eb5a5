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

#define MAX_PIECE_ROWS 32

typedef struct piece_acc {
	uint32_t row[MAX_PIECE_ROWS];
	uint64_t secs[MAX_PIECE_ROWS];
	int n;
} piece_acc;

/* Add `secs` seconds at rate row `row`; -1 past MAX_PIECE_ROWS rows. */
static int acc_add_secs(piece_acc *acc, uint32_t row, uint64_t secs)
{
	int i = 0;
	while (i < acc->n && acc->row[i] != row)
		i++;
	if (i == acc->n) {
		if (acc->n == MAX_PIECE_ROWS)
			return -1; /* more distinct rows than bands */
		acc->row[acc->n] = row;
		acc->secs[acc->n++] = 0;
	}
	acc->secs[i] += secs;
	return 0;
}

/* Walk [from, to) piece by piece: cut at band boundaries of the local
 * day and at offset changes; each piece at its band's row. */
static int walk_pieces(const cdr_tariff *t, uint32_t plan, uint32_t zone,
		       int64_t start_day, int64_t from, int64_t to,
		       piece_acc *acc)
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
		if (row < 0 ||
		    acc_add_secs(acc, (uint32_t)row, (uint64_t)(piece_end - tt)))
			return -1;
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
 * Price [utc, utc + q) cut at band boundaries (local time, so DST changes
 * cut too); each piece at its own band's row for the record's start day.
 * Calls may last up to 10^12 s (31,700 years): between offset changes and
 * holidays the bands repeat every week, so a long stretch is priced as one
 * walked week times the number of whole weeks (a fuzzed 10^12 s call took
 * 0.5 s piece by piece). The exact rational sum is rounded once: whole
 * parts per row, and the remainders added over the common multiple of the
 * units (tariff.c keeps that multiple below 2^64). Returns -1 when a
 * piece's band has no rate.
 */
static int split_charge(const cdr_tariff *t, uint32_t plan, uint32_t zone,
			int64_t start_day, int64_t utc, uint64_t q, u128 *out)
{
	piece_acc acc = {.n = 0};
	const int64_t end = utc + (int64_t)q;

	for (int64_t tt = utc; tt < end;) {
		int64_t horizon = next_irregular(t, tt);
		if (horizon > end)
			horizon = end;
		if (horizon - tt < 3 * WEEK) {
			if (walk_pieces(t, plan, zone, start_day, tt, horizon,
					&acc))
				return -1;
			tt = horizon;
			continue;
		}
		/* Whole weeks, keeping at least one to walk near the horizon. */
		int64_t weeks = (horizon - tt) / WEEK - 1;
		piece_acc wk = {.n = 0};
		if (walk_pieces(t, plan, zone, start_day, tt, tt + WEEK, &wk))
			return -1;
		for (int i = 0; i < wk.n; i++)
			if (acc_add_secs(&acc, wk.row[i],
					 wk.secs[i] * (uint64_t)weeks))
				return -1;
		tt += weeks * WEEK;
	}

	u128 whole = 0, frac = 0;
	uint64_t l = 1;
	for (int i = 0; i < acc.n; i++) {
		uint64_t u = t->rates[acc.row[i]].unit;
		assert(u >= 1); /* tariff.c refuses unit 0 */
		l = l / cdr__gcd(l, u) * u;
	}
	for (int i = 0; i < acc.n; i++) {
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
