/*
 * test_agg.c - per-account sums (agg.c): 64-bit sums that spill into
 * 128 bits exactly when they would overflow (adding, taking back,
 * merging), and the totals line printed from them (monthly.c, totals.c);
 * a split call's allowance buckets (one per band piece, taken back
 * exactly) and outages cut at rows (SPEC 7). Figures worked out by hand
 * below.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

static cdr__rated voice(uint32_t account, uint64_t q, i128 charge)
{
	cdr__rated x;
	memset(&x, 0, sizeof(x));
	x.reason = CDR_OK;
	x.service = CDR_VOICE;
	x.account = account;
	x.row = 0;
	x.rate_row = -1; /* no allowance bucket */
	x.quantity = q;
	x.charge_micros = charge;
	return x;
}

Test(agg, sums_leave_64_bits_exactly)
{
	char err[CDR_ERR_MAX];
	char *dir = tu_tariff();
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	uint32_t a1 = 0;
	while (strcmp(t->accounts[a1], "A1"))
		a1++;
	cdr__period per;
	cdr__period_init(&per, t, 2026, 10);

	cdr__acc a, b;
	cr_assert_eq(cdr__acc_init(&a, t), 0);
	cr_assert_eq(cdr__acc_init(&b, t), 0);
	const i128 huge = (i128)1 << 100; /* a charge no int64 holds */
	const uint64_t q = (uint64_t)1 << 62;
	cdr__rated big = voice(a1, q, huge);
	cdr__rated small = voice(a1, 60, 150000);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(cdr__acc_add(&a, &big, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &small, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &big, -1), 0); /* a duplicate taken back */
	/* records 3; seconds 2 * 2^62 + 60 = 2^63 + 60 (past INT64_MAX) */
	cr_assert(cdr__acc_get(&a, a1, CDR_F_RECORDS) == 3);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_VOICE_S) ==
		  ((i128)1 << 63) + 60);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_VOICE_C) == 2 * huge + 150000);

	/* Another worker's sums, near INT64_MAX: merging must spill. */
	cdr__rated near = voice(a1, (uint64_t)INT64_MAX - 10, 5);
	cr_assert_eq(cdr__acc_add(&b, &near, 1), 0);
	cr_assert_eq(cdr__acc_merge(&a, &b), 0);
	/* seconds: 2^63 + 60 + 2^63 - 11 = 2^64 + 49 = 18446744073709551665
	 * charge: 2^101 + 150005 micros
	 *       = 2535301200456458802993406560757 micros
	 *       = 2535301200456458802993406.560757 -> .56 (2 places)
	 * total: that + 18.00 of m18's fee = ...3424.56 */
	char *buf;
	size_t len;
	cr_assert_eq(cdr__totals_render(&a, &per, &buf, &len), 0);
	const char *want =
		"A1,2026-10,4,0,18446744073709551665,0,0,"
		"2535301200456458802993406.56,0.00,0.00,0.00,18.00,0.00,"
		"2535301200456458802993424.56\n";
	const char *line = (const char *)memchr(buf, '\n', len) + 1;
	cr_assert_eq((size_t)(buf + len - line), strlen(want));
	cr_assert_eq(memcmp(line, want, strlen(want)), 0, "%.*s",
		     (int)(buf + len - line), line);
	free(buf);
	cdr__acc_fini(&a);
	cdr__acc_fini(&b);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/*
 * The pass adds a record in 64 bits when its four sums stay there and
 * starts over in 128 bits when any would not: sums that cross INT64_MAX
 * (upwards and, taking back, below INT64_MIN) and figures outside 64 bits
 * (units past INT64_MAX, a charge of INT64_MIN taken back) come out
 * exact, and a record that spills one sum adds each of the others once.
 */
Test(agg, sums_cross_int64_through_the_fast_path)
{
	char err[CDR_ERR_MAX];
	char *dir = tu_tariff();
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	uint32_t a1 = 0;
	while (strcmp(t->accounts[a1], "A1"))
		a1++;
	const uint32_t a2 = a1 ? 0 : 1;

	cdr__acc a;
	cr_assert_eq(cdr__acc_init(&a, t), 0);
	const int64_t near = INT64_MAX - 10;
	/* Seconds fit, the charge crosses INT64_MAX at the second add; the
	 * late count and the seconds must not be added twice. */
	cdr__rated x = voice(a1, 100, near);
	x.late = 1;
	cr_assert_eq(cdr__acc_add(&a, &x, 1), 0);
	cr_assert_null(a.wide, "nothing has left 64 bits yet");
	cr_assert_eq(cdr__acc_add(&a, &x, 1), 0);
	cr_assert_not_null(a.wide);
	cr_assert_eq(cdr__acc_add(&a, &x, 1), 0);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_RECORDS) == 3);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_LATE) == 3);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_VOICE_S) == 300);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_VOICE_C) == 3 * (i128)near);
	/* Taken back, one by one, down to nothing. */
	for (int k = 0; k < 3; k++)
		cr_assert_eq(cdr__acc_add(&a, &x, -1), 0);
	for (int f = 0; f < CDR_NF; f++)
		cr_assert(cdr__acc_get(&a, a1, f) == 0, "sum %d", f);

	/* Another account: units past INT64_MAX (never billed, but exact),
	 * SMS units and charges at their own sums. */
	cdr__rated u = voice(a2, UINT64_MAX, 7);
	cr_assert_eq(cdr__acc_add(&a, &u, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &u, 1), 0);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_VOICE_S) == 2 * (i128)UINT64_MAX);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_VOICE_C) == 14);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_RECORDS) == 2);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_LATE) == 0);
	cdr__rated sms = voice(a2, 3, 250000);
	sms.service = CDR_SMS;
	cr_assert_eq(cdr__acc_add(&a, &sms, 1), 0);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_SMS) == 3);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_SMS_C) == 250000);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_VOICE_S) == 2 * (i128)UINT64_MAX);
	cr_assert(cdr__acc_get(&a, a2, CDR_F_RECORDS) == 3);

	/* Take-backs below zero, past INT64_MIN: a charge of INT64_MIN
	 * negated is 2^63, which no int64 holds. */
	cdr__rated m = voice(a1, (uint64_t)INT64_MAX, INT64_MIN);
	m.service = CDR_DATA;
	cr_assert_eq(cdr__acc_add(&a, &m, -1), 0);
	cr_assert_eq(cdr__acc_add(&a, &m, -1), 0);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_RECORDS) == -2);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_DATA_B) == -2 * (i128)INT64_MAX);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_DATA_C) == (i128)1 << 64);
	cr_assert_eq(cdr__acc_add(&a, &m, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &m, 1), 0);
	for (int f = 0; f < CDR_NF; f++)
		cr_assert(cdr__acc_get(&a, a1, f) == 0, "sum %d", f);
	cdr__acc_fini(&a);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/* The buckets of an accumulator as cdr__acc_buckets hands them over. */
typedef struct bk_seen {
	cdr__bucket b[8];
	size_t n;
	uint32_t calls;
} bk_seen;

static int collect(void *ctx, uint32_t row, cdr__bucket *bk, size_t n)
{
	bk_seen *s = ctx;
	s->calls++;
	for (size_t i = 0; i < n && s->n < 8; i++) {
		cr_assert_eq(bk[i].row, row);
		s->b[s->n++] = bk[i];
	}
	return 0;
}

/* The bucket of (rate row, band), or NULL. */
static const cdr__bucket *bucket(const bk_seen *s, uint32_t rr, uint32_t b)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->b[i].rate_row == rr && s->b[i].band == b)
			return &s->b[i];
	return NULL;
}

static uint32_t band_named(const cdr_tariff *t, const char *name)
{
	uint32_t b = 0;
	while (strcmp(t->band_names[b], name))
		b++;
	return b;
}

static cdr__rated rate_line(const cdr_tariff *t, const cdr__period *p,
			    const char *line)
{
	cdr__rec r;
	cdr__rated x;
	int64_t utc;
	cr_assert_eq(cdr__parse_line(line, strlen(line), &r), CDR_OK, "%s", line);
	cr_assert_eq(cdr__start_utc(t, &r, &utc), CDR_OK, "%s", line);
	cdr__rate_record(t, p, &r, utc, &x);
	cr_assert_eq(x.reason, CDR_OK, "%s", line);
	return x;
}

/* The tariff of tests/e2e/cases/split-allowance, with one package. */
static char *split_tariff(void)
{
	char *dir = tu_tariff();
	tu_write(dir, "tariff.conf", "timezone = UTC\nband_split = split\n"
				     "proration = none\n");
	tu_write(dir, "bands.csv", "band,days,from,to\n"
				   "peak,mon-fri,08:00,20:00\n"
				   "idle,*,00:00,24:00\n");
	tu_write(dir, "zones.csv", "prefix,zone\n1,home\n2,all\n");
	tu_write(dir, "plans.csv", "plan,monthly_fee\nm,0\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m,voice,*,peak,0.1,0.6,60,60,60\n"
		 "m,voice,*,idle,0,0.12,60,60,60\n");
	tu_write(dir, "packages.csv",
		 "package,monthly_fee,service,zone,band,amount\n"
		 "night,0,voice,*,idle,600\n");
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "300,S,m,night,2026-01-01,\n");
	return dir;
}

Test(agg, split_call_fills_a_bucket_per_band_and_is_taken_back_exactly)
{
	char err[CDR_ERR_MAX];
	char *dir = split_tariff();
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cdr__period per;
	cdr__period_init(&per, t, 2026, 10);
	/* Mon 19:50, 1200 s: [19:50, 20:10) is 600 s peak (rates.csv line 2,
	 * index 0) and 600 s idle (line 3, index 1); charge 0.10 connect +
	 * 6.00 + 1.20 = 7.30. */
	cdr__rated x = rate_line(t, &per, "c1,300,voice,2026-10-12 19:50:00,"
					  "200,1200,0");
	cr_assert(x.charge_micros == 7300000);
	const uint32_t peak = band_named(t, "peak"), idle = band_named(t, "idle");

	cdr__acc a;
	cr_assert_eq(cdr__acc_init(&a, t), 0);
	cr_assert_eq(cdr__acc_add(&a, &x, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &x, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &x, -1), 0); /* a duplicate taken back */
	cr_assert_eq(a.bk_n, 6); /* two pieces a record, the take-back too */
	bk_seen seen = {0};
	cr_assert_eq(cdr__acc_buckets(&a, collect, &seen), 0);
	cr_assert_eq(seen.calls, 1);
	cr_assert_eq(seen.n, 2);
	const cdr__bucket *bp = bucket(&seen, 0, peak), *bi = bucket(&seen, 1, idle);
	cr_assert(bp && bp->units == 600);
	cr_assert(bi && bi->units == 600);
	cr_assert(bp == &seen.b[0], "the dearer bucket (peak) comes first");
	/* night takes only the idle piece: 0.12 x 600/60 = 1.20, not 6.00
	 * (600 s at the start band's peak price). voice 7.30, credit 1.20,
	 * total 6.10. */
	char *buf;
	size_t len;
	cr_assert_eq(cdr__totals_render(&a, &per, &buf, &len), 0);
	const char *want = "S,2026-10,1,0,1200,0,0,7.30,0.00,0.00,1.20,0.00,"
			   "0.00,6.10\n";
	const char *line = (const char *)memchr(buf, '\n', len) + 1;
	cr_assert_eq((size_t)(buf + len - line), strlen(want), "%.*s",
		     (int)(buf + len - line), line);
	cr_assert_eq(memcmp(line, want, strlen(want)), 0);
	free(buf);
	cr_assert_eq(cdr__acc_add(&a, &x, -1), 0);
	/* Every record taken back: the buckets are empty, so none is made. */
	seen = (bk_seen){0};
	cr_assert_eq(cdr__acc_buckets(&a, collect, &seen), 0);
	cr_assert_eq(seen.calls, 0);
	cr_assert_eq(seen.n, 0);
	cdr__acc_fini(&a);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

Test(agg, outage_parts_follow_the_rows)
{
	char err[CDR_ERR_MAX];
	char *dir = tu_tariff();
	tu_write(dir, "tariff.conf", "timezone = Asia/Shanghai\n"
				     "proration = none\ndecimals = 6\n");
	tu_write(dir, "plans.csv", "plan,monthly_fee\nm18,30\nm60,60\n");
	/* One number, three rows: a plan change on 10-11, disconnected after
	 * 10-20, back from 10-25 under another account. */
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "13800000001,A1,m18,,2025-01-01,2026-10-10\n"
		 "13800000001,A1,m60,,2026-10-11,2026-10-20\n"
		 "13800000001,B2,m18,,2026-10-25,\n");
	/* 10-10 18:00 .. 10-26 06:00 local (UTC+8) is cut at 10-11 00:00,
	 * 10-21 00:00 and 10-25 00:00: 6 h under row 1 -> 30 x 21600/2592000
	 * = 0.250000; 10 days under row 2 -> 60 x 10/30 = 20.000000 (its cap
	 * is its fee, 60); 4 days under no row -> nothing; 30 h under row 3
	 * -> 30 x 108000/2592000 = 1.250000. */
	tu_write(dir, "outages.csv", "subscriber,from,to\n"
				     "13800000001,2026-10-10 18:00:00,"
				     "2026-10-26 06:00:00\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cdr__period per;
	cdr__period_init(&per, t, 2026, 10);
	cdr__acc a;
	cr_assert_eq(cdr__acc_init(&a, t), 0);
	char *buf;
	size_t len;
	cr_assert_eq(cdr__totals_render(&a, &per, &buf, &len), 0);
	/* A1: rows 1 and 2 are a plan change, so daily: 30 x 10/31 =
	 * 9.677419 and 60 x 10/31 = 19.354839 (row 2's cap, below its 20.00
	 * of credit); recurring 29.032258, credit 0.25 + 19.354839 =
	 * 19.604839, total 9.427419. B2: a new account, installed on the 25th
	 * with proration none: 30, credit 1.25, total 28.75. */
	const char *want =
		"A1,2026-10,0,0,0,0,0,0.000000,0.000000,0.000000,0.000000,"
		"29.032258,19.604839,9.427419\n"
		"B2,2026-10,0,0,0,0,0,0.000000,0.000000,0.000000,0.000000,"
		"30.000000,1.250000,28.750000\n";
	const char *line = (const char *)memchr(buf, '\n', len) + 1;
	cr_assert_eq((size_t)(buf + len - line), strlen(want), "%.*s",
		     (int)(buf + len - line), line);
	cr_assert_eq(memcmp(line, want, strlen(want)), 0, "%.*s",
		     (int)(buf + len - line), line);
	free(buf);
	cdr__acc_fini(&a);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/*
 * The log: a record whose row has no allowance of its service makes no
 * entry; a row of many entries (past the insertion-sort size) is
 * coalesced through the index into the same buckets, in taking order.
 */
Test(agg, many_entries_of_a_row_coalesce_into_few_buckets)
{
	char err[CDR_ERR_MAX];
	char *dir = tu_tariff();
	tu_write(dir, "tariff.conf", "timezone = UTC\nproration = none\n");
	tu_write(dir, "bands.csv", "band,days,from,to\n"
				   "peak,mon-fri,08:00,20:00\n"
				   "idle,*,00:00,24:00\n");
	tu_write(dir, "zones.csv", "prefix,zone\n1,home\n2,away\n");
	tu_write(dir, "plans.csv", "plan,monthly_fee\nm,0\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m,voice,*,peak,0,0.6,60,60,60\n"
		 "m,voice,*,idle,0,0.12,60,60,60\n"
		 "m,sms,*,*,0,0.1,1,1,1\n");
	tu_write(dir, "packages.csv",
		 "package,monthly_fee,service,zone,band,amount\n"
		 "talk,0,voice,*,*,100000\n");
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "300,S,m,talk,2026-01-01,\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cdr__period per;
	cdr__period_init(&per, t, 2026, 10);
	cdr__acc a;
	cr_assert_eq(cdr__acc_init(&a, t), 0);
	cdr__rated sms = rate_line(t, &per, "s1,300,sms,2026-10-12 10:00:00,"
					    "100,0,0");
	cr_assert_eq(cdr__acc_add(&a, &sms, 1), 0);
	cr_assert_eq(a.bk_n, 0, "no allowance takes sms: no entry");
	/* 30 peak calls of 60 s to home, 50 idle of 120 s to away, one
	 * peak call taken back: 81 entries of one row, 2 buckets. */
	cdr__rated pk = rate_line(t, &per, "p,300,voice,2026-10-12 10:00:00,"
					   "100,60,0");
	cdr__rated id = rate_line(t, &per, "i,300,voice,2026-10-12 21:00:00,"
					   "200,120,0");
	for (int i = 0; i < 30; i++)
		cr_assert_eq(cdr__acc_add(&a, &pk, 1), 0);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(cdr__acc_add(&a, &id, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &pk, -1), 0);
	cr_assert_eq(a.bk_n, 81);
	bk_seen seen = {0};
	cr_assert_eq(cdr__acc_buckets(&a, collect, &seen), 0);
	cr_assert_eq(seen.calls, 1);
	cr_assert_eq(seen.n, 2);
	cr_assert_eq(seen.b[0].band, band_named(t, "peak"), "dearest first");
	cr_assert(seen.b[0].units == 29 * 60);
	cr_assert_eq(seen.b[1].band, band_named(t, "idle"));
	cr_assert(seen.b[1].units == 50 * 120);

	/* Sealed: the same buckets from 2 entries, no chunk left; an entry
	 * added after the seal (another take-back) still counts. */
	cr_assert_eq(cdr__acc_seal(&a), 0);
	cr_assert_eq(a.nchunks, 0);
	cr_assert_eq(a.bk_n, 2);
	bk_seen sealed = {0};
	cr_assert_eq(cdr__acc_buckets(&a, collect, &sealed), 0);
	cr_assert_eq(sealed.n, 2);
	cr_assert_eq(memcmp(sealed.b, seen.b, 2 * sizeof(seen.b[0])), 0);
	cr_assert_eq(cdr__acc_add(&a, &id, -1), 0);
	cr_assert_eq(a.bk_n, 3);
	sealed = (bk_seen){0};
	cr_assert_eq(cdr__acc_buckets(&a, collect, &sealed), 0);
	cr_assert_eq(sealed.n, 2);
	cr_assert(sealed.b[0].units == 29 * 60);
	cr_assert(sealed.b[1].units == 49 * 120);
	cr_assert_eq(cdr__acc_seal(&a), 0);
	cr_assert_eq(a.bk_n, 2);
	sealed = (bk_seen){0};
	cr_assert_eq(cdr__acc_buckets(&a, collect, &sealed), 0);
	cr_assert(sealed.b[1].units == 49 * 120);
	cdr__acc_fini(&a);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

static int bytes_of(void *ctx, uint32_t row, cdr__bucket *bk, size_t n)
{
	/* every bucket of every row, as text: compared between two runs */
	char **out = ctx;
	for (size_t i = 0; i < n; i++) {
		char line[128];
		int k = snprintf(line, sizeof(line), "%u,%u,%u,%u,%llu\n", row,
				 bk[i].rate_row, bk[i].zone, bk[i].band,
				 (unsigned long long)bk[i].units);
		size_t m = strlen(*out);
		*out = realloc(*out, m + (size_t)k + 1);
		cr_assert_not_null(*out);
		memcpy(*out + m, line, (size_t)k + 1);
	}
	return 0;
}

/*
 * The pass adds a batch at a time (cdr__acc_add_batch): the same sums,
 * log entries and buckets as adding its records one by one, whatever the
 * mask, across a full chunk of the log (more than CDR_BK_CHUNK entries),
 * with records that leave the fast path in the middle of a batch (a
 * charge past 64 bits, a late record, sms with no allowance), with the
 * start band and with split calls.
 */
Test(agg, a_batch_adds_what_its_records_add_one_by_one)
{
	static const char *const conf[2] = {
		"timezone = UTC\nproration = none\n",
		"timezone = UTC\nproration = none\nband_split = split\n"};
	for (int v = 0; v < 2; v++) {
		char err[CDR_ERR_MAX];
		char *dir = tu_tariff();
		tu_write(dir, "tariff.conf", conf[v]);
		tu_write(dir, "bands.csv", "band,days,from,to\n"
					   "peak,mon-fri,08:00,20:00\n"
					   "idle,*,00:00,24:00\n");
		tu_write(dir, "zones.csv", "prefix,zone\n1,home\n2,away\n");
		tu_write(dir, "plans.csv", "plan,monthly_fee\nm,0\n");
		tu_write(dir, "rates.csv",
			 "plan,service,zone,band,connect,price,unit,first,"
			 "increment\n"
			 "m,voice,*,peak,0,0.6,60,60,60\n"
			 "m,voice,*,idle,0,0.12,60,60,60\n"
			 "m,sms,*,*,0,0.1,1,1,1\n");
		tu_write(dir, "packages.csv",
			 "package,monthly_fee,service,zone,band,amount\n"
			 "talk,0,voice,*,*,100000\n");
		tu_write(dir, "subscribers.csv",
			 "subscriber,account,plan,packages,from,to\n"
			 "300,S,m,talk,2026-01-01,\n"
			 "301,T,m,,2026-01-01,\n");
		cdr_tariff *t = tu_load(dir, err);
		cr_assert_not_null(t, "%s", err);
		cdr__period per;
		cdr__period_init(&per, t, 2026, 10);
		const cdr__rated kinds[6] = {
			/* across 20:00: two pieces when split */
			rate_line(t, &per, "p,300,voice,2026-10-12 19:59:00,"
					   "100,120,0"),
			rate_line(t, &per, "i,300,voice,2026-10-12 21:00:00,"
					   "200,120,0"),
			rate_line(t, &per, "s,300,sms,2026-10-12 10:00:00,"
					   "100,0,0"),
			rate_line(t, &per, "l,300,voice,2026-09-30 23:00:00,"
					   "100,60,0"),
			rate_line(t, &per, "n,301,voice,2026-10-12 10:00:00,"
					   "100,60,0"),
			rate_line(t, &per, "h,300,voice,2026-10-13 10:00:00,"
					   "100,60,0"),
		};
		cr_assert(kinds[3].late);
		cdr__rated x[32][CDR_SIDES];
		memset(x, 0, sizeof(x));
		for (int i = 0; i < 32; i++)
			x[i][0] = kinds[i % 5];
		x[13][0] = kinds[5];
		x[13][0].charge_micros = (i128)1 << 70; /* leaves 64 bits */
		static const uint32_t masks[4] = {0xffffffffu, 0x5a5a5a5au,
						  0x80000001u, 0x00002000u};
		cdr__acc a, b;
		cr_assert_eq(cdr__acc_init(&a, t), 0);
		cr_assert_eq(cdr__acc_init(&b, t), 0);
		for (int round = 0; round < 16000; round++) {
			uint32_t m = masks[round % 4];
			cr_assert_eq(cdr__acc_add_batch(&a, &x[0][0], m), 0);
			for (int i = 0; i < 32; i++)
				if (m >> i & 1)
					cr_assert_eq(cdr__acc_add(&b, &x[i][0], 1),
						     0);
		}
		cr_assert_gt(a.bk_n, CDR_BK_CHUNK);
		cr_assert_eq(a.bk_n, b.bk_n);
		cr_assert_eq(a.nchunks, b.nchunks);
		cr_assert_not_null(a.wide);
		for (uint32_t i = 0; i < t->naccounts; i++)
			for (int f = 0; f < CDR_NF; f++)
				cr_assert(cdr__acc_get(&a, i, f) ==
					  cdr__acc_get(&b, i, f),
					  "account %u sum %d", i, f);
		char *ka = calloc(1, 1), *kb = calloc(1, 1);
		cr_assert_eq(cdr__acc_buckets(&a, bytes_of, &ka), 0);
		cr_assert_eq(cdr__acc_buckets(&b, bytes_of, &kb), 0);
		cr_assert_gt(strlen(ka), 0);
		cr_assert_str_eq(ka, kb);
		free(ka);
		free(kb);
		cdr__acc_fini(&a);
		cdr__acc_fini(&b);
		cdr_tariff_free(t);
		tu_rmdir(dir);
	}
}

/*
 * Monthly charges and totals by account ranges on two threads: the
 * same bytes and figures as one thread, whatever the cut (accounts with
 * buckets, fees, an outage, and one without a line on either side).
 */
Test(agg, two_threads_render_the_bytes_of_one)
{
	char err[CDR_ERR_MAX];
	char *dir = tu_tariff();
	tu_write(dir, "tariff.conf", "timezone = UTC\nproration = daily\n");
	tu_write(dir, "bands.csv", "band,days,from,to\n"
				   "peak,mon-fri,08:00,20:00\n"
				   "idle,*,00:00,24:00\n");
	tu_write(dir, "zones.csv", "prefix,zone\n1,home\n2,away\n");
	tu_write(dir, "plans.csv", "plan,monthly_fee\nm,10\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m,voice,*,peak,0,0.6,60,60,60\n"
		 "m,voice,*,idle,0,0.12,60,60,60\n"
		 "m,sms,*,*,0,0.1,1,1,1\n");
	tu_write(dir, "packages.csv",
		 "package,monthly_fee,service,zone,band,amount\n"
		 "talk,3,voice,*,*,90\n");
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "301,A,m,talk,2026-01-01,\n"
		 "302,B,m,,2026-10-05,\n"
		 "303,C,m,talk,2026-01-01,2026-10-10\n"
		 "304,C,m,talk,2026-10-11,\n"
		 "305,D,m,talk,2025-01-01,2025-12-31\n"
		 "306,E,m,talk,2026-01-01,\n");
	tu_write(dir, "outages.csv", "subscriber,from,to\n"
				     "306,2026-10-02 00:00:00,2026-10-03 00:00:00\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cdr__period per;
	cdr__period_init(&per, t, 2026, 10);
	cdr__acc a;
	cr_assert_eq(cdr__acc_init(&a, t), 0);
	static const char *const lines[] = {
		"1,301,voice,2026-10-12 10:00:00,100,70,0",
		"2,301,voice,2026-10-12 21:00:00,200,200,0",
		"3,302,sms,2026-10-12 10:00:00,100,0,0",
		"4,303,voice,2026-10-05 10:00:00,100,30,0",
		"5,304,voice,2026-10-20 10:00:00,200,300,0",
		"6,306,voice,2026-10-20 22:00:00,100,61,0",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		cdr__rated x = rate_line(t, &per, lines[i]);
		cr_assert_eq(cdr__acc_add(&a, &x, 1), 0);
	}
	char *one, *two;
	size_t n1, n2, f1n, f2n;
	cdr__figures *f1, *f2;
	a.threads = 1;
	cr_assert_eq(cdr__totals_render(&a, &per, &one, &n1), 0);
	cr_assert_eq(cdr__totals_figures(&a, &per, &f1, &f1n), 0);
	a.threads = 2;
	cr_assert_eq(cdr__totals_render(&a, &per, &two, &n2), 0);
	cr_assert_eq(cdr__totals_figures(&a, &per, &f2, &f2n), 0);
	cr_assert_eq(n1, n2);
	cr_assert_eq(memcmp(one, two, n1), 0, "%.*s\n---\n%.*s", (int)n1, one,
		     (int)n2, two);
	cr_assert_eq(f1n, 4, "A B C E (D: its row ended before the period): %zu",
		     f1n);
	cr_assert_eq(f2n, f1n);
	/* and sealed, at two threads: the same bytes again */
	char *three;
	size_t n3;
	cr_assert_eq(cdr__acc_seal(&a), 0);
	cr_assert_eq(cdr__totals_render(&a, &per, &three, &n3), 0);
	cr_assert_eq(n3, n1);
	cr_assert_eq(memcmp(one, three, n1), 0);
	free(three);
	for (size_t i = 0; i < f1n; i++) {
		cr_assert_str_eq(f1[i].acct, f2[i].acct);
		cr_assert_eq(memcmp(f1[i].amt, f2[i].amt, sizeof(f1[i].amt)), 0);
		cr_assert_eq(memcmp(f1[i].qty, f2[i].qty, sizeof(f1[i].qty)), 0);
	}
	/* A: 70 s peak billed 120 s (0.6/60 x 120 = 1.20), 200 s idle billed
	 * 240 s (0.48); talk's 90 s take peak first: 0.90. */
	const char *want = "A,2026-10,2,0,360,0,0,1.68,0.00,0.00,0.90,13.00,"
			   "0.00,13.78\n";
	const char *line = (const char *)memchr(one, '\n', n1) + 1;
	cr_assert_eq(memcmp(line, want, strlen(want)), 0, "%s", line);
	free(one);
	free(two);
	free(f1);
	free(f2);
	cdr__acc_fini(&a);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/*
 * The seal on two threads (two ranges of rows, the second moved down
 * behind the first): the same sealed log as on one, whatever the cut.
 */
Test(agg, two_threads_seal_the_log_of_one)
{
	char err[CDR_ERR_MAX];
	char *dir = tu_tariff();
	tu_write(dir, "tariff.conf", "timezone = UTC\n");
	tu_write(dir, "bands.csv", "band,days,from,to\n"
				   "peak,mon-fri,08:00,20:00\n"
				   "idle,*,00:00,24:00\n");
	tu_write(dir, "zones.csv", "prefix,zone\n1,home\n2,away\n");
	tu_write(dir, "plans.csv", "plan,monthly_fee\nm,10\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m,voice,home,*,0,0.3,60,60,60\n"
		 "m,voice,*,peak,0,0.6,60,60,60\n"
		 "m,voice,*,idle,0,0.12,60,60,60\n");
	tu_write(dir, "packages.csv",
		 "package,monthly_fee,service,zone,band,amount\n"
		 "talk,3,voice,*,*,90\n");
	char subs[4096] = "subscriber,account,plan,packages,from,to\n";
	for (int i = 0; i < 40; i++)
		snprintf(subs + strlen(subs), sizeof(subs) - strlen(subs),
			 "3%02d,A%d,m,talk,2026-01-01,\n", i, i % 7);
	tu_write(dir, "subscribers.csv", subs);
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cdr__period per;
	cdr__period_init(&per, t, 2026, 10);
	size_t min = cdr__seal_split_min;
	cdr__seal_split_min = 1;
	/* Rows with many entries and with few, each cut tried. */
	for (int cut = 0; cut < 6; cut++) {
		cdr__acc a1, a2;
		cr_assert_eq(cdr__acc_init(&a1, t), 0);
		cr_assert_eq(cdr__acc_init(&a2, t), 0);
		for (int n = 0; n < 400; n++) {
			char line[128];
			int sub = cut < 3 ? (n * 7 + cut) % 40 : (n % 5 == 0 ? 1 : (n + cut) % 40);
			snprintf(line, sizeof(line),
				 "%d,3%02d,voice,2026-10-%02d %02d:00:00,%d00,%d,0",
				 n, sub, 1 + n % 28, n % 24, 1 + n % 2, 30 + n % 200);
			cdr__rated x = rate_line(t, &per, line);
			cr_assert_eq(x.reason, CDR_OK, "%s", line);
			cr_assert_eq(cdr__acc_add(&a1, &x, 1), 0);
			cr_assert_eq(cdr__acc_add(&a2, &x, 1), 0);
			if (n % 9 == 0) { /* a duplicate taken back */
				cr_assert_eq(cdr__acc_add(&a1, &x, -1), 0);
				cr_assert_eq(cdr__acc_add(&a2, &x, -1), 0);
			}
		}
		a1.threads = 1;
		a2.threads = 2;
		cr_assert_eq(cdr__acc_seal(&a1), 0);
		cr_assert_eq(cdr__acc_seal(&a2), 0);
		cr_assert_not_null(a1.sealed_off);
		cr_assert_not_null(a2.sealed_off);
		cr_assert_eq(a1.sealed_n, a2.sealed_n);
		cr_assert_eq(memcmp(a1.sealed_off, a2.sealed_off,
				    ((size_t)t->nrows + 1) * sizeof(*a1.sealed_off)),
			     0);
		cr_assert_eq(memcmp(a1.sealed, a2.sealed,
				    a1.sealed_n * sizeof(*a1.sealed)),
			     0);
		char *one, *two;
		size_t n1, n2;
		cr_assert_eq(cdr__totals_render(&a1, &per, &one, &n1), 0);
		cr_assert_eq(cdr__totals_render(&a2, &per, &two, &n2), 0);
		cr_assert_eq(n1, n2);
		cr_assert_eq(memcmp(one, two, n1), 0);
		free(one);
		free(two);
		cdr__acc_fini(&a1);
		cdr__acc_fini(&a2);
	}
	cdr__seal_split_min = min;
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/* cdr__calloc_huge: zeroed, cache-line aligned, 2 MiB aligned when
 * large, writable to the last byte, and given back by cdr__free_huge. */
Test(agg, huge_tables_are_zeroed_aligned_and_freed)
{
	static const size_t sizes[] = {1, 64, 4096, ((size_t)4 << 20) - 1,
				       (size_t)4 << 20, ((size_t)9 << 20) + 7};
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			unsigned char *p = cdr__calloc_huge(n, 1);
			cr_assert_not_null(p);
			cr_assert_eq((uintptr_t)p % 64, 0);
			if (n >= ((size_t)4 << 20))
				cr_assert_eq((uintptr_t)p % ((size_t)2 << 20), 0);
			cr_assert_eq(p[0], 0);
			cr_assert_eq(p[n / 2], 0);
			cr_assert_eq(p[n - 1], 0);
			memset(p, 0xab, n);
			cdr__free_huge(p);
		}
	cr_assert_null(cdr__calloc_huge(SIZE_MAX / 2, 4), "overflow");
	cdr__free_huge(NULL);
}
