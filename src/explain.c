/*
 * explain.c - `cdrate explain`: one record rated step by step (SPEC 5),
 * each step printed with what decided it.
 *
 * The record goes through the same functions a run uses - the format layer
 * to parse it, cdr__start_utc, the tariff's lookups, cdr__rate_record and
 * cdr__split_pieces for the price - so what is printed is what `rate`
 * does, not a second implementation of it. What a run never needs (which
 * zones.csv row matched, the dated rows of a rate key) is looked up here,
 * on the side; the final result is always cdr__rate_record's.
 *
 * Sections: printing helpers - the steps - the public entry point.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil.h"
#include "format.h"
#include "internal.h"
#include "run_int.h"

/* ---- printing helpers ------------------------------------------------ */

static const char *const svc_names[] = {"voice", "sms", "data"};
static const char *const day_type_names[CDR_NDAYTYPE] = {
	"Monday", "Tuesday", "Wednesday", "Thursday",
	"Friday", "Saturday", "Sunday", "a holiday"};

/* Micros with 6 decimals, into a static buffer per slot (0..3). */
static const char *micros6(int slot, i128 v)
{
	static char b[4][64];
	b[slot][cdr__fmt_scaled(b[slot], v, 6)] = '\0';
	return b[slot];
}

static const char *day_str(int slot, int64_t day)
{
	static char b[2][24];
	if (day == CDR_DAY_OPEN)
		return "(open)";
	if (day == CDR_DAY_NONE)
		return "(always)";
	b[slot][cdr__fmt_local(b[slot], day * 86400)] = '\0';
	b[slot][10] = '\0';
	return b[slot];
}

static const char *local_str(const cdr_tariff *t, int64_t utc)
{
	static char b[24];
	b[cdr__fmt_local(b, utc + cdr__tz_offset_at(t->tz, utc))] = '\0';
	return b;
}

static const char *utc_str(int64_t utc)
{
	static char b[24];
	b[cdr__fmt_local(b, utc)] = '\0';
	b[10] = 'T';
	return b;
}

static const char *zone_name(const cdr_tariff *t, int32_t z)
{
	return z < 0 || (uint32_t)z >= t->nzones ? "*" : t->zone_names[z];
}

static const char *band_name(const cdr_tariff *t, int32_t b)
{
	return b < 0 || (uint32_t)b >= t->nbands ? "*" : t->band_names[b];
}

/* ---- the steps ------------------------------------------------------- */

/* Step 4: the zones.csv row that decides the zone of d, as the trie walk
 * of cdr__zone_lookup finds it: the longest prefix, unless an `=number`
 * row names d exactly. */
static void explain_zone(const cdr_tariff *t, const char *d, size_t n,
			 FILE *out)
{
	const cdr__trie_node *tr = t->trie;
	uint32_t node = 0, best = 0;
	size_t depth = 0, i = 0;
	int found = tr[0].zone >= 0;
	for (; i < n; i++) {
		int s = d[i] >= '0' && d[i] <= '9' ? d[i] - '0'
			: d[i] == '*'		    ? 10
			: d[i] == '#'		    ? 11
						    : -1;
		int32_t c = s < 0 ? 0 : tr[node].child[s];
		if (!c)
			break;
		node = (uint32_t)c;
		if (tr[node].zone >= 0) {
			best = node;
			depth = i + 1;
			found = 1;
		}
	}
	if (i == n && tr[node].exact >= 0) {
		fprintf(out,
			"4. zone: %s, by the exact row =%.*s (zones.csv line "
			"%u), which beats every prefix\n",
			zone_name(t, tr[node].exact), (int)n, d,
			t->trie_line[2 * (size_t)node + 1]);
		return;
	}
	if (!found) {
		fprintf(out, "4. zone: no zones.csv prefix matches %.*s\n",
			(int)n, d);
		return;
	}
	fprintf(out,
		"4. zone: %s, by the longest matching prefix %.*s (zones.csv "
		"line %u)\n",
		zone_name(t, tr[best].zone), (int)depth, d,
		t->trie_line[2 * (size_t)best]);
}

static void print_row(const cdr_tariff *t, const cdr__sub_row *row,
		      const char *lead, FILE *out)
{
	fprintf(out, "%ssubscribers.csv line %u: account %s, plan %s, packages ",
		lead, row->line, t->accounts[row->account],
		t->plans[row->plan].name);
	if (!row->npkg)
		fputs("(none)", out);
	for (uint32_t i = 0; i < row->npkg; i++)
		fprintf(out, "%s%s", i ? ";" : "",
			t->packages[t->row_pkgs[row->first_pkg + i]].name);
	fprintf(out, ", active %s to %s\n", day_str(0, row->from_day),
		day_str(1, row->to_day));
}

static void print_rate(const cdr_tariff *t, const cdr__rate_row *rr,
		       FILE *out)
{
	fprintf(out,
		"   rates.csv line %u: plan %s, %s, zone %s, band %s, connect "
		"%s, price %s per %llu, first %llu, increment %llu, from %s\n",
		rr->line, t->plans[rr->plan].name, svc_names[rr->service],
		zone_name(t, rr->zone), band_name(t, rr->band),
		micros6(0, rr->connect_micros), micros6(1, rr->price_micros),
		(unsigned long long)rr->unit, (unsigned long long)rr->first,
		(unsigned long long)rr->increment, day_str(0, rr->from_day));
}

/* Steps 9 and 10 for a record rate.c priced (x). */
static void explain_price(const cdr_tariff *t, const cdr__rec *rec,
			  const cdr__rated *x, FILE *out)
{
	const cdr__rate_row *rr = &t->rates[x->rate_row];
	uint64_t d = rec->service == CDR_VOICE ? rec->duration
		     : rec->service == CDR_SMS ? 1
					       : rec->volume;
	const char *what = rec->service == CDR_VOICE ? "duration"
			   : rec->service == CDR_SMS ? "one message"
						     : "volume";
	unsigned long long dd = (unsigned long long)d;
	unsigned long long first = (unsigned long long)rr->first;
	unsigned long long inc = (unsigned long long)rr->increment;
	if (rec->service == CDR_SMS)
		fprintf(out, "9. quantity: %s, d = 1", what);
	else
		fprintf(out, "9. quantity: %s d = %llu", what, dd);
	if (d == 0)
		fputs(": d = 0 bills q = 0, no connect fee\n", out);
	else if (d <= rr->first)
		fprintf(out, " <= first %llu: q = %llu\n", first, first);
	else
		fprintf(out,
			" > first %llu: q = %llu + ceil((%llu - %llu) / %llu) "
			"x %llu = %llu\n",
			first, first, dd, first, inc, inc,
			(unsigned long long)x->quantity);
	if (x->quantity == 0) {
		fputs("10. charge: 0\n", out);
		return;
	}
	if (t->band_split && rec->service == CDR_VOICE) {
		cdr__pieces pc;
		fprintf(out,
			"10. charge (band_split = split): connect %s plus "
			"[start, start + %llu s) cut at band boundaries, each "
			"piece at its band's rate row:\n",
			micros6(0, rr->connect_micros),
			(unsigned long long)x->quantity);
		if (cdr__split_pieces(t, x, &pc) == 0)
			for (unsigned i = 0; i < pc.n; i++) {
				const cdr__rate_row *pr = &t->rates[pc.row[i]];
				u128 prod = (u128)(uint64_t)pr->price_micros *
					    pc.secs[i];
				fprintf(out,
					"   band %s: %llu s at rates.csv line %u: "
					"%s x %llu / %llu = %s\n",
					band_name(t, pc.band[i]),
					(unsigned long long)pc.secs[i], pr->line,
					micros6(0, pr->price_micros),
					(unsigned long long)pc.secs[i],
					(unsigned long long)pr->unit,
					micros6(1, (i128)cdr__div_round(
							   prod, pr->unit)));
			}
		fprintf(out,
			"   charge: the pieces' exact sum, rounded half up "
			"once, plus connect = %s\n",
			micros6(0, x->charge_micros));
		return;
	}
	fprintf(out, "10. charge: connect %s + %s x %llu / %llu = %s\n",
		micros6(0, rr->connect_micros), micros6(1, rr->price_micros),
		(unsigned long long)x->quantity, (unsigned long long)rr->unit,
		micros6(2, x->charge_micros));
}

/* ---- the public entry point ------------------------------------------- */

/* The native line of a query given field by field. */
static int query_line(const cdr_explain_query *q, char *b, size_t cap,
		      char *err, size_t errlen)
{
	if (!q->subscriber || !q->start || (!q->destination &&
					    (!q->service ||
					     strcmp(q->service, "data") != 0))) {
		snprintf(err, errlen,
			 "explain needs --line, or --subscriber, --destination "
			 "and --start");
		return -EINVAL;
	}
	int n = snprintf(b, cap, "explain,%s,%s,%s,%s,%s,%s", q->subscriber,
			 q->service ? q->service : "voice", q->start,
			 q->destination ? q->destination : "",
			 q->duration ? q->duration : "0",
			 q->volume ? q->volume : "0");
	if (n < 0 || (size_t)n >= cap) {
		snprintf(err, errlen, "explain: the record is too long");
		return -EINVAL;
	}
	return n;
}

static int reject(const cdr_tariff *t, const cdr__period *per,
		  const cdr__fmt *f, const char *p, size_t n, int reason,
		  const cdr__rec *rec, const cdr__rated *x, FILE *out)
{
	char d[CDR__DETAIL_MAX];
	size_t dn = cdr__reject_detail(d, sizeof(d), t, per, f, p, n, reason,
				       rec, x);
	fprintf(out, "result: rejected %s: %.*s\n", cdr_reason_name(reason),
		(int)dn, d);
	return 0;
}

int cdr_explain(const cdr_tariff *t, const cdr_explain_query *q, FILE *out,
		char *err, size_t errlen)
{
	char built[4096];
	const char *p = q->line;
	size_t n;
	int rc;
	if (p) {
		n = strlen(p);
		while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
			n--;
	} else {
		if ((rc = query_line(q, built, sizeof(built), err, errlen)) < 0)
			return rc;
		p = built;
		n = (size_t)rc;
	}
	if (n > CDR_LINE_MAX) {
		snprintf(err, errlen, "explain: a line of at most %zu bytes",
			 CDR_LINE_MAX);
		return -EINVAL;
	}
	int py = 0, pm = 0;
	const char *ps = q->period;
	if (ps && strlen(ps) == 7 && ps[4] == '-' &&
	    strspn(ps, "0123456789") == 4 && strspn(ps + 5, "0123456789") == 2) {
		py = (int)strtol(ps, NULL, 10);
		pm = (int)strtol(ps + 5, NULL, 10);
	}
	if (ps && (pm < 1 || pm > 12 || py < 1970 || py > 9999)) {
		snprintf(err, errlen, "bad --period '%s' (want YYYY-MM)",
			 q->period);
		return -EINVAL;
	}
	cdr__fmt f;
	char msg[CDR_ERR_MAX];
	if ((rc = cdr__fmt_head(&f, q->format, q->map, p, n, msg,
				sizeof(msg)))) {
		snprintf(err, errlen, "explain: %s", msg);
		return rc;
	}
	f.norm = t->norm;
	char *scratch = malloc(CDR__SCRATCH(n));
	if (!scratch) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	cdr__rec rec;
	cdr__rated x;
	cdr__period per;
	memset(&x, 0, sizeof(x));
	fprintf(out, "record: %.*s\n", (int)n, p);
	fprintf(out, "tariff: %s (timezone %s, band_split %s)\n", t->dir,
		cdr__tz_name(t->tz), t->band_split ? "split" : "start");
	int st = cdr__fmt_parse(&f, p, n, &rec, scratch, "explain", 1);
	if (st == CDR_OK)
		st = cdr__start_utc(t, &rec, &x.start_utc);
	if (!py) { /* the month of the start, or of nothing known */
		int64_t y = 1970;
		unsigned m = 1, dd;
		if (st == CDR_OK)
			cdr__civil_from_days(
				cdr__floor_div(x.start_utc + cdr__tz_offset_at(
							     t->tz, x.start_utc),
					       86400),
				&y, &m, &dd);
		py = (int)(y > 9999 ? 9999 : y);
		pm = (int)m;
	}
	cdr__period_init(&per, t, py, pm);
	if (st != CDR_OK) {
		fprintf(out, "1. parse (%s): the first bad field decides\n",
			cdr_format_name((cdr_format)f.kind));
		rc = reject(t, &per, &f, p, n, st, NULL, NULL, out);
		free(scratch);
		return rc;
	}
	fprintf(out,
		"1. parse (%s): id %.*s, subscriber %.*s, service %s, start %s "
		"local = %sZ (%lld), destination %.*s, duration %llu s, "
		"volume %llu bytes\n",
		cdr_format_name((cdr_format)f.kind), (int)rec.id_len, rec.id,
		(int)rec.sub_len, rec.sub, svc_names[rec.service],
		local_str(t, x.start_utc), utc_str(x.start_utc),
		(long long)x.start_utc, (int)rec.dest_len, rec.dest,
		(unsigned long long)rec.duration, (unsigned long long)rec.volume);
	if (t->norm)
		fputs("   (numbers as normalize.csv rewrote them, '+' dropped)\n",
		      out);
	fputs("2. duplicates: need the whole run; not checked here\n", out);

	cdr__rate_record(t, &per, &rec, x.start_utc, &x);
	int64_t local = x.start_utc + cdr__tz_offset_at(t->tz, x.start_utc);
	int64_t day = cdr__floor_div(local, 86400);
	fprintf(out, "3. period %04d-%02d: %s 00:00:00 to ", per.year,
		per.month, day_str(0, per.first_day));
	fprintf(out, "%s 24:00:00 local: the start is %s\n",
		day_str(0, per.last_day),
		x.start_utc >= per.end_utc   ? "after it"
		: x.start_utc < per.start_utc ? "before it (a late record, billed "
						"in this period)"
					      : "inside it");
	if (x.reason == CDR_R_AFTER_PERIOD)
		goto rejected;
	if (rec.service == CDR_DATA)
		fputs("4. zone: * (data records have no zone)\n", out);
	else
		explain_zone(t, rec.dest, rec.dest_len, out);
	if (x.reason == CDR_R_NO_ZONE)
		goto rejected;
	int is_free = x.zone < t->nzones && t->zone_free[x.zone];
	fprintf(out, "5. free zone: %s\n",
		is_free ? "yes, listed in free_zones: rated 0, quantity 0, band "
			  "*, from any line"
			: "no");

	cdr__subhit hit;
	cdr__sub_find(t, rec.sub, rec.sub_len,
		      cdr__sub_hash(rec.sub, rec.sub_len), &hit);
	if (x.row >= 0) {
		fprintf(out, "6. subscriber %.*s on %s: ", (int)rec.sub_len,
			rec.sub, day_str(1, day));
		print_row(t, &t->rows[x.row], "", out);
	} else {
		fprintf(out, "6. subscriber %.*s on %s: %s\n", (int)rec.sub_len,
			rec.sub, day_str(1, day),
			!hit.known ? "not in subscribers.csv"
				   : "no row active that day; its rows:");
		for (uint32_t i = 0; hit.known && i < hit.nrows && i < 20; i++)
			print_row(t, &t->rows[hit.first + i], "   ", out);
	}
	if (is_free) {
		fprintf(out, "result: rated, account %s, quantity 0, charge %s\n",
			t->accounts[x.account], micros6(0, 0));
		free(scratch);
		return 1;
	}
	if (x.reason == CDR_R_INACTIVE || x.reason == CDR_R_UNKNOWN_SUBSCRIBER)
		goto rejected;

	unsigned dt = cdr__day_type(t, day);
	unsigned minute = (unsigned)((local - day * 86400) / 60);
	fprintf(out, "7. band: %s (%s, %02u:%02u local, the first bands.csv "
		     "row that covers it)\n",
		band_name(t, (int32_t)x.band), day_type_names[dt], minute / 60,
		minute % 60);
	const cdr__sub_row *row = &t->rows[x.row];
	int32_t ri = cdr__rate_find(t, row->plan, rec.service, x.zone, x.band,
				    day);
	if (ri < 0) {
		fprintf(out,
			"8. rate: none for (plan %s, %s) under the keys (%s, %s), "
			"(%s, *), (*, %s), (*, *) from %s\n",
			t->plans[row->plan].name, svc_names[rec.service],
			zone_name(t, (int32_t)x.zone), band_name(t, (int32_t)x.band),
			zone_name(t, (int32_t)x.zone), band_name(t, (int32_t)x.band),
			day_str(0, day));
		goto rejected;
	}
	const cdr__rate_row *rr = &t->rates[ri];
	fprintf(out,
		"8. rate: key (%s, %s), the first of (zone, band), (zone, *), "
		"(*, band), (*, *) with a row from on or before %s:\n",
		zone_name(t, rr->zone), band_name(t, rr->band), day_str(0, day));
	print_rate(t, rr, out);
	if (x.reason != CDR_OK) { /* a split piece without a rate */
		fprintf(out, "9. quantity: %llu\n",
			(unsigned long long)x.quantity);
		goto rejected;
	}
	explain_price(t, &rec, &x, out);
	fprintf(out, "result: rated%s, account %s, quantity %llu, charge %s\n",
		x.late ? " (late)" : "", t->accounts[x.account],
		(unsigned long long)x.quantity, micros6(0, x.charge_micros));
	free(scratch);
	return 1;
rejected:
	rc = reject(t, &per, &f, p, n, x.reason, &rec, &x, out);
	free(scratch);
	return rc;
}
