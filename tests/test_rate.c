/*
 * test_rate.c - rating one record (contract section 5): reasons in step
 * order, billed quantity, connect fee, free zones, late records, and split
 * pricing across band and DST boundaries with one rounding. Every figure
 * is worked out in the comment beside it.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "civil.h"
#include "internal.h"
#include "testutil.h"

static char err[CDR_ERR_MAX];
static char *dir;
static cdr_tariff *t;
static cdr__period per;

static void load(void)
{
	t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cdr__period_init(&per, t, 2026, 10);
}

static void setup(void)
{
	dir = tu_tariff();
}

static void teardown(void)
{
	cdr_tariff_free(t);
	t = NULL;
	tu_rmdir(dir);
}

static cdr__rated rate(const char *line)
{
	cdr__rec r;
	cdr__rated x;
	int64_t utc;
	memset(&x, 0, sizeof(x));
	cr_assert_eq(cdr__parse_line(line, strlen(line), &r), CDR_OK, "%s", line);
	cr_assert_eq(cdr__start_utc(t, &r, &utc), CDR_OK, "%s", line);
	/* The pass reads the zone through the period's window: same. */
	int64_t utc_p = 0;
	cr_assert_eq(cdr__period_start_utc(&per, &r, &utc_p), CDR_OK);
	cr_assert_eq(utc_p, utc, "%s", line);
	cdr__rate_record(t, &per, &r, utc, &x);
	return x;
}

#define MICROS(x) ((int64_t)(x.charge_micros))

TestSuite(rate, .init = setup, .fini = teardown);

Test(rate, billed_quantity_and_charge)
{
	load();
	/* 2026-10-12 is a Monday; 10:00 is peak: 0.15 per 60 s, first 60,
	 * increment 60. 61 s -> 120 s billed -> 0.30 = 300000 micros. */
	cdr__rated x = rate("a,13800000001,voice,2026-10-12 10:00:00,13900000000,61,0");
	cr_assert_eq(x.reason, CDR_OK);
	cr_assert_eq(x.quantity, 120);
	cr_assert_eq(MICROS(x), 300000);
	/* 1 s -> first = 60 s -> 0.15 */
	x = rate("a,13800000001,voice,2026-10-12 10:00:00,13900000000,1,0");
	cr_assert_eq(x.quantity, 60);
	cr_assert_eq(MICROS(x), 150000);
	/* 0 s -> nothing billed, no charge */
	x = rate("a,13800000001,voice,2026-10-12 10:00:00,13900000000,0,0");
	cr_assert_eq(x.reason, CDR_OK);
	cr_assert_eq(x.quantity, 0);
	cr_assert_eq(MICROS(x), 0);
	/* data: 0.0003 per 1024 bytes, first 1024, increment 1024.
	 * 1500 bytes -> 2048 -> 0.0006 = 600 micros */
	x = rate("a,13800000001,data,2026-10-12 10:00:00,,0,1500");
	cr_assert_eq(x.quantity, 2048);
	cr_assert_eq(MICROS(x), 600);
	/* sms counts 1 whatever the duration column says */
	x = rate("a,13800000001,sms,2026-10-12 10:00:00,13900000000,999,0");
	cr_assert_eq(x.quantity, 1);
	cr_assert_eq(MICROS(x), 100000);
}

Test(rate, connect_fee_and_rounding_half_up)
{
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,*,0.5,0.000007,2,1,1\n"
		 "m18,sms,*,*,0,0.1,1,1,1\n");
	load();
	/* 3 s * 7 micros / 2 = 10.5 micros -> 11; + 0.5 connect */
	cdr__rated x = rate("a,13800000001,voice,2026-10-12 10:00:00,13900000000,3,0");
	cr_assert_eq(MICROS(x), 500011);
	/* 1 s: 3.5 -> 4 */
	x = rate("a,13800000001,voice,2026-10-12 10:00:00,13900000000,1,0");
	cr_assert_eq(MICROS(x), 500004);
}

Test(rate, huge_products_do_not_overflow)
{
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,*,0,999999999.999999,1,1,1\n"
		 "m18,sms,*,*,0,0.1,1,1,1\n");
	load();
	/* (10^15 - 1) micros * (10^12 - 1) s = 999999999999998999999000000001
	 * micros: far beyond 2^64, exact in 128 bits. */
	cdr__rated x = rate("a,13800000001,voice,2026-10-12 10:00:00,13900000000,999999999999,0");
	cr_assert_eq(x.reason, CDR_OK);
	i128 want = (i128)999999999999999LL * 999999999999LL;
	cr_assert(x.charge_micros == want);
}

Test(rate, reasons_in_step_order)
{
	load();
	/* after the period beats no_zone and unknown subscriber */
	cr_assert_eq(rate("a,19999999999,voice,2026-11-01 00:00:00,999,1,0").reason,
		     CDR_R_AFTER_PERIOD);
	/* the period ends at 11-01 00:00 local (Asia/Shanghai) */
	cr_assert_eq(rate("a,13800000001,voice,2026-10-31T15:59:59Z,13900000000,1,0").reason,
		     CDR_OK);
	cr_assert_eq(rate("a,13800000001,voice,2026-10-31T16:00:00Z,13900000000,1,0").reason,
		     CDR_R_AFTER_PERIOD);
	/* no_zone beats unknown subscriber */
	cr_assert_eq(rate("a,19999999999,voice,2026-10-12 10:00:00,999,1,0").reason,
		     CDR_R_NO_ZONE);
	cr_assert_eq(rate("a,19999999999,voice,2026-10-12 10:00:00,13900000000,1,0").reason,
		     CDR_R_UNKNOWN_SUBSCRIBER);
	/* the number has a row, but it starts in 2025: inactive before */
	cr_assert_eq(rate("a,13800000001,voice,2024-12-31 23:59:59,13900000000,1,0").reason,
		     CDR_R_INACTIVE);
	/* no sms rate for the mobile zone under plan f25 */
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "13800000001,A1,f25,,2025-01-01,\n");
	cdr_tariff_free(t);
	load();
	cr_assert_eq(rate("a,13800000001,sms,2026-10-12 10:00:00,13900000000,0,0").reason,
		     CDR_R_NO_RATE);
}

Test(rate, free_zones_from_any_line)
{
	load();
	/* unknown number calling 110: rated 0 under account "-" */
	cdr__rated x = rate("a,19999999999,voice,2026-10-12 10:00:00,110,300,0");
	cr_assert_eq(x.reason, CDR_OK);
	cr_assert(x.is_free);
	cr_assert_eq(x.quantity, 0);
	cr_assert_eq(MICROS(x), 0);
	cr_assert_eq(x.band, CDR_BAND_STAR);
	cr_assert_str_eq(t->accounts[x.account], "-");
	/* an active number's call goes to its account */
	x = rate("a,13800000001,voice,2026-10-12 10:00:00,110,300,0");
	cr_assert_str_eq(t->accounts[x.account], "A1");
	/* 1100 is not 110 (=110 is exact): zone service, an ordinary call */
	x = rate("a,13800000001,voice,2026-10-12 10:00:00,1100,60,0");
	cr_assert(!x.is_free);
	cr_assert_eq(MICROS(x), 150000);
}

Test(rate, late_records)
{
	load();
	/* 09-30 23:59:59 local is before the period: late, still rated */
	cdr__rated x = rate("a,13800000001,voice,2026-09-30 23:59:59,13900000000,60,0");
	cr_assert_eq(x.reason, CDR_OK);
	cr_assert(x.late);
	x = rate("a,13800000001,voice,2026-10-01 00:00:00,13900000000,60,0");
	cr_assert(!x.late);
}

Test(rate, split_at_band_boundary)
{
	tu_write(dir, "tariff.conf",
		 "timezone = Asia/Shanghai\nband_split = split\n"
		 "free_zones = emergency\n");
	load();
	/* Monday 21:59:30, 100 s -> billed 120 s: [21:59:30, 22:01:30).
	 * 30 s peak at 0.15/60 = 0.075, 90 s idle at 0.06/60 = 0.09.
	 * Sum 0.165 = 165000 micros; the start band and row are peak. */
	cdr__rated x = rate("a,13800000001,voice,2026-10-12 21:59:30,13900000000,100,0");
	cr_assert_eq(x.quantity, 120);
	cr_assert_eq(MICROS(x), 165000);
	cr_assert_str_eq(t->band_names[x.band], "peak");
	/* band_split = start would charge all 120 s at peak: 0.30 */
}

Test(rate, split_rounds_once_over_mixed_units)
{
	tu_write(dir, "tariff.conf",
		 "timezone = UTC\nband_split = split\nfree_zones = emergency\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,peak,0,0.000001,3,1,1\n"
		 "m18,voice,*,idle,0,0.000001,7,1,1\n"
		 "m18,sms,*,*,0,0.1,1,1,1\n");
	load();
	/* Monday 07:59:57Z, 4 s: 3 s idle at 1 micro per 7 s, then 1 s
	 * peak at 1 micro per 3 s. Exact sum 3/7 + 1/3 = 16/21 = 0.76
	 * micros, rounded once -> 1. Rounding each piece would give 0. */
	cdr__rated x = rate("a,13800000001,voice,2026-10-12 07:59:57,13900000000,4,0");
	cr_assert_eq(x.quantity, 4);
	cr_assert_eq(MICROS(x), 1);
}

Test(rate, split_follows_dst_in_local_time)
{
	tu_write(dir, "tariff.conf",
		 "timezone = Europe/Berlin\nband_split = split\n"
		 "free_zones = emergency\n");
	tu_write(dir, "bands.csv",
		 "band,days,from,to\nnight,*,00:00,03:00\nday,*,03:00,24:00\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,night,0,0.06,60,1,1\n"
		 "m18,voice,*,day,0,0.6,60,1,1\n"
		 "m18,sms,*,*,0,0.1,1,1,1\n");
	load();
	cdr__period_init(&per, t, 2026, 3);
	/* 2026-03-29: clocks jump 02:00 CET -> 03:00 CEST (01:00Z). A 60 s
	 * call from 01:59:30 CET: 30 s night, then local 03:00:00 -> day.
	 * 30 * 0.06/60 + 30 * 0.6/60 = 0.03 + 0.30 = 0.33 */
	cdr__rated x = rate("a,13800000001,voice,2026-03-29 01:59:30,13900000000,60,0");
	cr_assert_eq(x.reason, CDR_OK);
	cr_assert_eq(MICROS(x), 330000);
	/* A naive time in the gap is shifted forward by the gap: 02:30 ->
	 * 03:30 CEST = 01:30Z, a day-band call: 60 s * 0.6/60 = 0.60 */
	x = rate("a,13800000001,voice,2026-03-29 02:30:00,13900000000,60,0");
	cr_assert_eq(MICROS(x), 600000);
	cr_assert_str_eq(t->band_names[x.band], "day");
}

Test(rate, fold_means_first_occurrence)
{
	tu_write(dir, "tariff.conf", "timezone = Europe/Berlin\nfree_zones = emergency\n");
	load();
	cdr__rec r;
	int64_t utc;
	const char *l = "a,13800000001,voice,2026-10-25 02:30:00,13900000000,60,0";
	cr_assert_eq(cdr__parse_line(l, strlen(l), &r), CDR_OK);
	cr_assert_eq(cdr__start_utc(t, &r, &utc), CDR_OK);
	/* 02:30 happens twice on 10-25; the first is CEST (+2): 00:30Z.
	 * 2026-10-25 00:00Z = 1792886400 */
	cr_assert_eq(utc, 1792886400LL + 1800);
}

Test(rate, long_split_calls_equal_the_sum_of_their_days)
{
	/* Prices in whole micros per second, so no rounding anywhere: a
	 * call's charge is additive over consecutive pieces of it. A call of
	 * three years (across DST changes and holidays, where the week-skip
	 * in split pricing must stop) must cost exactly what its 1096 day-long
	 * parts cost, each walked piece by piece. */
	tu_write(dir, "tariff.conf",
		 "timezone = Europe/Berlin\nband_split = split\n"
		 "free_zones = emergency\n");
	tu_write(dir, "bands.csv",
		 "band,days,from,to\nhol,holiday,00:00,24:00\n"
		 "peak,mon-fri,08:00,19:30\nidle,*,00:00,24:00\n");
	tu_write(dir, "holidays.csv",
		 "date,name\n2026-12-25,a\n2027-04-05,b\n2028-01-01,c\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,peak,0,0.000003,1,1,1\n"
		 "m18,voice,*,idle,0,0.000001,1,1,1\n"
		 "m18,voice,*,hol,0,0.000002,1,1,1\n"
		 "m18,sms,*,*,0,0.1,1,1,1\n");
	load();
	per.end_utc = INT64_MAX; /* the parts start after October */
	const int64_t start = 1790812800LL + 12345; /* 2026-10-01, 03:25:45Z */
	const int days = 1096;
	char line[256];
	snprintf(line, sizeof(line),
		 "a,13800000001,voice,%lld,13900000000,%lld,0",
		 (long long)start, (long long)days * 86400);
	cdr__rated whole = rate(line);
	cr_assert_eq(whole.reason, CDR_OK);
	i128 sum = 0;
	for (int d = 0; d < days; d++) {
		snprintf(line, sizeof(line),
			 "a,13800000001,voice,%lld,13900000000,86400,0",
			 (long long)(start + (int64_t)d * 86400));
		cdr__rated part = rate(line);
		cr_assert_eq(part.reason, CDR_OK);
		sum += part.charge_micros;
	}
	cr_assert(whole.charge_micros == sum, "whole %lld, parts %lld",
		  (long long)whole.charge_micros, (long long)sum);
}

/*
 * 253 five-minute bands and a rest band, each with its own rate: a day
 * has 254 bands with seconds. A table of 32 rows per call rejected it
 * no_rate. Band i costs 0.001 * (i + 1) per 60 s: 300 s of it is
 * 0.005 * (i + 1), 0.005 * 253 * 254 / 2 = 160.655 for the lot; the rest
 * is 86400 - 253 * 300 = 10500 s at 0.5 per 60 s = 87.5. Sum 248.155.
 */
Test(rate, split_with_254_bands_each_with_a_rate)
{
	char bands[16384], rates[16384];
	size_t bo = 0, ro = 0;
	tu_write(dir, "tariff.conf", "timezone = UTC\nband_split = split\n"
				     "free_zones = emergency\n");
	bo += (size_t)snprintf(bands + bo, sizeof(bands) - bo,
			       "band,days,from,to\n");
	ro += (size_t)snprintf(rates + ro, sizeof(rates) - ro,
			       "plan,service,zone,band,connect,price,unit,"
			       "first,increment\n");
	for (int i = 0; i < 253; i++) {
		int m = i * 5;
		bo += (size_t)snprintf(bands + bo, sizeof(bands) - bo,
				       "b%d,*,%02d:%02d,%02d:%02d\n", i, m / 60,
				       m % 60, (m + 5) / 60, (m + 5) % 60);
		ro += (size_t)snprintf(rates + ro, sizeof(rates) - ro,
				       "m18,voice,*,b%d,0,0.%03d,60,1,1\n", i,
				       i + 1);
	}
	snprintf(bands + bo, sizeof(bands) - bo, "rest,*,00:00,24:00\n");
	snprintf(rates + ro, sizeof(rates) - ro,
		 "m18,voice,*,rest,0,0.5,60,1,1\nm18,sms,*,*,0,0.1,1,1,1\n");
	tu_write(dir, "bands.csv", bands);
	tu_write(dir, "rates.csv", rates);
	load();
	cr_assert_eq(t->nbands, 254);
	cdr__rated x = rate("a,13800000001,voice,2026-10-05 00:00:00,13900000000,86400,0");
	cr_assert_eq(x.reason, CDR_OK);
	cr_assert_eq(MICROS(x), 248155000);
}

/*
 * Calls of 10^12 s (31,700 years, 63,000 DST changes in Europe/Berlin,
 * holidays on the way) cost 1.2 s each cut piece by piece; now a few ms.
 * The figures are what that piece-by-piece walk computed (cdrate rate
 * with decimals = 6 before the change), so the sum is unchanged to the
 * micro: calls starting on a weekday, just before a holiday, in the
 * spring gap and in the autumn fold. The hol band's unit 7 leaves
 * remainders, so the rounding once at the end is exercised too.
 */
Test(rate, dst_split_calls_cost_per_change_not_per_piece)
{
	tu_write(dir, "tariff.conf",
		 "timezone = Europe/Berlin\nband_split = split\n"
		 "free_zones = emergency\n");
	tu_write(dir, "bands.csv",
		 "band,days,from,to\nhol,holiday,00:00,24:00\n"
		 "peak,mon-fri,08:00,19:30\nidle,*,00:00,24:00\n");
	tu_write(dir, "holidays.csv", "date,name\n2026-12-25,a\n2027-04-05,b\n"
				      "2300-01-01,c\n9999-12-31,d\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,peak,0,0.000003,1,1,1\n"
		 "m18,voice,*,idle,0,0.000001,1,1,1\n"
		 "m18,voice,*,hol,0,0.000002,7,1,1\n"
		 "m18,sms,*,*,0,0.1,1,1,1\n");
	load();
	per.end_utc = INT64_MAX;
	static const struct {
		const char *line;
		int64_t micros;
	} c[] = {
		{"a,13800000001,voice,2026-10-05 10:00:00,139,999999999999,0",
		 1684523263540},
		{"a,13800000001,voice,2026-12-24 23:59:59,139,999999999998,0",
		 1684523250741},
		{"a,13800000001,voice,2026-03-29 01:59:30,139,999999987655,0",
		 1684523155598},
		{"a,13800000001,voice,2026-10-25 02:30:00,139,987654321098,0",
		 1663726597237},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		cdr__rated x = rate(c[i].line);
		cr_assert_eq(x.reason, CDR_OK);
		cr_assert_eq(MICROS(x), c[i].micros, "%s: %lld", c[i].line,
			     (long long)MICROS(x));
	}
}

/* The local start s resolved through the period as through the zone. */
static void start_agrees(const cdr__period *p, int64_t s, const char *zone)
{
	cdr__rec r;
	memset(&r, 0, sizeof(r));
	r.start_kind = CDR_START_LOCAL;
	r.start = s;
	int64_t a = -1, b = -1;
	cr_assert_eq(cdr__start_utc(t, &r, &a), cdr__period_start_utc(p, &r, &b));
	cr_assert_eq(a, b, "%s local %lld", zone, (long long)s);
}

/* The period's tables answer what the tariff does, inside and outside
 * their range: day types day by day, start instants every 997 s from 70
 * days before the period to 70 after (tests/test_tz.c holds the windows
 * of zones with DST to every second around their changes). */
Test(rate, period_tables_answer_as_the_tariff)
{
	load();
	cdr__period p;
	cdr__period_init(&p, t, 2026, 3);
	cr_assert_gt(p.dt_n, 31);
	for (int64_t d = p.dt_first - 40; d < p.dt_first + p.dt_n + 40; d++)
		cr_assert_eq(cdr__period_day_type(&p, t, d), cdr__day_type(t, d),
			     "day %lld", (long long)d);
	for (int64_t s = p.start_utc - 70LL * 86400; s < p.end_utc + 70LL * 86400;
	     s += 997)
		start_agrees(&p, s, "");
}

/* The period's first-stretch shortcut for local starts (ls_lo, ls_span,
 * ls_off) answers as the tariff's zone does, second by second either side
 * of both its edges, in zones with and without DST and months with and
 * without a change. */
Test(rate, period_start_shortcut_edges)
{
	static const char *const zones[] = {"Asia/Shanghai", "Europe/Berlin",
					    "America/New_York", "UTC"};
	static const int months[] = {3, 10, 11, 7};
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		char conf[128];
		snprintf(conf, sizeof(conf), "timezone = %s\n", zones[z]);
		tu_write(dir, "tariff.conf", conf);
		cdr_tariff_free(t);
		t = tu_load(dir, err);
		cr_assert_not_null(t, "%s", err);
		for (size_t m = 0; m < sizeof(months) / sizeof(months[0]); m++) {
			cdr__period p;
			cdr__period_init(&p, t, 2026, months[m]);
			cr_assert_gt(p.ls_span, 0, "%s", zones[z]);
			const int64_t edge[2] = {p.ls_lo,
						 p.ls_lo + (int64_t)p.ls_span};
			for (int e = 0; e < 2; e++)
				for (int64_t s = edge[e] - 4000;
				     s < edge[e] + 4000; s++)
					start_agrees(&p, s, zones[z]);
		}
	}
}

/*
 * rate.c prices the usual record on a fast path and leaves the rest to
 * the contract's steps (cdr__rate_record_steps): both must give the same
 * fields for every record. A grid of records under a tariff built to
 * reach every way off the fast path: dated rows (a cell with a timeline),
 * connect fees, a price whose product passes 64 bits, free zones, a
 * number with two rows and a gap, an unknown number, a zone with one
 * offset (Asia/Shanghai) and one with a DST change in the month
 * (Europe/Berlin), starts from far before the period to after it, and
 * quantities from 0 to 10^12.
 */
static void fast_path_agrees(const char *conf, int month)
{
	tu_write(dir, "tariff.conf", conf);
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment,from\n"
		 "m18,voice,*,peak,0,0.15,60,60,60,\n"
		 "m18,voice,*,peak,0.5,0.25,60,60,60,2026-10-15\n"
		 "m18,voice,*,idle,0,0.06,60,60,60,\n"
		 "m18,voice,mobile,*,0,999999999.999999,1,1,1,2026-03-20\n"
		 "m18,sms,*,*,0,0.1,1,1,1,\n"
		 "m18,data,*,*,0.01,0.0003,1000,1024,1024,\n"
		 "f25,voice,*,*,0,0.19,7,30,6,\n"
		 "f25,sms,national,*,0,0.2,1,1,1,\n");
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "13800000001,A1,m18,,2025-01-01,\n"
		 "13800000002,A2,m18,,2026-01-01,2026-03-10\n"
		 "13800000002,A2,f25,,2026-03-20,2026-10-09\n"
		 "13800000002,A3,m18,,2026-10-12,\n"
		 "13800000003,A4,f25,,2026-10-05,2026-10-20\n");
	load();
	cdr__period_init(&per, t, 2026, month);
	static const char *const subs[] = {"13800000001", "13800000002",
					   "13800000003", "13800000009"};
	static const char *const dests[] = {
		"01062345678", "02161234567", "13912345678", "110", "1100",
		"99",	       "*#06#",	      "0",	     "1391"};
	static const char *const svcs[] = {"voice", "sms", "data"};
	static const char *const qty[] = {"0", "1", "59", "61", "3600",
					  "999999999999"};
	const int64_t p0 = per.start_utc;
	const int64_t starts[] = {
		p0 - 200LL * 86400, p0 - 63LL * 86400 + 3599, p0 - 3600, p0,
		p0 + 9LL * 86400 + 8 * 3600 - 1, p0 + 14LL * 86400 + 36000,
		p0 + 24LL * 86400 + 3600 + 1800, per.end_utc - 1, per.end_utc,
		per.end_utc + 86400};
	size_t fast = 0, n = 0;
	for (size_t a = 0; a < sizeof(subs) / sizeof(subs[0]); a++)
		for (size_t b = 0; b < sizeof(dests) / sizeof(dests[0]); b++)
			for (size_t c = 0; c < 3; c++)
				for (size_t d = 0; d < sizeof(qty) / sizeof(qty[0]); d++)
					for (size_t e = 0; e < sizeof(starts) / sizeof(starts[0]); e++) {
		char line[256], when[64];
		int64_t s = starts[e] + (int64_t)(a * 977 + b * 61 + d * 7);
		int64_t loc = s + cdr__tz_offset_at(t->tz, s), yr;
		int64_t day = cdr__floor_div(loc, 86400), sec = loc - day * 86400;
		unsigned mo, dd;
		cdr__civil_from_days(day, &yr, &mo, &dd);
		snprintf(when, sizeof(when), "%04lld-%02u-%02u %02d:%02d:%02d",
			 (long long)yr, mo, dd, (int)(sec / 3600),
			 (int)(sec / 60 % 60), (int)(sec % 60));
		snprintf(line, sizeof(line), "id%zu,%s,%s,%s,%s,%s,%s", n, subs[a],
			 svcs[c], when, c == 2 ? "cmnet" : dests[b],
			 c == 2 ? "0" : qty[d], c == 2 ? qty[d] : "0");
		cdr__rec r;
		cr_assert_eq(cdr__parse_line(line, strlen(line), &r), CDR_OK, "%s", line);
		int64_t utc;
		if (cdr__period_start_utc(&per, &r, &utc) != CDR_OK)
			continue;
		cdr__subhit hit;
		cdr__sub_find(t, r.sub, r.sub_len, cdr__sub_hash(r.sub, r.sub_len), &hit);
		cdr__rated x, y;
		memset(&x, 0xA5, sizeof(x));
		memset(&y, 0x5A, sizeof(y));
		cdr__rate_record_hit(t, &per, &r, utc, &hit, &x);
		cdr__rate_record_steps(t, &per, &r, utc, &hit, &y);
		cr_assert_eq(x.reason, y.reason, "%s", line);
		cr_assert_eq(x.service, y.service, "%s", line);
		cr_assert_eq(x.late, y.late, "%s", line);
		cr_assert_eq(x.is_free, y.is_free, "%s", line);
		cr_assert_eq(x.has_pkgs, y.has_pkgs, "%s", line);
		cr_assert_eq(x.account, y.account, "%s", line);
		cr_assert_eq(x.row, y.row, "%s", line);
		cr_assert_eq(x.rate_row, y.rate_row, "%s", line);
		cr_assert_eq(x.zone, y.zone, "%s", line);
		cr_assert_eq(x.band, y.band, "%s", line);
		cr_assert_eq(x.quantity, y.quantity, "%s", line);
		cr_assert_eq(x.start_utc, y.start_utc, "%s", line);
		cr_assert(x.charge_micros == y.charge_micros, "%s", line);
		/* the batch gives the same as one record at a time */
		cdr__acct acct[8];
		cdr__rated z[2];
		memset(z, 0x33, sizeof(z));
		const uint32_t ok =
			cdr__rate_batch(t, &per, 1, 1, &r, &utc, &hit, z, acct);
		cr_assert_eq(z[0].reason, y.reason, "%s", line);
		cr_assert_eq(ok, y.reason == CDR_OK ? 1u : 0u, "%s", line);
		cr_assert(z[0].charge_micros == y.charge_micros, "%s", line);
		cr_assert_eq(z[0].rate_row, y.rate_row, "%s", line);
		fast += y.reason == CDR_OK && !y.is_free && y.quantity;
		n++;
	}
	cr_assert_gt(n, 2000);
	cr_assert_gt(fast, 200); /* the fast path itself was exercised */
}

Test(rate, fast_path_agrees_with_the_steps)
{
	fast_path_agrees(T_CONF, 10);
	cdr_tariff_free(t);
	t = NULL;
	fast_path_agrees("timezone = Europe/Berlin\nfree_zones = emergency\n", 10);
	cdr_tariff_free(t);
	t = NULL;
	fast_path_agrees("timezone = Europe/Berlin\nfree_zones = emergency\n", 3);
	cdr_tariff_free(t);
	t = NULL;
	fast_path_agrees("timezone = UTC\nband_split = split\n"
			 "free_zones = emergency\n", 10);
}
