/*
 * rate.c - price one parsed record under one tariff (contract steps 3-10).
 *
 * Pure function of (tariff, period, record): no state, no allocation, so
 * workers call it concurrently and the duplicate resolver can call it again
 * later to take a record's contribution back out exactly.
 *
 * Sections: period - start instant - billed quantity - split pricing
 * (seconds per band of a call, in time proportional to its DST changes
 * and holidays, not its pieces) - the record: the contract's steps, a
 * fast path for the usual record that falls back to them, and the batch
 * loop of the pass.
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
	const int64_t margin = (int64_t)CDR_PERIOD_MARGIN_DAYS * 86400;
	cdr__tz_win_init(&p->tzw, t->tz, p->start_utc - margin,
			 p->end_utc + margin);
	p->dt_first = p->first_day - CDR_PERIOD_MARGIN_DAYS;
	p->dt_n = (uint32_t)(p->last_day - p->first_day + 1 +
			     2 * (int64_t)CDR_PERIOD_MARGIN_DAYS);
	assert(p->dt_n <= sizeof(p->day_type));
	for (uint32_t i = 0; i < p->dt_n; i++)
		p->day_type[i] = (uint8_t)cdr__day_type(t, p->dt_first + i);
	p->dt_first_local = p->dt_first * 86400;
	/* One offset across the window (a zone without DST, or a month
	 * far from its changes): no search for instants inside it. */
	p->one_off_from = INT64_MAX;
	p->one_off = 0;
	if (p->tzw.end[0] == INT64_MAX) {
		assert(p->tzw.hi >= p->end_utc);
		p->one_off_from = p->tzw.lo;
		p->one_off = p->tzw.off[0];
	}
	/* The first stretch's local times whose instants are in range. */
	const int64_t o = p->tzw.off[0];
	int64_t lo = p->tzw.llo, hi = p->tzw.lhi;
	if (p->tzw.lend[0] < hi)
		hi = p->tzw.lend[0];
	if (lo < o)
		lo = o;
	if (hi > CDR_UNIX_MAX + o + 1)
		hi = CDR_UNIX_MAX + o + 1;
	p->ls_off = (int32_t)o;
	p->ls_lo = lo;
	p->ls_span = hi > lo ? (uint64_t)(hi - lo) : 0;
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

#define DAY ((int64_t)86400)
#define WEEK (7 * DAY)

/*
 * Seconds per band of a split call. Counts are signed while they are
 * summed: the sum below adds and takes away local intervals, and each
 * band's total comes out as its true count. `weeks` whole weeks of the
 * regular (no holiday) pattern are added once at the end.
 */
typedef struct band_secs {
	int64_t s[CDR_BAND_STAR];
	int64_t weeks;
} band_secs;

/*
 * Add sign x the seconds of local [a, b) to each band, every day taken as
 * a holiday or, when !holiday, as its weekday. Cost: the segments met,
 * the first of each day found by bisection.
 */
static void walk_local(const cdr_tariff *t, int64_t a, int64_t b, int holiday,
		       int64_t sign, band_secs *acc)
{
	while (a < b) {
		int64_t day = cdr__floor_div(a, DAY), base = day * DAY;
		unsigned dt = holiday ? CDR_HOLIDAY : cdr__weekday(day);
		const cdr__band_seg *seg = t->segs[dt];
		uint32_t lo = 0, hi = t->nsegs[dt] - 1, n = t->nsegs[dt];
		while (lo < hi) { /* first segment ending after a */
			uint32_t m = (lo + hi) / 2;
			if (base + (int64_t)seg[m].to_min * 60 > a)
				hi = m;
			else
				lo = m + 1;
		}
		for (uint32_t i = lo; i < n && a < b; i++) {
			int64_t e = base + (int64_t)seg[i].to_min * 60;
			if (e > b)
				e = b;
			acc->s[seg[i].band] += sign * (e - a);
			a = e;
		}
	}
}

/*
 * Add C(b) - C(a), where C(x) counts per band the seconds of the regular
 * weekly pattern from a fixed origin up to local x: whole weeks go to
 * acc->weeks, the rest (under a week) is walked. a > b subtracts.
 */
static void add_regular(const cdr_tariff *t, int64_t a, int64_t b,
			band_secs *acc)
{
	int64_t sign = 1;
	if (a > b) {
		int64_t x = a;
		a = b;
		b = x;
		sign = -1;
	}
	int64_t weeks = (b - a) / WEEK;
	acc->weeks += sign * weeks;
	walk_local(t, a + weeks * WEEK, b, 0, sign, acc);
}

/*
 * The next instant after tt (offset off there) where the weekly band
 * pattern may break: an offset change, or the start or end of a holiday
 * (local days; converted with off, exact because no offset change comes
 * first).
 */
static int64_t next_irregular(const cdr_tariff *t, int64_t tt, int32_t off)
{
	int64_t change = cdr__tz_next_change(t->tz, tt);
	if (!t->nholidays)
		return change;
	int64_t day = cdr__floor_div(tt + off, DAY);
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
		h = (t->holidays[a] == day ? day + 1 : t->holidays[a]) * DAY -
		    off;
	return change < h ? change : h;
}

/*
 * Cut [utc, utc + q) at band boundaries (local time, so DST changes
 * cut too); each band's seconds at that band's row for the record's start
 * day. Calls may last up to 10^12 s (31,700 years, some 63,000 DST
 * changes), so nothing here is per piece. Let C(x) count per band the
 * regular weekly pattern up to local time x. A stretch of constant offset
 * o over [u, v) holds C(v + o) - C(u + o); summed over the stretches this
 * telescopes into C over the whole call plus, at each offset change h
 * from o to o', C(h + o) - C(h + o'): the hour a DST change repeats or
 * skips. A stretch on a holiday adds the holiday pattern in place of the
 * weekday's. Cost: O(offset changes + holidays in the call + segments of
 * one week), where cutting piece by piece cost 1.7 s per 10^12 s call in
 * Europe/Berlin.
 *
 * The result is the billed seconds per band, each band with the rate row
 * that prices it (rows are chosen by the record's start day, so one band
 * has one row): split_charge prices them, and agg.c puts each band's
 * seconds in its own allowance bucket. Returns -1 when a band with seconds
 * in the call has no rate.
 */
static int split_walk(const cdr_tariff *t, uint32_t plan, uint32_t zone,
		      int64_t start_day, int64_t utc, uint64_t q,
		      cdr__pieces *out)
{
	band_secs acc;
	memset(acc.s, 0, t->nbands * sizeof(acc.s[0]));
	acc.weeks = 0;
	const int64_t end = utc + (int64_t)q;
	int32_t off = cdr__tz_offset_at(t->tz, utc);
	const int64_t first_local = utc + off;

	for (int64_t tt = utc;;) {
		int64_t h = next_irregular(t, tt, off);
		if (h > end)
			h = end;
		if (t->nholidays &&
		    cdr__day_type(t, cdr__floor_div(tt + off, DAY)) ==
			    CDR_HOLIDAY) {
			/* The stretch lies in one holiday: its pattern in
			 * place of the weekday's that C counts. */
			walk_local(t, tt + off, h + off, 1, 1, &acc);
			walk_local(t, tt + off, h + off, 0, -1, &acc);
		}
		if (h >= end)
			break;
		int32_t next = cdr__tz_offset_at(t->tz, h);
		if (next != off)
			add_regular(t, h + next, h + off, &acc);
		tt = h;
		off = next;
	}
	add_regular(t, first_local, end + off, &acc);

	if (acc.weeks) { /* the regular week's seconds per band */
		assert(acc.weeks > 0);
		for (unsigned d = 0; d < 7; d++)
			for (uint32_t i = 0; i < t->nsegs[d]; i++) {
				const cdr__band_seg *sg = &t->segs[d][i];
				acc.s[sg->band] += acc.weeks * 60 *
						   (sg->to_min - sg->from_min);
			}
	}

	/* The bands with seconds, at their rows: at most 254. */
	out->n = 0;
	for (uint32_t b = 0; b < t->nbands; b++) {
		assert(acc.s[b] >= 0);
		if (!acc.s[b])
			continue;
		int32_t r = cdr__rate_find(t, plan, CDR_VOICE, zone, b, start_day);
		if (r < 0)
			return -1;
		out->band[out->n] = (uint8_t)b;
		out->row[out->n] = (uint32_t)r;
		out->secs[out->n++] = (uint64_t)acc.s[b];
	}
	return 0;
}

/*
 * The price of a split call: the exact rational sum over its bands, rounded
 * once: whole parts per band, and the remainders added over the common
 * multiple of the units (tariff.c keeps that multiple below 2^64; each
 * remainder term is below it, so 254 of them stay far inside 128 bits).
 * Grouping by band rather than by row leaves the exact sum, hence the
 * rounding, unchanged.
 */
static int split_charge(const cdr_tariff *t, uint32_t plan, uint32_t zone,
			int64_t start_day, int64_t utc, uint64_t q, u128 *out)
{
	cdr__pieces pc;
	if (split_walk(t, plan, zone, start_day, utc, q, &pc))
		return -1;
	uint64_t l = 1;
	for (unsigned i = 0; i < pc.n; i++) {
		uint64_t u = t->rates[pc.row[i]].unit;
		assert(u >= 1); /* tariff.c refuses unit 0 */
		l = l / cdr__gcd(l, u) * u;
	}
	u128 whole = 0, frac = 0;
	for (unsigned i = 0; i < pc.n; i++) {
		const cdr__rate_row *rr = &t->rates[pc.row[i]];
		u128 s = (u128)(uint64_t)rr->price_micros * pc.secs[i];
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

/* The fields of a record not rated (yet): what a reject before the
 * rate leaves, and where the steps start. */
static inline void unrated(const cdr_tariff *t, unsigned svc, int64_t utc,
			   cdr__rated *out)
{
	out->service = (uint8_t)svc;
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
	out->zone = t->nzones;
}

/*
 * Every record the fast path below declines: the contract's steps in
 * order, each reject with the fields it leaves (itemize and rejects lines
 * and the breakdown read them).
 */
__attribute__((noinline)) void
cdr__rate_record_steps(const cdr_tariff *t, const cdr__period *p,
		       const cdr__rec *r, int64_t utc, const cdr__subhit *hit,
		       cdr__rated *out)
{
	unrated(t, r->service, utc, out);

	if (utc >= p->end_utc) {
		out->reason = CDR_R_AFTER_PERIOD;
		return;
	}
	out->late = utc < p->start_utc;

	uint32_t zone = t->nzones; /* data records have zone `*` */
	if (r->service != CDR_DATA) {
		int32_t z = cdr__zone_lookup_inline(t, r->dest, r->dest_len);
		if (z < 0) {
			out->reason = CDR_R_NO_ZONE;
			return;
		}
		zone = (uint32_t)z;
	}
	out->zone = zone;

	int64_t local = utc + cdr__tz_win_offset(&p->tzw, utc);
	int64_t day = cdr__floor_div(local, 86400);
	/* One row (the usual case): its fields came with the lookup. */
	int32_t row = -1;
	uint32_t plan = 0;
	if (hit->nrows == 1) {
		if (hit->from_day <= day && day <= hit->to_day) {
			row = (int32_t)hit->first;
			out->account = hit->account;
			plan = hit->plan;
			out->has_pkgs = (uint8_t)hit->has_pkgs; /* 0 or 1 */
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
		out->cell = UINT32_MAX; /* no rate row: no cell */
		out->reason = CDR_OK;
		return;
	}
	if (row < 0) {
		out->reason = hit->known ? CDR_R_INACTIVE
					 : CDR_R_UNKNOWN_SUBSCRIBER;
		return;
	}

	unsigned minute = (unsigned)((local - day * 86400) / 60);
	uint32_t band = t->minute_band[cdr__period_day_type(p, t, day)][minute];
	out->band = band;
	int32_t rr_i = cdr__rate_find_inline(t, plan, r->service, zone, band,
					     day, &out->cell);
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

/*
 * The usual record, priced in one go: in the period, a zone that is not
 * free, a row active that day, the day inside the period's tables, a
 * rate, something used, and a price times quantity within 64 bits.
 * Anything else (a reject, a free call, a split call, a product that
 * needs 128 bits) returns -1, and cdr__rate_record_steps decides the
 * record from the start, writing every field again; a number with no
 * row that day (unknown, or inactive: 6% of a package month's records)
 * is rejected here as the steps reject it, and returns 1. Both give the
 * same
 * fields for every record (tests/test_rate.c compares them record by
 * record), so this path only skips work and never changes a rule. A tariff
 * too big for the resolved cells finds its rates through the keys here
 * too. Fields are written as they are known, so that few values stay
 * live. Inline into both callers below: the call and its saved registers
 * cost about as much as the zone lookup.
 */
/* The fields the steps leave for a record in the period, in `zone`
 * (not free), whose number has no row that day. */
static __attribute__((noinline)) int
reject_rowless(const cdr_tariff *t, const cdr__period *p, unsigned svc,
	       int64_t utc, uint32_t zone, int reason, cdr__rated *out)
{
	unrated(t, svc, utc, out);
	out->late = utc < p->start_utc;
	out->zone = zone;
	out->reason = (uint8_t)reason;
	return 1;
}

static inline __attribute__((always_inline)) int
rate_fast(const cdr_tariff *t, const cdr__period *p, const cdr__rec *r,
	  int64_t utc, const cdr__subhit *hit, cdr__rated *out)
{
	const unsigned svc = r->service;
	if (utc >= p->end_utc || (svc == CDR_VOICE && t->band_split))
		return -1;
	uint32_t zone = t->nzones; /* data records have zone `*` */
	if (svc != CDR_DATA) {
		int32_t z = cdr__zone_lookup_inline(t, r->dest, r->dest_len);
		if (z < 0 || t->zone_free[z])
			return -1;
		zone = (uint32_t)z;
	}
	out->zone = zone;

	/* The local day as an index into the period's days: one unsigned
	 * division, where floor division takes a remainder and a fix-up. */
	const int64_t local =
		utc + (utc >= p->one_off_from ? p->one_off
					      : cdr__tz_win_offset(&p->tzw, utc));
	const uint64_t rel = (uint64_t)(local - p->dt_first_local);
	const uint64_t di = rel / 86400;
	if (di >= p->dt_n)
		return -1;
	const int64_t day = p->dt_first + (int64_t)di;

	uint32_t plan;
	if (hit->nrows == 1) {
		if (day < hit->from_day || day > hit->to_day)
			return reject_rowless(t, p, svc, utc, zone,
					      CDR_R_INACTIVE, out);
		out->row = (int32_t)hit->first;
		out->account = hit->account;
		out->has_pkgs = (uint8_t)hit->has_pkgs; /* 0 or 1 */
		plan = hit->plan;
	} else {
		if (!hit->nrows) /* not in the table */
			return reject_rowless(t, p, svc, utc, zone,
					      CDR_R_UNKNOWN_SUBSCRIBER, out);
		const int32_t row = cdr__row_in(t, hit->first, hit->nrows, day);
		if (row < 0)
			return reject_rowless(t, p, svc, utc, zone,
					      CDR_R_INACTIVE, out);
		const cdr__sub_row *sr = &t->rows[row];
		out->row = row;
		out->account = sr->account;
		out->has_pkgs = sr->npkg != 0;
		plan = sr->plan;
	}

	const unsigned minute = (unsigned)((rel - di * 86400) / 60);
	const uint32_t band = t->minute_band[p->day_type[di]][minute];
	out->band = band;
	const int32_t rr_i = cdr__rate_find_inline(t, plan, svc, zone, band, day,
						   &out->cell);
	if (rr_i < 0)
		return -1;
	out->rate_row = rr_i;
	const cdr__rate_row *rr = &t->rates[rr_i];
	const uint64_t d = svc == CDR_VOICE ? r->duration
			   : svc == CDR_SMS ? 1
					    : r->volume;
	if (d == 0)
		return -1;
	const uint64_t q = billed(d, rr);
	out->quantity = q;
	/* Half up in 64 bits when price x q and the half unit fit, and the
	 * charge with its connect fee in 63 (nearly always: a 0.25 price
	 * fits up to 7 x 10^13 billed units); 128 bits otherwise. The
	 * connect fee is never negative (cdr__parse_money). */
	const uint64_t unit = rr->unit, half = unit / 2;
	uint64_t prod;
	if (__builtin_mul_overflow((uint64_t)rr->price_micros, q, &prod) ||
	    prod > UINT64_MAX - half)
		return -1;
	const uint64_t usage = (prod + half) / unit;
	if (usage > (uint64_t)INT64_MAX - (uint64_t)rr->connect_micros)
		return -1;

	out->reason = CDR_OK;
	out->service = (uint8_t)svc;
	out->late = utc < p->start_utc;
	out->is_free = 0;
	out->start_utc = utc;
	out->charge_micros = (int64_t)usage + rr->connect_micros;
	return 0;
}

void cdr__rate_record_hit(const cdr_tariff *t, const cdr__period *p,
			  const cdr__rec *r, int64_t utc,
			  const cdr__subhit *hit, cdr__rated *out)
{
	if (rate_fast(t, p, r, utc, hit, out) < 0)
		cdr__rate_record_steps(t, p, r, utc, hit, out);
}

uint32_t cdr__rate_batch(const cdr_tariff *t, const cdr__period *p, int n,
			 uint32_t live, const cdr__rec *rec,
			 const int64_t *utc, const cdr__subhit *hit,
			 cdr__rated *x, const cdr__acct *acct)
{
	uint32_t ok = live; /* less the rejects, met on the slow path */
	for (int i = 0; i < n; i++) {
		if (!(live >> i & 1))
			continue;
		const size_t j = (size_t)i * CDR_SIDES;
		const int f = rate_fast(t, p, &rec[i], utc[j], &hit[j], &x[j]);
		if (f) {
			if (f < 0)
				cdr__rate_record_steps(t, p, &rec[i], utc[j],
						       &hit[j], &x[j]);
			if (x[j].reason != CDR_OK) {
				ok &= ~(1u << i);
				continue;
			}
		}
		__builtin_prefetch(&acct[x[j].account], 1);
	}
	return ok;
}
