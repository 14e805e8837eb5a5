/*
 * test_tariff.c - the tariff loader's lookups: zones by longest prefix and
 * `=exact`, band tables with day lists and holidays, the rate fallback
 * order with dated rows, subscriber rows, and load errors that name file,
 * line and column. Limits (line length, NUL bytes, prefix length) and
 * loads whose cost must follow the rows written (200k holidays, 20k dated
 * rows of one key, 100 plans x 1,000 zones x 202 bands) are here too:
 * before, the last three took seconds to minutes, so a regression shows
 * as a slow suite.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "civil.h"
#include "internal.h"
#include "testutil.h"

static char err[CDR_ERR_MAX];

static const char *zone(const cdr_tariff *t, const char *num)
{
	int32_t z = cdr__zone_lookup(t, num, strlen(num));
	return z < 0 ? "(none)" : t->zone_names[z];
}

Test(tariff, zones_longest_prefix_and_exact)
{
	char *dir = tu_tariff();
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_str_eq(zone(t, "01062345678"), "beijing"); /* 010 beats 0 */
	cr_assert_str_eq(zone(t, "02161234567"), "national");
	cr_assert_str_eq(zone(t, "13912345678"), "mobile");
	cr_assert_str_eq(zone(t, "110"), "emergency"); /* =110 beats 11 */
	cr_assert_str_eq(zone(t, "1100"), "service");  /* =110 is exact */
	cr_assert_str_eq(zone(t, "11"), "service");
	cr_assert_str_eq(zone(t, "*#06#"), "code");   /* literal * and # */
	cr_assert_str_eq(zone(t, "99"), "(none)");
	cr_assert_str_eq(zone(t, "*"), "(none)");
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/*
 * The zone table over the first four digits must answer as the trie walk
 * does: number by number over every number of up to five digits (and
 * with '*' or '#' among the first four), every prefix and `=number` of
 * the tariff with each character after it, and longer numbers drawn at
 * random. Returns the numbers checked.
 */
static size_t zones_agree(const cdr_tariff *t, const char *const *pfx,
			  size_t npfx, unsigned seed)
{
	static const char sym[] = "0123456789*#";
	char num[40];
	size_t checked = 0;
#define AGREE(s, n)                                                            \
	do {                                                                   \
		cr_assert_eq(cdr__zone_lookup(t, (s), (n)),                    \
			     cdr__zone_lookup_trie(t, (s), (n)), "'%.*s'",     \
			     (int)(n), (s));                                   \
		checked++;                                                     \
	} while (0)
	for (int len = 0; len <= 5; len++) {
		int end = 1;
		for (int k = 0; k < len; k++)
			end *= 10;
		for (int v = 0; v < end; v++) {
			for (int k = len - 1, x = v; k >= 0; k--, x /= 10)
				num[k] = (char)('0' + x % 10);
			AGREE(num, (size_t)len);
		}
	}
	for (int i = 0; i < 4 * 12 * 12; i++) { /* '*' or '#' in the head */
		memcpy(num, "13800", 5);
		num[i % 4] = sym[10 + i / 4 % 2];
		num[(i / 8) % 5] = sym[i / 40 % 12];
		AGREE(num, 5);
		AGREE(num, 4);
	}
	for (size_t i = 0; i < npfx; i++) {
		const char *q = pfx[i] + (pfx[i][0] == '=');
		size_t n = strlen(q);
		memcpy(num, q, n);
		for (size_t cut = 0; cut <= n; cut++)
			AGREE(num, cut);
		for (int c = 0; c < 12; c++) {
			num[n] = sym[c];
			AGREE(num, n + 1);
			num[n + 1] = '5';
			AGREE(num, n + 2);
		}
	}
	for (int i = 0; i < 200000; i++) {
		seed = seed * 1103515245u + 12345u;
		size_t n = 6 + (seed >> 16) % 14;
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			num[k] = sym[(seed >> 16) % (i % 5 ? 10 : 12)];
		}
		if (npfx && i % 2) { /* start with one of the prefixes */
			const char *q = pfx[(size_t)i / 2 % npfx];
			q += q[0] == '=';
			size_t m = strlen(q) < n ? strlen(q) : n;
			memcpy(num, q, m);
		}
		AGREE(num, n);
	}
#undef AGREE
	return checked;
}

/* Hand-worked answers where prefixes overlap around the table's four
 * digits, then the table against the trie on this tariff, the demo's and
 * the benchmark generator's shape of zones. */
Test(tariff, zone_table_answers_as_the_trie)
{
	char *dir = tu_tariff();
	static const char *const rows[] = {
		"1", "12", "1234", "12345", "=1234", "=123456", "=12", "9999",
		"99999", "0", "00", "000", "0000", "00000", "*", "*#", "12*4",
		"=5", "55555"};
	char zones[512] = "prefix,zone\n";
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		snprintf(zones + strlen(zones), sizeof(zones) - strlen(zones),
			 "%s,z%zu\n", rows[i], i);
	tu_write(dir, "zones.csv", zones);
	tu_write(dir, "tariff.conf", "timezone = UTC\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,*,0,0.1,60,60,60\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_str_eq(zone(t, "1234"), "z4");     /* =1234 beats 1234 */
	cr_assert_str_eq(zone(t, "12340"), "z2");    /* 1234, not =1234 */
	cr_assert_str_eq(zone(t, "12345678"), "z3"); /* below the table */
	cr_assert_str_eq(zone(t, "123456"), "z5");   /* =123456 */
	cr_assert_str_eq(zone(t, "1235"), "z1");     /* a final entry */
	cr_assert_str_eq(zone(t, "123"), "z1");      /* shorter than four */
	cr_assert_str_eq(zone(t, "12"), "z6");       /* =12 */
	cr_assert_str_eq(zone(t, "1200"), "z1");     /* =12 is exact */
	cr_assert_str_eq(zone(t, "99998"), "z7");
	cr_assert_str_eq(zone(t, "999990"), "z8");
	cr_assert_str_eq(zone(t, "0000000"), "z13");
	cr_assert_str_eq(zone(t, "12*45"), "z16");   /* '*' in the head */
	cr_assert_str_eq(zone(t, "5555"), "(none)"); /* 55555 is longer */
	cr_assert_str_eq(zone(t, "5"), "z17");
	cr_assert_str_eq(zone(t, "5000"), "(none)");
	cr_assert_str_eq(zone(t, "4444"), "(none)");
	cr_assert_gt(zones_agree(t, rows, sizeof(rows) / sizeof(rows[0]), 1),
		     100000);
	cdr_tariff_free(t);

	static const char *const demo[] = {
		"0571", "0", "00", "13", "15", "18", "17951", "11", "100", "*",
		"=110", "=119", "=120", "=122"};
	static const char *const demo_zone[] = {
		"local", "national", "international", "mobile", "mobile",
		"mobile", "ip", "service", "service", "service", "emergency",
		"emergency", "emergency", "emergency"};
	snprintf(zones, sizeof(zones), "prefix,zone\n");
	for (size_t i = 0; i < sizeof(demo) / sizeof(demo[0]); i++)
		snprintf(zones + strlen(zones), sizeof(zones) - strlen(zones),
			 "%s,%s\n", demo[i], demo_zone[i]);
	tu_write(dir, "zones.csv", zones);
	t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_str_eq(zone(t, "17951"), "ip");
	cr_assert_str_eq(zone(t, "1795"), "(none)");
	cr_assert_str_eq(zone(t, "057188776655"), "local");
	zones_agree(t, demo, sizeof(demo) / sizeof(demo[0]), 2);
	cdr_tariff_free(t);

	/* Random tables: 1,500 prefixes of 1-7 characters (a tenth with '*'
	 * or '#') and 150 `=numbers`, overlapping at every depth. */
	for (unsigned round = 0; round < 3; round++) {
		enum { NP = 1650 };
		static char text[NP][12];
		const char *ptr[NP];
		size_t cap = 64 + NP * 24, n = 0, o = 0;
		char *csv = malloc(cap);
		cr_assert_not_null(csv);
		o += (size_t)snprintf(csv, cap, "prefix,zone\n");
		unsigned seed = 7 + round;
		while (n < NP) {
			seed = seed * 1103515245u + 12345u;
			size_t len = 1 + (seed >> 16) % (round == 2 ? 5 : 7);
			int exact = n >= 1500;
			char *p = text[n];
			size_t at = 0;
			if (exact)
				p[at++] = '=';
			for (size_t k = 0; k < len; k++) {
				seed = seed * 1103515245u + 12345u;
				unsigned c = (seed >> 16) % 100;
				p[at++] = c < 5 ? '*' : c < 10 ? '#'
							: (char)('0' + c % 10);
			}
			p[at] = '\0';
			int dup = 0;
			for (size_t j = 0; j < n && !dup; j++)
				dup = !strcmp(text[j], p);
			if (dup)
				continue;
			ptr[n] = p;
			o += (size_t)snprintf(csv + o, cap - o, "%s,r%zu\n", p,
					      n % 37);
			n++;
		}
		tu_write(dir, "zones.csv", csv);
		free(csv);
		t = tu_load(dir, err);
		cr_assert_not_null(t, "%s", err);
		zones_agree(t, ptr, n, 100 + round);
		cdr_tariff_free(t);
	}
	tu_rmdir(dir);
}

Test(tariff, bands_first_matching_row_and_holidays)
{
	char *dir = tu_tariff();
	tu_write(dir, "bands.csv",
		 "band,days,from,to\n"
		 "free,holiday,00:00,24:00\n"
		 "peak,mon-fri,08:00,22:00\n"
		 "late,fri-mon,22:00,24:00\n" /* wraps over the week end */
		 "idle,*,00:00,24:00\n");
	tu_write(dir, "holidays.csv", "date,name\n2026-10-01,National Day\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,*,*,0,0.1,60,60,60\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	int64_t thu = cdr__days_from_civil(2026, 10, 1); /* a Thursday */
	cr_assert_eq(cdr__weekday(thu), 3);
	cr_assert_eq(cdr__day_type(t, thu), CDR_HOLIDAY);
	cr_assert_eq(cdr__day_type(t, thu + 1), 4); /* Friday */
	const char *const *bn = (const char *const *)t->band_names;
	cr_assert_str_eq(bn[t->minute_band[CDR_HOLIDAY][9 * 60]], "free");
	cr_assert_str_eq(bn[t->minute_band[4][9 * 60]], "peak");
	cr_assert_str_eq(bn[t->minute_band[4][22 * 60]], "late");
	cr_assert_str_eq(bn[t->minute_band[3][22 * 60 + 30]], "idle"); /* thu */
	cr_assert_str_eq(bn[t->minute_band[6][23 * 60]], "late");      /* sun */
	cr_assert_str_eq(bn[t->minute_band[5][7 * 60 + 59]], "idle");  /* sat */
	/* holiday rows match only holidays; weekday names never do */
	cr_assert_str_eq(bn[t->minute_band[0][0]], "idle");
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

Test(tariff, band_gap_is_an_error)
{
	char *dir = tu_tariff();
	/* no row names holiday or *: holidays are uncovered */
	tu_write(dir, "bands.csv",
		 "band,days,from,to\npeak,mon-sun,00:00,24:00\n");
	cr_assert_null(tu_load(dir, err));
	/* The gap is in no row: the message names the file, no line past
	 * its end. */
	cr_assert_str_eq(err, "bands.csv: gap in coverage: no row covers "
			      "holiday 00:00-24:00");
	tu_write(dir, "bands.csv",
		 "band,days,from,to\npeak,*,00:00,12:00\nidle,*,12:01,24:00\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert(strstr(err, "no row covers mon 12:00-12:01"), "%s", err);
	tu_write(dir, "bands.csv", "band,days,from,to\npeak,*,10:00,10:00\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert(strstr(err, "bands.csv:2: column to"), "%s", err);
	tu_rmdir(dir);
}

static const char *rate_at(const cdr_tariff *t, const char *zname,
			   const char *bname, int d)
{
	uint32_t z = 0, b = 0;
	while (strcmp(t->zone_names[z], zname))
		z++;
	while (strcmp(t->band_names[b], bname))
		b++;
	int32_t r = cdr__rate_find(t, 0, CDR_VOICE, z, b,
				   cdr__days_from_civil(2026, 10, (unsigned)d));
	static char out[16];
	if (r < 0)
		return "none";
	snprintf(out, sizeof(out), "line %u", t->rates[r].line);
	return out;
}

Test(tariff, rate_fallback_order_and_dated_rows)
{
	char *dir = tu_tariff();
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment,from\n"
		 "m18,voice,mobile,*,0,0.1,60,60,60,\n"		 /* line 2 */
		 "m18,voice,*,peak,0,0.2,60,60,60,\n"		 /* line 3 */
		 "m18,voice,*,*,0,0.3,60,60,60,2026-10-10\n"	 /* line 4 */
		 "m18,voice,mobile,peak,0,0.4,60,60,60,2026-10-16\n" /* 5 */
		 "m18,voice,mobile,peak,0,0.5,60,60,60,2026-10-20\n" /* 6 */
		 "m18,sms,*,*,0,0.1,1,1,1\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	/* (mobile, peak): no exact row in force before the 16th, so the
	 * (zone, *) key wins; then the latest exact row in force. */
	cr_assert_str_eq(rate_at(t, "mobile", "peak", 15), "line 2");
	cr_assert_str_eq(rate_at(t, "mobile", "peak", 16), "line 5");
	cr_assert_str_eq(rate_at(t, "mobile", "peak", 19), "line 5");
	cr_assert_str_eq(rate_at(t, "mobile", "peak", 20), "line 6");
	cr_assert_str_eq(rate_at(t, "mobile", "idle", 20), "line 2");
	/* (national, peak): (*, peak) before (*, *) */
	cr_assert_str_eq(rate_at(t, "national", "peak", 1), "line 3");
	/* (national, idle): only (*, *), and only from the 10th */
	cr_assert_str_eq(rate_at(t, "national", "idle", 9), "none");
	cr_assert_str_eq(rate_at(t, "national", "idle", 10), "line 4");
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

Test(tariff, subscribers_rows_and_plan_changes)
{
	char *dir = tu_tariff();
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "+13800000001,B,f25,,2026-10-05,\n"
		 "13800000001,A,m18,,2025-01-01,2026-10-04\n"
		 "13800000002,A,m18,,2026-10-20,\n"
		 "13800000003,A,m18,,2025-01-01,2026-10-09\n"
		 "13800000003,A,f25,,2026-10-10,\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	int32_t s = cdr__sub_lookup(t, "13800000001", 11);
	cr_assert_geq(s, 0);
	int64_t d4 = cdr__days_from_civil(2026, 10, 4);
	int32_t r4 = cdr__row_at(t, (uint32_t)s, d4),
		r5 = cdr__row_at(t, (uint32_t)s, d4 + 1);
	cr_assert_str_eq(t->accounts[t->rows[r4].account], "A");
	cr_assert_str_eq(t->accounts[t->rows[r5].account], "B");
	/* the second row starts the day after the first ends, but for
	 * another account: an installation, not a plan change (SPEC 7) */
	cr_assert(!t->rows[r4].change_end && !t->rows[r5].change_start);
	/* the same account the next day: a plan change at both ends */
	int32_t s3 = cdr__sub_lookup(t, "13800000003", 11);
	cr_assert_geq(s3, 0);
	int32_t r9 = cdr__row_at(t, (uint32_t)s3, d4 + 5),
		r10 = cdr__row_at(t, (uint32_t)s3, d4 + 6);
	cr_assert_neq(r9, r10);
	cr_assert(t->rows[r9].change_end && t->rows[r10].change_start);
	cr_assert(!t->rows[r9].change_start && !t->rows[r10].change_end);
	cr_assert_eq(cdr__sub_lookup(t, "1380000000", 10), -1);
	/* accounts sorted bytewise, "-" included */
	cr_assert_str_eq(t->accounts[0], "-");
	cr_assert_str_eq(t->accounts[1], "A");
	cr_assert_str_eq(t->accounts[2], "B");
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

Test(tariff, errors_name_file_line_column)
{
	char *dir = tu_tariff();
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "13800000001,A,m18,,2026-01-01,2026-10-10\n"
		 "13800000001,A,m18,,2026-10-10,\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert(strstr(err, "subscribers.csv:3: column from: rows of "
			      "subscriber 13800000001 overlap"), "%s", err);
	tu_write(dir, "subscribers.csv", T_SUBS);
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,sms,*,*,0,0.1,60,1,1\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert(strstr(err, "rates.csv:2: column unit"), "%s", err);
	tu_write(dir, "rates.csv", "plan,service,zone\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert(strstr(err, "rates.csv:1: header must be"), "%s", err);
	tu_write(dir, "rates.csv", T_RATES);
	tu_write(dir, "tariff.conf", "timezone = ../../etc/passwd\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert(strstr(err, "column timezone"), "%s", err);
	tu_write(dir, "tariff.conf", "free_zones = emergency, nowhere\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert(strstr(err, "column free_zones: unknown zone 'nowhere'"),
		  "%s", err);
	tu_rmdir(dir);
}

/* Write `text` as dir/name with `n` bytes (it may hold NULs). */
static void write_n(const char *dir, const char *name, const char *text,
		    size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, n, f), n);
	fclose(f);
}

/* A trie node per prefix character: 32 (as the subscriber numbers) is the
 * bound, and one more is refused naming the line rather than built. */
Test(tariff, zone_prefix_is_bounded)
{
	char *dir = tu_tariff();
	char zones[256];
	snprintf(zones, sizeof(zones), "prefix,zone\n0,national\n=110,emergency\n%s,long\n",
		 "12345678901234567890123456789012");
	tu_write(dir, "zones.csv", zones);
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_str_eq(zone(t, "12345678901234567890123456789012"), "long");
	cdr_tariff_free(t);
	snprintf(zones, sizeof(zones), "prefix,zone\n0,national\n=110,emergency\n=%s,long\n",
		 "123456789012345678901234567890123");
	tu_write(dir, "zones.csv", zones);
	cr_assert_null(tu_load(dir, err));
	cr_assert_str_eq(err, "zones.csv:4: column prefix: longer than 32 "
			      "characters");
	tu_rmdir(dir);
}

/* `f25,25\0.99junk` used to load as 25.00: the NUL ended the line. */
Test(tariff, nul_byte_is_an_error_naming_the_line)
{
	char *dir = tu_tariff();
	static const char plans[] = "plan,monthly_fee\nm18,18\nf25,25\0.99junk\n";
	write_n(dir, "plans.csv", plans, sizeof(plans) - 1);
	cr_assert_null(tu_load(dir, err));
	cr_assert_str_eq(err, "plans.csv:3: NUL byte in the line (a tariff is "
			      "text)");
	tu_rmdir(dir);
}

/* A line past 64 KiB stops the read there, so an endless input (a device,
 * a file with no newline) costs one line, not all memory. */
Test(tariff, tariff_lines_are_bounded)
{
	char *dir = tu_tariff();
	size_t n = 70000;
	char *big = malloc(n + 64);
	cr_assert_not_null(big);
	int h = snprintf(big, 64, "plan,monthly_fee\nm18,18\n");
	memset(big + h, 'p', n);
	memcpy(big + h + n, ",25\n", 4);
	write_n(dir, "plans.csv", big, (size_t)h + n + 4);
	free(big);
	cr_assert_null(tu_load(dir, err));
	cr_assert_str_eq(err, "plans.csv:3: line longer than 65536 bytes");
	tu_write(dir, "plans.csv", T_PLANS);
	cdr_tariff *t = NULL;
	cr_assert_eq(cdr_tariff_load(&t, dir, "/dev/zero", err, sizeof(err)),
		     -EINVAL);
	cr_assert_str_eq(err, "/dev/zero:1: NUL byte in the line (a tariff is "
			      "text)");
	tu_rmdir(dir);
}

/* The path once, and what is wrong with it (was: "Input/output error",
 * the path three times). */
Test(tariff, subscribers_directory_is_named_once)
{
	char *dir = tu_tariff();
	cdr_tariff *t = NULL;
	char want[600];
	cr_assert_neq(cdr_tariff_load(&t, dir, dir, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s: is a directory", dir);
	cr_assert_str_eq(err, want);
	cr_assert_null(t);
	tu_rmdir(dir);
}

/* An echoed value never carries a control byte to the terminal. */
Test(tariff, control_bytes_are_escaped_in_messages)
{
	char *dir = tu_tariff();
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment\n"
		 "m18,voice,\033[2J\r,peak,0,0.15,60,60,60\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert_str_eq(err, "rates.csv:2: column zone: unknown zone "
			      "'\\x1b[2J\\x0d'");
	tu_write(dir, "rates.csv", T_RATES);
	tu_write(dir, "plans.csv", "plan,monthly_fee\nm\00118,1\x7f\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert_str_eq(err, "plans.csv:2: column monthly_fee: bad amount "
			      "'1\\x7f'");
	tu_rmdir(dir);
}

/* 200k holidays: sorted once (the scan of earlier dates per row took 8 s
 * here). The duplicate named is the first line repeating a date, even
 * when a malformed line comes after it. */
Test(tariff, many_holidays_and_the_first_duplicate)
{
	char *dir = tu_tariff();
	size_t n = 200000, o = 0;
	char *h = malloc(n * 16 + 64);
	cr_assert_not_null(h);
	o += (size_t)sprintf(h, "date,name\n");
	int64_t d0 = cdr__days_from_civil(1900, 1, 1);
	for (size_t i = 0; i < n; i++) {
		int64_t y;
		unsigned m, d;
		cdr__civil_from_days(d0 + (int64_t)(n - 1 - i), &y, &m, &d);
		o += (size_t)sprintf(h + o, "%04lld-%02u-%02u,\n", (long long)y,
				     m, d);
	}
	write_n(dir, "holidays.csv", h, o);
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_eq(t->nholidays, n);
	cr_assert_eq(t->holidays[0], d0);
	cr_assert_eq(cdr__day_type(t, d0 + 12345), CDR_HOLIDAY);
	cdr_tariff_free(t);
	memcpy(h + o, "1900-01-02,\n", 12); /* repeats line 200000 */
	write_n(dir, "holidays.csv", h, o + 12);
	cr_assert_null(tu_load(dir, err));
	cr_assert_str_eq(err, "holidays.csv:200002: column date: duplicate "
			      "date '1900-01-02'");
	free(h);
	tu_write(dir, "holidays.csv",
		 "date,name\n2026-10-01,a\n2026-10-02,b\n2026-10-02,c\n"
		 "2026-10-01,d\n2026-13-01,e\n");
	cr_assert_null(tu_load(dir, err));
	cr_assert_str_eq(err, "holidays.csv:4: column date: duplicate date "
			      "'2026-10-02'");
	tu_rmdir(dir);
}

/* Grow a string buffer; the tests below write tariffs of many rows. */
static char *buf_put(char *b, size_t *o, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static char *buf_put(char *b, size_t *o, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	if (*cap - *o < 256) {
		*cap = *cap * 2 + 4096;
		b = realloc(b, *cap);
		cr_assert_not_null(b);
	}
	va_start(ap, fmt);
	*o += (size_t)vsnprintf(b + *o, *cap - *o, fmt, ap);
	va_end(ap);
	return b;
}

static uint32_t index_of(char *const *names, uint32_t n, const char *s)
{
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	cr_assert_fail("no name %s", s);
	return 0;
}

/*
 * 100 plans, 1,000 zones, 202 bands and a few rows per plan: a cell per
 * plan x service x zone x band was 60M cells (7 s and 1.2 GB); the index
 * now holds the keys written, and the fallback order is unchanged.
 */
Test(tariff, rate_index_is_proportional_to_rows)
{
	char *dir = tu_tariff();
	char *b = NULL;
	size_t o = 0, cap = 0;
	b = buf_put(b, &o, &cap, "prefix,zone\n=110,emergency\n");
	for (int z = 0; z < 1000; z++)
		b = buf_put(b, &o, &cap, "%d,z%d\n", 2000 + z, z);
	tu_write(dir, "zones.csv", b);
	o = 0;
	b = buf_put(b, &o, &cap, "band,days,from,to\n");
	for (int i = 0; i < 201; i++)
		b = buf_put(b, &o, &cap, "b%d,mon,%02d:%02d,%02d:%02d\n", i,
			    i * 7 / 60, i * 7 % 60, (i * 7 + 7) / 60,
			    (i * 7 + 7) % 60);
	b = buf_put(b, &o, &cap, "rest,*,00:00,24:00\n");
	tu_write(dir, "bands.csv", b);
	o = 0;
	b = buf_put(b, &o, &cap, "plan,monthly_fee\n");
	for (int p = 0; p < 100; p++)
		b = buf_put(b, &o, &cap, "p%d,1\n", p);
	tu_write(dir, "plans.csv", b);
	o = 0;
	b = buf_put(b, &o, &cap, "plan,service,zone,band,connect,price,unit,"
				 "first,increment\n");
	for (int p = 0; p < 100; p++)
		b = buf_put(b, &o, &cap,
			    "p%d,voice,*,*,0,0.1,60,60,60\n"   /* line 2+4p */
			    "p%d,voice,z7,*,0,0.2,60,60,60\n"  /* 3+4p */
			    "p%d,voice,*,b9,0,0.3,60,60,60\n"  /* 4+4p */
			    "p%d,voice,z7,b9,0,0.4,60,60,60\n", /* 5+4p */
			    p, p, p, p);
	tu_write(dir, "rates.csv", b);
	tu_write(dir, "subscribers.csv", "subscriber,account,plan,packages,"
					 "from,to\n1,A,p0,,2026-01-01,\n");
	free(b);
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_leq(t->rate_mask + 1, 2 * 400 + 16 + 1024); /* 400 keys */
	cr_assert_null(t->cell_off); /* 60M cells: not for 400 rows */
	uint32_t z7 = index_of(t->zone_names, t->nzones, "z7");
	uint32_t z8 = index_of(t->zone_names, t->nzones, "z8");
	uint32_t b9 = index_of(t->band_names, t->nbands, "b9");
	uint32_t rest = index_of(t->band_names, t->nbands, "rest");
	int64_t d = cdr__days_from_civil(2026, 10, 5);
	for (uint32_t p = 0; p < 100; p += 33) {
		uint32_t l = 2 + 4 * p;
		cr_assert_eq(t->rates[cdr__rate_find(t, p, CDR_VOICE, z7, b9, d)].line, l + 3);
		cr_assert_eq(t->rates[cdr__rate_find(t, p, CDR_VOICE, z7, rest, d)].line, l + 1);
		cr_assert_eq(t->rates[cdr__rate_find(t, p, CDR_VOICE, z8, b9, d)].line, l + 2);
		cr_assert_eq(t->rates[cdr__rate_find(t, p, CDR_VOICE, z8, rest, d)].line, l);
		cr_assert_eq(cdr__rate_find(t, p, CDR_SMS, z8, rest, d), -1);
		cr_assert_eq(cdr__rate_find(t, p, CDR_DATA, t->nzones, b9, d), -1);
	}
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/*
 * A small tariff gets each cell's timeline resolved ahead of time (one
 * index and a short scan per record); it must answer as the keys do, for
 * every cell and day, the data zone `*` and cells with no rate included.
 */
Test(tariff, cell_table_agrees_with_the_keys)
{
	char *dir = tu_tariff();
	tu_write(dir, "bands.csv", "band,days,from,to\npeak,mon-fri,08:00,22:00\n"
				   "eve,*,18:00,23:00\nidle,*,00:00,24:00\n");
	tu_write(dir, "rates.csv",
		 "plan,service,zone,band,connect,price,unit,first,increment,from\n"
		 "m18,voice,mobile,peak,0,0.1,60,60,60,2026-10-10\n"
		 "m18,voice,mobile,peak,0,0.1,60,60,60,2026-10-20\n"
		 "m18,voice,mobile,*,0,0.2,60,60,60,\n"
		 "m18,voice,*,eve,0,0.3,60,60,60,2026-10-15\n"
		 "m18,voice,*,*,0,0.3,60,60,60,2026-10-12\n"
		 "f25,voice,*,*,0,0.4,60,60,60,\n"
		 "f25,voice,beijing,idle,0,0.5,60,60,60,2026-10-05\n"
		 "m18,sms,national,*,0,0.1,1,1,1,\n"
		 "m18,data,*,peak,0,0.1,1024,1024,1024,2026-10-01\n"
		 "f25,data,*,*,0,0.1,1024,1024,1024,\n");
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_not_null(t->cell_off);
	uint32_t *off = t->cell_off;
	int64_t d0 = cdr__days_from_civil(2026, 10, 1);
	for (int64_t d = d0 - 2; d < d0 + 25; d++)
		for (uint32_t p = 0; p < t->nplans; p++)
			for (unsigned s = 0; s < CDR_NSVC; s++)
				for (uint32_t z = 0; z <= t->nzones; z++)
					for (uint32_t b = 0; b < t->nbands; b++) {
						t->cell_off = off;
						int32_t r = cdr__rate_find(t, p, s, z, b, d);
						t->cell_off = NULL; /* the keys */
						cr_assert_eq(r, cdr__rate_find(t, p, s, z, b, d),
							     "plan %u svc %u zone %u band %u day %lld",
							     p, s, z, b, (long long)d);
					}
	t->cell_off = off;
	uint32_t mob = index_of(t->zone_names, t->nzones, "mobile");
	uint32_t nat = index_of(t->zone_names, t->nzones, "national");
	uint32_t eve = index_of(t->band_names, t->nbands, "eve");
	uint32_t peak = index_of(t->band_names, t->nbands, "peak");
	cr_assert_eq(t->rates[cdr__rate_find(t, 0, CDR_VOICE, mob, eve, d0)].line, 4u);
	cr_assert_eq(t->rates[cdr__rate_find(t, 0, CDR_VOICE, mob, peak, d0 + 9)].line, 2u);
	cr_assert_eq(t->rates[cdr__rate_find(t, 0, CDR_VOICE, mob, peak, d0 + 19)].line, 3u);
	cr_assert_eq(cdr__rate_find(t, 0, CDR_VOICE, nat, peak, d0 + 10), -1);
	cr_assert_eq(t->rates[cdr__rate_find(t, 0, CDR_VOICE, nat, eve, d0 + 14)].line, 5u);
	cr_assert_eq(cdr__rate_find(t, 0, CDR_SMS, mob, eve, d0), -1);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/*
 * 20,000 dated rows of one key under 50 zones and 20 bands with keys of
 * their own (dated later): each cell scanned the key's rows per
 * breakpoint (quadratic; minutes here). Sorted once, a lookup is a
 * binary search; a zone key whose rows are not yet in force falls back.
 */
Test(tariff, many_dated_rows_of_one_key)
{
	char *dir = tu_tariff();
	char *b = NULL;
	size_t o = 0, cap = 0;
	b = buf_put(b, &o, &cap, "prefix,zone\n=110,emergency\n");
	for (int z = 0; z < 50; z++)
		b = buf_put(b, &o, &cap, "%d,z%d\n", 2000 + z, z);
	tu_write(dir, "zones.csv", b);
	o = 0;
	b = buf_put(b, &o, &cap, "band,days,from,to\n");
	for (int i = 0; i < 19; i++)
		b = buf_put(b, &o, &cap, "b%d,*,%02d:00,%02d:00\n", i, i, i + 1);
	b = buf_put(b, &o, &cap, "rest,*,00:00,24:00\n");
	tu_write(dir, "bands.csv", b);
	o = 0;
	b = buf_put(b, &o, &cap, "plan,service,zone,band,connect,price,unit,"
				 "first,increment,from\n");
	int64_t d0 = cdr__days_from_civil(1970, 1, 1);
	for (int i = 0; i < 20000; i++) { /* lines 2 .. 20001, newest first */
		int64_t y;
		unsigned m, d;
		cdr__civil_from_days(d0 + 19999 - i, &y, &m, &d);
		b = buf_put(b, &o, &cap, "m18,voice,*,*,0,0.1,60,60,60,"
			    "%04lld-%02u-%02u\n", (long long)y, m, d);
	}
	for (int z = 0; z < 50; z++) /* lines 20002 .. 20051 */
		b = buf_put(b, &o, &cap, "m18,voice,z%d,*,0,0.2,60,60,60,"
			    "2100-01-01\n", z);
	tu_write(dir, "rates.csv", b);
	free(b);
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	uint32_t z3 = index_of(t->zone_names, t->nzones, "z3");
	uint32_t b4 = index_of(t->band_names, t->nbands, "b4");
	cr_assert_eq(cdr__rate_find(t, 0, CDR_VOICE, z3, b4, d0 - 1), -1);
	for (int64_t k = 0; k < 20000; k += 777)
		cr_assert_eq(t->rates[cdr__rate_find(t, 0, CDR_VOICE, z3, b4,
						     d0 + k)].line,
			     (uint32_t)(20001 - k));
	cr_assert_eq(t->rates[cdr__rate_find(t, 0, CDR_VOICE, z3, b4,
					     d0 + 40000)].line, 2u);
	int64_t y2100 = cdr__days_from_civil(2100, 1, 1);
	cr_assert_eq(t->rates[cdr__rate_find(t, 0, CDR_VOICE, z3, b4,
					     y2100)].line, 20005u);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#endif

#ifndef TU_ASAN /* ASan reserves terabytes of address space up front */
#include <sys/resource.h>

/* Address space of this process now, from /proc/self/statm (pages). */
static size_t vm_bytes(void)
{
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%lu", &pages), 1);
	fclose(f);
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * Out of memory names the file being loaded (it said "DIR: out of
 * memory", which the command line printed after DIR again). 200k
 * prefixes of 32 digits need some 6M trie nodes (340 MB) from a 7 MB
 * zones.csv; the address space is capped well below that.
 */
Test(tariff, out_of_memory_names_the_file)
{
	char *dir = tu_tariff();
	char *b = NULL;
	size_t o = 0, cap = 0;
	b = buf_put(b, &o, &cap, "prefix,zone\n=110,emergency\n");
	for (int i = 0; i < 200000; i++)
		b = buf_put(b, &o, &cap, "%06d%026d,z\n", i, 0);
	tu_write(dir, "zones.csv", b);
	free(b);
	struct rlimit rl = {.rlim_cur = vm_bytes() + ((size_t)96 << 20),
			    .rlim_max = RLIM_INFINITY};
	cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
	cdr_tariff *t = NULL;
	cr_assert_eq(cdr_tariff_load(&t, dir, NULL, err, sizeof(err)), -ENOMEM);
	rl.rlim_cur = RLIM_INFINITY;
	setrlimit(RLIMIT_AS, &rl);
	cr_assert_str_eq(err, "zones.csv: out of memory");
	tu_rmdir(dir);
}
#endif

/* ---- subscribers.csv on one thread and on two ----------------------- */

/*
 * A subscribers.csv with what the two-thread load must put back together:
 * accounts out of order and repeated far apart, numbers with rows in both
 * halves of the file (one a plan change), packages, blank lines, a number
 * with a '+', and "-" as a real account.
 */
static char *big_subs(unsigned n, const char *extra)
{
	size_t cap = (size_t)n * 80 + 4096, o = 0;
	char *s = malloc(cap);
	cr_assert_not_null(s);
	o += (size_t)snprintf(s + o, cap - o,
			      "subscriber,account,plan,packages,from,to\n");
	for (unsigned i = 0; i < n; i++) {
		unsigned a = (i * 7919u) % (n / 3 + 1); /* out of order */
		if (i % 97 == 5)
			o += (size_t)snprintf(s + o, cap - o, "\n  \n");
		o += (size_t)snprintf(s + o, cap - o,
				      "%s139%08u,%s%u,%s,%s,2025-01-01,%s\n",
				      i % 11 ? "" : "+", i, i == 17 ? "-" : "K",
				      a, i % 3 ? "m18" : "f25",
				      i % 5 ? "" : "d1", i % 13 ? "" : "2026-10-09");
	}
	/* second rows, at the end: a plan change the day after (same
	 * account) or a new account */
	for (unsigned i = 0; i < n; i += 13)
		o += (size_t)snprintf(s + o, cap - o,
				      "139%08u,%s%u,m18,,2026-10-10,\n", i,
				      i % 2 ? "N" : "K", (i * 7919u) % (n / 3 + 1));
	if (extra)
		o += (size_t)snprintf(s + o, cap - o, "%s", extra);
	return s;
}

static char *check_list(const cdr_tariff *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	cdr_tariff_check(t, CDR_CHECK_SUBSCRIBERS, f, f);
	fclose(f);
	return buf;
}

static cdr_tariff *load_with(const char *dir, unsigned threads)
{
	cdr__tariff_threads = threads;
	cdr_tariff *t = tu_load(dir, err);
	cdr__tariff_threads = 0;
	return t;
}

static void write_pkg_tariff(const char *dir, const char *subs)
{
	tu_write(dir, "packages.csv",
		 "package,monthly_fee,service,zone,band,amount\n"
		 "d1,5,data,*,*,1048576\n");
	tu_write(dir, "subscribers.csv", subs);
}

Test(tariff, subscribers_same_on_one_and_two_threads)
{
	char *dir = tu_tariff();
	char *subs = big_subs(20000, NULL);
	write_pkg_tariff(dir, subs);
	free(subs);
	cdr_tariff *a = load_with(dir, 1), *b = load_with(dir, 2);
	cr_assert_not_null(a, "%s", err);
	cr_assert_not_null(b, "%s", err);
	cr_assert_eq(a->nsubs, b->nsubs);
	cr_assert_eq(a->nrows, b->nrows);
	cr_assert_eq(a->naccounts, b->naccounts);
	cr_assert_eq(a->dash_account, b->dash_account);
	cr_assert_str_eq(a->accounts[a->dash_account], "-");
	for (uint32_t i = 0; i < a->naccounts; i++) {
		cr_assert_str_eq(a->accounts[i], b->accounts[i]);
		if (i)
			cr_assert_lt(strcmp(a->accounts[i - 1], a->accounts[i]), 0);
	}
	for (uint32_t i = 0; i < a->nsubs; i++) {
		cr_assert_str_eq(a->subs[i].num, b->subs[i].num);
		cr_assert_eq(a->subs[i].first_row, b->subs[i].first_row);
		cr_assert_eq(a->subs[i].nrows, b->subs[i].nrows);
	}
	/* subscribers numbered in the order of their first rows */
	cr_assert_str_eq(a->subs[0].num, "13900000000");
	cr_assert_str_eq(a->subs[11].num, "13900000011"); /* '+' dropped */
	size_t npk = 0;
	for (uint32_t i = 0; i < a->nrows; i++) {
		const cdr__sub_row *x = &a->rows[i], *y = &b->rows[i];
		cr_assert(x->sub == y->sub && x->account == y->account &&
			  x->plan == y->plan && x->first_pkg == y->first_pkg &&
			  x->npkg == y->npkg && x->from_day == y->from_day &&
			  x->to_day == y->to_day && x->line == y->line &&
			  x->change_start == y->change_start &&
			  x->change_end == y->change_end,
			  "row %u", i);
		cr_assert_eq(a->row_allow_svc[i], b->row_allow_svc[i]);
		npk += x->npkg;
	}
	cr_assert_eq(npk, 4000);
	cr_assert_eq(memcmp(a->row_pkgs, b->row_pkgs, npk * sizeof(uint32_t)), 0);
	/* lookups through the number table */
	for (unsigned i = 0; i < 20000; i += 7) {
		char num[16];
		snprintf(num, sizeof(num), "139%08u", i);
		int32_t sa = cdr__sub_lookup(a, num, 11), sb = cdr__sub_lookup(b, num, 11);
		cr_assert_geq(sa, 0);
		cr_assert_eq(sa, sb);
		cr_assert_str_eq(a->subs[sa].num, num);
	}
	char *la = check_list(a), *lb = check_list(b);
	cr_assert_str_eq(la, lb);
	free(la);
	free(lb);
	cdr_tariff_free(a);
	cdr_tariff_free(b);
	tu_rmdir(dir);
}

Test(tariff, subscribers_errors_in_either_half)
{
	char *dir = tu_tariff();
	tu_write(dir, "packages.csv",
		 "package,monthly_fee,service,zone,band,amount\n"
		 "d1,5,data,*,*,1048576\n");
	/* the header, 20000 rows, 414 blank lines, 1539 second rows: the error
	 * row is line 21955, in the second half (as before the load had two) */
	char *subs = big_subs(20000, "13912345678,Z,nope,,2025-01-01,\n");
	tu_write(dir, "subscribers.csv", subs);
	for (unsigned th = 1; th <= 2; th++) {
		cr_assert_null(load_with(dir, th));
		cr_assert_str_eq(err, "subscribers.csv:21955: column plan: "
				      "unknown plan 'nope'");
	}
	/* an error in each half: the first half's is the file's first */
	char *p = strstr(subs, "13900000100,");
	cr_assert_not_null(p);
	memcpy(p, "1390000010x,", 12);
	tu_write(dir, "subscribers.csv", subs);
	for (unsigned th = 1; th <= 2; th++) {
		cr_assert_null(load_with(dir, th));
		cr_assert_str_eq(err, "subscribers.csv:104: column subscriber: "
				      "bad number '1390000010x' (digits, "
				      "optional leading '+')");
	}
	free(subs);
	/* rows of one number in both halves that overlap */
	subs = big_subs(20000, "13900000001,K1,m18,,2026-10-01,\n");
	tu_write(dir, "subscribers.csv", subs);
	free(subs);
	for (unsigned th = 1; th <= 2; th++) {
		cr_assert_null(load_with(dir, th));
		cr_assert_str_eq(err, "subscribers.csv:21955: column from: rows "
				      "of subscriber 13900000001 overlap (lines "
				      "3 and 21955)");
	}
	tu_rmdir(dir);
}
