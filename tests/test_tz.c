/*
 * test_tz.c - Criterion suite for src/tz.c (time zones from TZif files).
 *
 * Every expected instant was worked out by hand from the calendar and the
 * zone's rule, and cross-checked against `zdump -v ZONE` and python3's
 * zoneinfo on the development machine; each says where it comes from.
 * Instants are Unix seconds: days since 1970-01-01 times 86400 plus the
 * time of day in UTC. Two calendar facts carry the far-future cases: the
 * Gregorian calendar repeats every 400 years (146097 days, exactly 20871
 * weeks), so year Y has the weekdays of year Y - 400k, and 8000 years are
 * 20 * 146097 * 86400 = 252455616000 s.
 *
 * Zones come from the system tzdata (Europe/Berlin, America/New_York,
 * Australia/Sydney, Asia/Shanghai, ...); footer and error cases write
 * their own TZif files into a temporary $TZDIR. Criterion runs each test in
 * its own process, so setenv("TZDIR") in one test does not leak into others.
 *
 * Sections: helpers; UTC; Asia/Shanghai; Europe/Berlin; America/New_York;
 * Australia/Sydney; POSIX footers (v1..v3 files written here); errors and
 * malformed files; threads; windows.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tz.h"

/* ---- helpers ---------------------------------------------------------- */

#define HOUR 3600

static cdr__tz *load_ok(const char *name)
{
	cdr__tz *tz = NULL;
	char err[256] = "";
	const int rc = cdr__tz_load(&tz, name, err, sizeof(err));

	cr_assert_eq(rc, 0, "loading %s: %d %s", name, rc, err);
	cr_assert_not_null(tz);
	return tz;
}

/* Load expecting failure; returns the code, err holds the message. */
static int load_fail(const char *name, char *err, size_t errlen)
{
	cdr__tz *const sentinel = (cdr__tz *)(uintptr_t)0x1;
	cdr__tz *tz = sentinel;
	const int rc = cdr__tz_load(&tz, name, err, errlen);

	cr_assert_lt(rc, 0, "loading '%s' should fail", name);
	cr_assert_eq(tz, sentinel, "*out must be untouched on failure");
	return rc;
}

static char tzdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tzdir(void)
{
	if (tzdir[0] != '\0')
		nftw(tzdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A fresh, empty $TZDIR, removed when the test process exits. */
static void use_temp_tzdir(void)
{
	strcpy(tzdir, "/tmp/cdr_test_tz_XXXXXX");
	cr_assert_not_null(mkdtemp(tzdir));
	cr_assert_eq(setenv("TZDIR", tzdir, 1), 0);
	atexit(rm_tzdir);
}

static void write_zone(const char *name, const void *data, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tzdir, name);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "cannot create %s", path);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* Read a system zone file (to truncate it). */
static size_t read_system_zone(const char *name, unsigned char *buf, size_t cap)
{
	char path[256];

	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "no %s on this machine", path);
	const size_t n = fread(buf, 1, cap, f);
	fclose(f);
	cr_assert(n > 0 && n < cap);
	return n;
}

/*
 * A TZif writer for hand-made zones. version 0 writes a v1 file (32-bit
 * times, no footer); '2'..'4' write a minimal v1 block (as zic -b slim
 * does) followed by the 64-bit block and "\n<footer>\n".
 */
struct zbuf {
	unsigned char b[8192];
	size_t n;
};

static void put8(struct zbuf *z, unsigned v)
{
	cr_assert_lt(z->n, sizeof(z->b));
	z->b[z->n++] = (unsigned char)v;
}

static void put32(struct zbuf *z, uint32_t v)
{
	for (int s = 24; s >= 0; s -= 8)
		put8(z, (v >> s) & 0xff);
}

static void put64(struct zbuf *z, uint64_t v)
{
	put32(z, (uint32_t)(v >> 32));
	put32(z, (uint32_t)v);
}

static void put_header(struct zbuf *z, char version, uint32_t leapcnt,
		       uint32_t timecnt, uint32_t typecnt, uint32_t charcnt)
{
	memcpy(z->b + z->n, "TZif", 4);
	z->n += 4;
	put8(z, (unsigned char)version);
	for (int i = 0; i < 15; i++)
		put8(z, 0);
	put32(z, 0); /* isutcnt */
	put32(z, 0); /* isstdcnt */
	put32(z, leapcnt);
	put32(z, timecnt);
	put32(z, typecnt);
	put32(z, charcnt);
}

static void put_types(struct zbuf *z, size_t ntypes, const int32_t *offs)
{
	for (size_t k = 0; k < ntypes; k++) {
		put32(z, (uint32_t)offs[k]);
		put8(z, 0); /* isdst: not used by the offset */
		put8(z, 0); /* designation "ZZZ" */
	}
	put32(z, 0x5a5a5a00); /* "ZZZ\0" */
}

static void make_tzif(struct zbuf *z, char version, size_t nt,
		      const int64_t *times, const unsigned char *idx,
		      size_t ntypes, const int32_t *offs, const char *footer)
{
	z->n = 0;
	if (version == 0) {
		put_header(z, 0, 0, (uint32_t)nt, (uint32_t)ntypes, 4);
		for (size_t i = 0; i < nt; i++)
			put32(z, (uint32_t)times[i]);
		for (size_t i = 0; i < nt; i++)
			put8(z, idx[i]);
		put_types(z, ntypes, offs);
		return;
	}
	put_header(z, version, 0, 0, 1, 4);
	put_types(z, 1, offs);
	put_header(z, version, 0, (uint32_t)nt, (uint32_t)ntypes, 4);
	for (size_t i = 0; i < nt; i++)
		put64(z, (uint64_t)times[i]);
	for (size_t i = 0; i < nt; i++)
		put8(z, idx[i]);
	put_types(z, ntypes, offs);
	put8(z, '\n');
	for (const char *p = footer; *p != '\0'; p++)
		put8(z, (unsigned char)*p);
	put8(z, '\n');
}

/* A v3 file with no transitions: the footer alone decides. */
static void write_footer_zone(const char *name, int32_t type0, const char *footer)
{
	struct zbuf z;

	make_tzif(&z, '3', 0, NULL, NULL, 1, &type0, footer);
	write_zone(name, z.b, z.n);
}

/* ---- UTC -------------------------------------------------------------- */

Test(utc, builtin_is_zero_everywhere)
{
	cdr__tz *tz = load_ok("UTC");

	cr_assert_str_eq(cdr__tz_name(tz), "UTC");
	/* 0 = 1970-01-01T00:00:00Z; 253402300799 = 9999-12-31T23:59:59Z, the
	 * last instant the contract allows; -2208988800 = 1900-01-01. */
	cr_assert_eq(cdr__tz_offset_at(tz, 0), 0);
	cr_assert_eq(cdr__tz_offset_at(tz, 253402300799), 0);
	cr_assert_eq(cdr__tz_offset_at(tz, -2208988800), 0);
	cr_assert_eq(cdr__tz_next_change(tz, 0), INT64_MAX);
	cr_assert_eq(cdr__tz_next_change(tz, INT64_MIN), INT64_MAX);
	/* Local time is UTC: 1767225600 = 2026-01-01T00:00:00Z either way. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1767225600), 1767225600);
	cr_assert_eq(cdr__tz_local_to_utc(tz, 253402300799), 253402300799);
	cdr__tz_free(tz);
}

Test(utc, aliases_need_no_tzdata)
{
	static const char *const names[] = {"Etc/UTC", "GMT", "Etc/GMT", "Zulu",
					    "UCT", "Etc/Universal", "GMT0"};
	char err[128];

	/* An empty zone directory: nothing can come from a file. */
	use_temp_tzdir();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cdr__tz *tz = load_ok(names[i]);

		cr_assert_str_eq(cdr__tz_name(tz), names[i]);
		cr_assert_eq(cdr__tz_offset_at(tz, 1767225600), 0);
		cdr__tz_free(tz);
	}
	/* ... while file zones are looked up in $TZDIR, and this one is empty. */
	cr_assert_eq(load_fail("Europe/Berlin", err, sizeof(err)), -ENOENT);
	cdr__tz_free(NULL); /* NULL-safe */
}

/* ---- Asia/Shanghai ---------------------------------------------------- */

Test(shanghai, fixed_plus_eight_today)
{
	cdr__tz *tz = load_ok("Asia/Shanghai");

	/* China Standard Time is UTC+8 = 28800 s, without DST since 1991. */
	cr_assert_eq(cdr__tz_offset_at(tz, 1767225600), 28800); /* 2026-01-01Z */
	cr_assert_eq(cdr__tz_offset_at(tz, 253402300799), 28800); /* 9999-12-31Z */
	/* Local 2026-03-01 08:00:00 (naive 1772352000) is 00:00:00Z =
	 * 1772323200, eight hours earlier. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1772352000), 1772323200);
	/* No change after 2026 (footer "CST-8" has no DST). */
	cr_assert_eq(cdr__tz_next_change(tz, 1767225600), INT64_MAX);
	cdr__tz_free(tz);
}

Test(shanghai, dst_1986_to_1991)
{
	cdr__tz *tz = load_ok("Asia/Shanghai");

	/*
	 * China observed DST 1986-1991. It began Sunday 1986-05-04 at 02:00
	 * CST (+8) = 1986-05-03T18:00:00Z = 515527200 and ended Sunday
	 * 1986-09-14 at 02:00 CDT (+9) = 1986-09-13T17:00:00Z = 527014800.
	 */
	cr_assert_eq(cdr__tz_offset_at(tz, 515527199), 28800);
	cr_assert_eq(cdr__tz_offset_at(tz, 515527200), 32400);
	cr_assert_eq(cdr__tz_offset_at(tz, 527014799), 32400);
	cr_assert_eq(cdr__tz_offset_at(tz, 527014800), 28800);
	cr_assert_eq(cdr__tz_next_change(tz, 504921600), 515527200); /* from 1986-01-01 */
	cr_assert_eq(cdr__tz_next_change(tz, 515527200), 527014800);
	/* Local 1986-05-04 02:30 (naive 515557800) was skipped; shifted
	 * forward an hour it is 03:30 CDT = 18:30Z on the 3rd = 515529000. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 515557800), 515529000);
	/*
	 * The last change: 1991-09-15 02:00 CDT = 1991-09-14T17:00:00Z =
	 * 684867600. After it the offset never changes again.
	 */
	cr_assert_eq(cdr__tz_offset_at(tz, 684867599), 32400);
	cr_assert_eq(cdr__tz_offset_at(tz, 684867600), 28800);
	cr_assert_eq(cdr__tz_next_change(tz, 684867599), 684867600);
	cr_assert_eq(cdr__tz_next_change(tz, 684867600), INT64_MAX);
	cdr__tz_free(tz);
}

/* ---- Europe/Berlin ---------------------------------------------------- */

/*
 * EU rule: CET (+1) to CEST (+2) on the last Sunday of March at 01:00Z,
 * back on the last Sunday of October at 01:00Z. In 2026 those are
 * March 29 (2026-01-01 is a Thursday; March 29 is day 88, 87 days = 12
 * weeks + 3 days later: a Sunday) and October 25.
 * 2026-03-29T01:00:00Z = 1774746000, 2026-10-25T01:00:00Z = 1792890000.
 */
#define BERLIN_SPRING_2026 1774746000
#define BERLIN_FALL_2026 1792890000

Test(berlin, offset_on_both_sides_2026)
{
	cdr__tz *tz = load_ok("Europe/Berlin");

	cr_assert_eq(cdr__tz_offset_at(tz, 1767225600), HOUR); /* 2026-01-01Z */
	cr_assert_eq(cdr__tz_offset_at(tz, BERLIN_SPRING_2026 - 1), HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, BERLIN_SPRING_2026), 2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1782864000), 2 * HOUR); /* 2026-07-01Z */
	cr_assert_eq(cdr__tz_offset_at(tz, BERLIN_FALL_2026 - 1), 2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, BERLIN_FALL_2026), HOUR);
	cdr__tz_free(tz);
}

Test(berlin, gap_shifts_forward)
{
	cdr__tz *tz = load_ok("Europe/Berlin");

	/*
	 * 2026-03-29 the clocks jump 02:00 -> 03:00. Local 02:30 (naive
	 * 1774751400) does not exist; the contract shifts it forward by the
	 * hour to 03:30 CEST = 01:30Z = 1774747800 (the CET reading).
	 */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1774751400), 1774747800);
	/* Local 01:59:59 CET (naive 1774749599) = 00:59:59Z, the last second
	 * before the jump; local 03:00:00 CEST (naive 1774753200) is the
	 * jump itself, 01:00:00Z. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1774749599), BERLIN_SPRING_2026 - 1);
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1774753200), BERLIN_SPRING_2026);
	/* Local 02:00:00 (naive 1774749600), the first skipped second, is
	 * shifted to 03:00 CEST = the jump instant. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1774749600), BERLIN_SPRING_2026);
	cdr__tz_free(tz);
}

Test(berlin, fold_takes_first_occurrence)
{
	cdr__tz *tz = load_ok("Europe/Berlin");

	/*
	 * 2026-10-25 the clocks go 03:00 CEST -> 02:00 CET, so 02:00..02:59
	 * local happen twice. Local 02:30 (naive 1792895400) is first reached
	 * in CEST at 00:30Z = 1792888200 (its second time would be 01:30Z).
	 */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1792895400), 1792888200);
	/* Local 02:00:00 (naive 1792893600): first at 00:00Z = 1792886400. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1792893600), 1792886400);
	/* Local 03:00:00 (naive 1792897200) happens once, in CET: 02:00Z. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1792897200), 1792893600);
	/* Local 01:59:59 (naive 1792893599) once, in CEST: 23:59:59Z on
	 * the 24th = 1792886399. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1792893599), 1792886399);
	cdr__tz_free(tz);
}

Test(berlin, next_change_is_strictly_after)
{
	cdr__tz *tz = load_ok("Europe/Berlin");

	cr_assert_eq(cdr__tz_next_change(tz, 1767225600), BERLIN_SPRING_2026);
	cr_assert_eq(cdr__tz_next_change(tz, BERLIN_SPRING_2026 - 1), BERLIN_SPRING_2026);
	cr_assert_eq(cdr__tz_next_change(tz, BERLIN_SPRING_2026), BERLIN_FALL_2026);
	/*
	 * After the fall: 2027's last Sunday of March. 2027-03-31 is a
	 * Wednesday (2026-03-31 was a Tuesday, plus 365 days = 52 weeks + 1),
	 * so the 28th: 2027-03-28T01:00:00Z = 1774746000 + 364 days * 86400
	 * = 1806195600.
	 */
	cr_assert_eq(cdr__tz_next_change(tz, BERLIN_FALL_2026), 1806195600);
	cdr__tz_free(tz);
}

Test(berlin, footer_rule_beyond_the_table)
{
	cdr__tz *tz = load_ok("Europe/Berlin");

	/*
	 * The file's transitions stop in 2037; the footer
	 * "CET-1CEST,M3.5.0,M10.5.0/3" goes on forever.
	 *
	 * 2300 has the calendar of 1900 (400 years apart), whose last
	 * Sundays of March and October were the 25th and the 28th:
	 * 2300-03-25T01:00:00Z = 10420966800, 2300-10-28T01:00:00Z =
	 * 10439715600.
	 */
	cr_assert_eq(cdr__tz_offset_at(tz, 10413792000), HOUR); /* 2300-01-01Z */
	cr_assert_eq(cdr__tz_offset_at(tz, 10420966799), HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 10420966800), 2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 10439715599), 2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 10439715600), HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 10413792000), 10420966800);
	cr_assert_eq(cdr__tz_next_change(tz, 10420966800), 10439715600);
	/* The 2300 gap: local 02:30 on 03-25 (naive: midnight 10420963200
	 * + 9000 = 10420972200) -> 01:30Z = 10420968600. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 10420972200), 10420968600);

	/*
	 * 9999 has the calendar of 1999 (8000 years), whose last Sundays
	 * were March 28 and October 31. 1999-03-28T01:00Z = 922582800, plus
	 * 8000 years = 253378198800; 1999-10-31T01:00Z = 941331600 ->
	 * 253396947600.
	 */
	cr_assert_eq(cdr__tz_offset_at(tz, 253378198799), HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 253378198800), 2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 253396947599), 2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 253396947600), HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 253370764800), 253378198800); /* 9999-01-01 */
	/* A call running past 9999-12-31: the next change is in 10000,
	 * which has 2000's calendar; the last Sunday of March 2000 was the
	 * 26th. 2000-03-26T01:00Z = 954032400, + 252455616000 (8000 years)
	 * = 253409648400. */
	cr_assert_eq(cdr__tz_next_change(tz, 253402300799), 253409648400);

	/* 10100 has 2100's calendar; 2100-03-28 and 2100-10-31 are Sundays:
	 * 2100-03-28T01:00Z = 4109878800 -> 256565494800. */
	cr_assert_eq(cdr__tz_offset_at(tz, 256565494799), HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 256565494800), 2 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 256565494800), 256584243600);
	cdr__tz_free(tz);
}

Test(berlin, two_changes_a_year_to_2300)
{
	cdr__tz *tz = load_ok("Europe/Berlin");
	int64_t t = 1767225600; /* 2026-01-01Z */
	int32_t off = cdr__tz_offset_at(tz, t);
	unsigned changes = 0;

	/*
	 * 2026 .. 2299 is 274 years of the EU rule, two changes each: 548,
	 * alternating +1/+2, across the table's end (2201) without a seam.
	 * 10413792000 = 2300-01-01T00:00:00Z.
	 */
	for (;;) {
		const int64_t next = cdr__tz_next_change(tz, t);

		if (next >= 10413792000)
			break;
		cr_assert_gt(next, t);
		const int32_t now = cdr__tz_offset_at(tz, next);
		cr_assert_eq(cdr__tz_offset_at(tz, next - 1), off);
		cr_assert_eq(now, off == HOUR ? 2 * HOUR : HOUR, "at %lld", (long long)next);
		off = now;
		t = next;
		changes++;
	}
	cr_assert_eq(changes, 548);
	/* The seam itself: from 2200-12-31Z (7289568000) the next change is
	 * 2201-03-29T01:00Z = 7297174800 (2201's calendar is 1801's; March
	 * 29, 1801 was a Sunday, the last of that March). */
	cr_assert_eq(cdr__tz_next_change(tz, 7289568000), 7297174800);
	cdr__tz_free(tz);
}

/* ---- America/New_York ------------------------------------------------- */

Test(new_york, dst_2026)
{
	cdr__tz *tz = load_ok("America/New_York");

	/*
	 * US rule: second Sunday of March 02:00 EST (-5) and first Sunday of
	 * November 02:00 EDT (-4). 2026-03-01 is a Sunday, so March 8:
	 * 07:00Z = 1772953200; 2026-11-01 is a Sunday: 06:00Z = 1793512800.
	 */
	cr_assert_eq(cdr__tz_offset_at(tz, 1772953199), -5 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1772953200), -4 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1793512799), -4 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1793512800), -5 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 1767225600), 1772953200);
	cr_assert_eq(cdr__tz_next_change(tz, 1772953200), 1793512800);
	/* Gap: local 03-08 02:30 (naive 1772937000) -> 03:30 EDT = 07:30Z =
	 * 1772955000. Fold: local 11-01 01:30 (naive 1793496600) first in
	 * EDT -> 05:30Z = 1793511000. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1772937000), 1772955000);
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1793496600), 1793511000);
	cdr__tz_free(tz);
}

/* ---- Australia/Sydney ------------------------------------------------- */

Test(sydney, dst_spans_the_new_year)
{
	cdr__tz *tz = load_ok("Australia/Sydney");

	/*
	 * AEST +10, AEDT +11 from the first Sunday of October 02:00 AEST to
	 * the first Sunday of April 03:00 AEDT: summer is January.
	 */
	cr_assert_eq(cdr__tz_offset_at(tz, 1767139200), 11 * HOUR); /* 2025-12-31Z */
	cr_assert_eq(cdr__tz_offset_at(tz, 1767225600), 11 * HOUR); /* 2026-01-01Z */
	cr_assert_eq(cdr__tz_offset_at(tz, 1782864000), 10 * HOUR); /* 2026-07-01Z */
	/*
	 * 2026-04-05 is the first Sunday of April (day 95; 94 days after
	 * Thursday 01-01 is a Sunday): 03:00 AEDT = 04-04T16:00Z =
	 * 1775318400. 2026-10-04 is the first Sunday of October: 02:00 AEST
	 * = 10-03T16:00Z = 1791043200.
	 */
	cr_assert_eq(cdr__tz_next_change(tz, 1767139200), 1775318400);
	cr_assert_eq(cdr__tz_offset_at(tz, 1775318399), 11 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1775318400), 10 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 1775318400), 1791043200);
	cr_assert_eq(cdr__tz_offset_at(tz, 1791043199), 10 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1791043200), 11 * HOUR);
	/* Gap: local 10-04 02:30 (naive 1791081000) -> 03:30 AEDT = 16:30Z
	 * on the 3rd = 1791045000. Fold: local 04-05 02:30 (naive
	 * 1775356200) first in AEDT -> 15:30Z on the 4th = 1775316600. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1791081000), 1791045000);
	cr_assert_eq(cdr__tz_local_to_utc(tz, 1775356200), 1775316600);
	cdr__tz_free(tz);
}

Test(sydney, footer_rule_in_2300)
{
	cdr__tz *tz = load_ok("Australia/Sydney");

	/*
	 * Footer "AEST-10AEDT,M10.1.0,M4.1.0/3". 2300 has 1900's calendar:
	 * 1900-04-01 and 1900-10-07 were Sundays. So 2300-04-01 03:00 AEDT =
	 * 03-31T16:00Z = 10421539200 and 2300-10-07 02:00 AEST = 10-06T16:00Z
	 * = 10437868800. New Year 2300 (10413792000) is in summer time.
	 */
	cr_assert_eq(cdr__tz_offset_at(tz, 10413792000), 11 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 10413792000), 10421539200);
	cr_assert_eq(cdr__tz_offset_at(tz, 10421539200), 10 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 10421539200), 10437868800);
	cr_assert_eq(cdr__tz_offset_at(tz, 10437868800), 11 * HOUR);
	cdr__tz_free(tz);
}

/* ---- POSIX footers and file versions ---------------------------------- */

Test(footer, v1_file_without_footer)
{
	static const int64_t times[] = {0, 86400};
	static const unsigned char idx[] = {1, 2};
	static const int32_t offs[] = {0, HOUR, -2 * HOUR};
	struct zbuf z;

	use_temp_tzdir();
	make_tzif(&z, 0, 2, times, idx, 3, offs, NULL);
	write_zone("V1", z.b, z.n);
	cdr__tz *tz = load_ok("V1");

	/* Type 0 (UTC) before 1970, +1 h from 0, -2 h from 86400 on, and
	 * with no footer the last type holds forever. */
	cr_assert_eq(cdr__tz_offset_at(tz, -1), 0);
	cr_assert_eq(cdr__tz_offset_at(tz, 0), HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 86400), -2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 253402300799), -2 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, -100), 0);
	cr_assert_eq(cdr__tz_next_change(tz, 0), 86400);
	cr_assert_eq(cdr__tz_next_change(tz, 86400), INT64_MAX);
	/* Local 1970-01-02 00:30 (naive 88200) with -2 h: the first
	 * candidate +1 h gives 84600 < 86400, inside the +1 h stretch: a
	 * fold (the clock fell 3 h), first occurrence 84600. */
	cr_assert_eq(cdr__tz_local_to_utc(tz, 88200), 84600);
	cdr__tz_free(tz);
}

Test(footer, transitions_that_keep_the_offset_are_not_changes)
{
	/* Types 1 and 2 both +1 h (think CET renamed): one change only. */
	static const int64_t times[] = {1000, 2000, 3000};
	static const unsigned char idx[] = {1, 2, 1};
	static const int32_t offs[] = {0, HOUR, HOUR};
	struct zbuf z;

	use_temp_tzdir();
	make_tzif(&z, '2', 3, times, idx, 3, offs, "ABC-1");
	write_zone("Renamed", z.b, z.n);
	cdr__tz *tz = load_ok("Renamed");

	cr_assert_eq(cdr__tz_next_change(tz, 0), 1000);
	cr_assert_eq(cdr__tz_next_change(tz, 1000), INT64_MAX);
	cdr__tz_free(tz);
}

Test(footer, quoted_names_and_minutes)
{
	use_temp_tzdir();
	/* POSIX offsets are west-positive: "-5:45" is UTC+5:45 = 20700 s
	 * (Nepal); "-0:15:30" is +930 s; "<-03>3" is UTC-3. */
	write_footer_zone("Nepal", 0, "<+0545>-5:45");
	write_footer_zone("Seconds", 0, "ABC-0:15:30");
	write_footer_zone("Minus3", 0, "<-03>3");
	cdr__tz *np = load_ok("Nepal");
	cdr__tz *sec = load_ok("Seconds");
	cdr__tz *m3 = load_ok("Minus3");

	cr_assert_eq(cdr__tz_offset_at(np, -2208988800), 20700);  /* 1900 */
	cr_assert_eq(cdr__tz_offset_at(np, 256565494800), 20700); /* 10100 */
	cr_assert_eq(cdr__tz_next_change(np, 0), INT64_MAX);
	cr_assert_eq(cdr__tz_offset_at(sec, 0), 930);
	cr_assert_eq(cdr__tz_offset_at(m3, 0), -3 * HOUR);
	/* Local 2026-01-01 00:00 (naive 1767225600) at UTC-3 is 03:00Z. */
	cr_assert_eq(cdr__tz_local_to_utc(m3, 1767225600), 1767225600 + 3 * HOUR);
	cdr__tz_free(np);
	cdr__tz_free(sec);
	cdr__tz_free(m3);
}

Test(footer, julian_and_zero_based_days)
{
	use_temp_tzdir();
	/*
	 * "AAA3BBB2,J60,300": UTC-3, daylight UTC-2 from J60 (March 1 in
	 * every year: J never counts Feb 29) at 02:00 AAA = 05:00Z, to
	 * zero-based day 300 at 02:00 BBB = 04:00Z. Day 300 is Oct 27 in a
	 * leap year (Oct 1 is day 274) and Oct 28 otherwise (day 273).
	 */
	write_footer_zone("Julian", -3 * HOUR, "AAA3BBB2,J60,300");
	cdr__tz *tz = load_ok("Julian");

	/* 2024 (leap): 03-01T05:00Z = 1709269200, 10-27T04:00Z = 1730001600. */
	cr_assert_eq(cdr__tz_offset_at(tz, 1709269199), -3 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1709269200), -2 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 1709269200), 1730001600);
	/* 2025: 03-01T05:00Z = 1740805200, 10-28T04:00Z = 1761624000. */
	cr_assert_eq(cdr__tz_next_change(tz, 1730001600), 1740805200);
	cr_assert_eq(cdr__tz_next_change(tz, 1740805200), 1761624000);
	/* 2300 (not leap, past the table): 10418907600 and 10439726400. */
	cr_assert_eq(cdr__tz_next_change(tz, 10413792000), 10418907600);
	cr_assert_eq(cdr__tz_next_change(tz, 10418907600), 10439726400);
	/* 2400 (leap): 03-01T05:00Z = 13574667600, 10-27T04:00Z = 13595400000. */
	cr_assert_eq(cdr__tz_offset_at(tz, 13574667600), -2 * HOUR);
	cr_assert_eq(cdr__tz_next_change(tz, 13574667600), 13595400000);
	cdr__tz_free(tz);
}

Test(footer, negative_and_over_24h_times)
{
	/*
	 * v3 footers from tzdata itself. America/Nuuk "<-02>2<-01>,
	 * M3.5.0/-1,M10.5.0/0": starts on the last Sunday of March at -1:00
	 * local (Saturday 23:00 at -2) = 01:00Z, like the EU. In 2300 (1900's
	 * calendar) that is 03-25T01:00Z = 10420966800; it ends 10-28 00:00
	 * at -1 = 01:00Z = 10439715600.
	 */
	cdr__tz *nuuk = load_ok("America/Nuuk");

	cr_assert_eq(cdr__tz_offset_at(nuuk, 10420966799), -2 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(nuuk, 10420966800), -HOUR);
	cr_assert_eq(cdr__tz_next_change(nuuk, 10420966800), 10439715600);
	cdr__tz_free(nuuk);

	/*
	 * Asia/Jerusalem "IST-2IDT,M3.4.4/26,M10.5.0": the fourth Thursday of
	 * March at 26:00, i.e. Friday 02:00 IST (+2) = Friday 00:00Z. March
	 * 2300 has Thursdays 1, 8, 15, 22 (1900's calendar), so Friday
	 * 03-23T00:00Z = 10420790400; it ends Sunday 10-28 02:00 IDT (+3) =
	 * 10-27T23:00Z = 10439708400.
	 */
	cdr__tz *jlm = load_ok("Asia/Jerusalem");

	cr_assert_eq(cdr__tz_next_change(jlm, 10413792000), 10420790400);
	cr_assert_eq(cdr__tz_offset_at(jlm, 10420790400), 3 * HOUR);
	cr_assert_eq(cdr__tz_next_change(jlm, 10420790400), 10439708400);
	cr_assert_eq(cdr__tz_offset_at(jlm, 10439708400), 2 * HOUR);
	cdr__tz_free(jlm);
}

Test(footer, permanent_dst_is_no_change)
{
	use_temp_tzdir();
	/*
	 * RFC 8536's way of writing all-year DST: DST starts Jan 1 00:00 EST
	 * and ends Dec 31 25:00 EDT, which is the next Jan 1 00:00 EST, the
	 * instant it starts again. So UTC-4 always and never a change.
	 */
	write_footer_zone("AllYear", -4 * HOUR, "EST5EDT,0/0,J365/25");
	cdr__tz *tz = load_ok("AllYear");

	cr_assert_eq(cdr__tz_offset_at(tz, 1767225600), -4 * HOUR);   /* 2026 */
	cr_assert_eq(cdr__tz_offset_at(tz, 1798761600), -4 * HOUR);   /* 2027-01-01Z */
	/* 2027-01-01T05:00Z = 1798779600: the instant DST ends and restarts. */
	cr_assert_eq(cdr__tz_offset_at(tz, 1798779599), -4 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 1798779600), -4 * HOUR);
	cr_assert_eq(cdr__tz_offset_at(tz, 10413792000), -4 * HOUR);  /* 2300 */
	cr_assert_eq(cdr__tz_next_change(tz, 1767225600), INT64_MAX);
	cr_assert_eq(cdr__tz_next_change(tz, 10413792000), INT64_MAX);
	cdr__tz_free(tz);
}

Test(footer, dst_without_rule_uses_us_rule)
{
	use_temp_tzdir();
	/* "EST5EDT" with no dates: POSIX leaves the rule open; tzcode uses
	 * the US one (M3.2.0,M11.1.0), so it matches New York in 2026. */
	write_footer_zone("NoRule", -5 * HOUR, "EST5EDT");
	cdr__tz *tz = load_ok("NoRule");

	cr_assert_eq(cdr__tz_next_change(tz, 1767225600), 1772953200);
	cr_assert_eq(cdr__tz_next_change(tz, 1772953200), 1793512800);
	cdr__tz_free(tz);
}

/* ---- errors and malformed files -------------------------------------- */

Test(errors, unknown_zone)
{
	char err[128];

	cr_assert_eq(load_fail("Mars/Base", err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "unknown time zone 'Mars/Base'");
	/* A directory of zones is not a zone. */
	cr_assert_eq(load_fail("Europe", err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "unknown time zone 'Europe'");
	cr_assert_eq(load_fail("Europe/Berlin/x", err, sizeof(err)), -ENOENT);
}

Test(errors, names_that_leave_the_zone_directory)
{
	static const char *const bad[] = {
		"../../etc/passwd", "/etc/passwd", "Europe/../../etc/passwd",
		"Europe/..", "..", "./Europe/Berlin", ".hidden", "",
		"Europe/Berlin\n", "Europe/ Berlin", "Europe\\Berlin",
	};
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(load_fail(bad[i], err, sizeof(err)), -EINVAL, "%s", bad[i]);
		cr_assert(strncmp(err, "invalid time zone name '", 24) == 0, "%s", err);
		cr_assert_null(strchr(err, '\n'), "message must be one line");
	}
	cr_assert_eq(load_fail(NULL, err, sizeof(err)), -EINVAL);
}

Test(errors, message_is_truncated_and_optional)
{
	char err[10];
	cdr__tz *tz = NULL;

	load_fail("Mars/Base", err, sizeof(err));
	cr_assert_str_eq(err, "unknown t"); /* 9 bytes and the NUL */
	cr_assert_eq(cdr__tz_load(&tz, "Mars/Base", NULL, 0), -ENOENT);
}

Test(errors, garbage_file)
{
	char err[256];
	static const char text[] = "hello, this is not a zone\n";

	use_temp_tzdir();
	write_zone("Garbage", text, sizeof(text) - 1);
	write_zone("Empty", "", 0);
	cr_assert_eq(load_fail("Garbage", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not a TZif file") != NULL, "%s", err);
	cr_assert(strstr(err, "'Garbage'") != NULL, "%s", err);
	cr_assert_eq(load_fail("Empty", err, sizeof(err)), -EINVAL);
}

Test(errors, every_truncation_of_a_real_file)
{
	static unsigned char buf[65536];
	char err[256];

	/* Every proper prefix of Europe/Berlin lacks at least the footer's
	 * final newline, so each must be rejected, none may crash. */
	const size_t len = read_system_zone("Europe/Berlin", buf, sizeof(buf));
	use_temp_tzdir();
	for (size_t cut = 0; cut < len; cut++) {
		write_zone("Cut", buf, cut);
		cr_assert_eq(load_fail("Cut", err, sizeof(err)), -EINVAL, "cut at %zu", cut);
	}
	/* The whole file still loads from the temporary directory. */
	write_zone("Cut", buf, len);
	cdr__tz *tz = load_ok("Cut");
	cr_assert_eq(cdr__tz_offset_at(tz, BERLIN_SPRING_2026), 2 * HOUR);
	cdr__tz_free(tz);
}

/* Corrupt one thing in an otherwise good v2 file; expect -EINVAL. */
static void expect_corrupt(const char *what, const struct zbuf *z)
{
	char err[256];

	write_zone("Bad", z->b, z->n);
	cr_assert_eq(load_fail("Bad", err, sizeof(err)), -EINVAL, "%s", what);
	cr_assert(strstr(err, "'Bad'") != NULL, "%s: %s", what, err);
}

Test(errors, malformed_headers_and_data)
{
	static const int64_t times[] = {100, 200};
	static const unsigned char idx[] = {1, 0};
	static const int32_t offs[] = {0, HOUR};
	struct zbuf z;
	/* Offsets in the 64-bit block: its header starts after the slim v1
	 * block (44 + 6 + 4 bytes); counts at +32 (timecnt) and +28 (leap). */
	const size_t h2 = 44 + 6 + 4;

	use_temp_tzdir();
	make_tzif(&z, '2', 2, times, idx, 2, offs, "ABC0");
	write_zone("Good", z.b, z.n);
	cdr__tz_free(load_ok("Good"));

	make_tzif(&z, '2', 2, times, idx, 2, offs, "ABC0");
	z.b[0] = 'X';
	expect_corrupt("bad magic", &z);

	make_tzif(&z, '2', 2, times, idx, 2, offs, "ABC0");
	z.b[4] = '1';
	expect_corrupt("version '1' does not exist", &z);

	make_tzif(&z, '2', 2, times, idx, 2, offs, "ABC0");
	z.b[h2 + 32] = 0xff; /* timecnt ~4e9: far beyond the file */
	expect_corrupt("huge timecnt", &z);

	make_tzif(&z, '2', 2, times, idx, 2, offs, "ABC0");
	z.b[h2 + 31] = 1; /* leapcnt 1: a "right/" zone */
	expect_corrupt("leap seconds", &z);
	{
		char err[256];
		load_fail("Bad", err, sizeof(err));
		cr_assert(strstr(err, "leap-second") != NULL, "%s", err);
	}

	static const int64_t unsorted[] = {200, 100};
	make_tzif(&z, '2', 2, unsorted, idx, 2, offs, "ABC0");
	expect_corrupt("transitions out of order", &z);

	static const unsigned char bad_idx[] = {1, 7};
	make_tzif(&z, '2', 2, times, bad_idx, 2, offs, "ABC0");
	expect_corrupt("type index out of range", &z);

	static const int32_t huge[] = {0, 30 * HOUR};
	make_tzif(&z, '2', 2, times, idx, 2, huge, "ABC0");
	expect_corrupt("offset of 30 h", &z);

	make_tzif(&z, '2', 2, times, idx, 2, offs, "ABC0");
	z.n--; /* drop the footer's closing newline */
	expect_corrupt("unterminated footer", &z);
}

Test(errors, malformed_footers)
{
	static const char *const bad[] = {
		"CET-1CEST,M3.5.0",	   /* no end date */
		"XX0",			   /* name shorter than 3 */
		"CET",			   /* no offset */
		"CET-25",		   /* offset hours > 24 */
		"CET-1CEST,M13.5.0,M10.5.0", /* month 13 */
		"CET-1CEST,M3.6.0,M10.5.0",  /* week 6 */
		"CET-1CEST,M3.5.7,M10.5.0",  /* weekday 7 */
		"CET-1CEST,J0,J100",	   /* J counts from 1 */
		"CET-1CEST,M3.5.0/168,M10.5.0", /* time past 167 h */
		"<+01-1",		   /* unterminated <name> */
		"CET-1CEST,M3.5.0,M10.5.0x", /* trailing junk */
	};

	use_temp_tzdir();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256];

		write_footer_zone("BadFooter", 0, bad[i]);
		cr_assert_eq(load_fail("BadFooter", err, sizeof(err)), -EINVAL, "%s", bad[i]);
		cr_assert(strstr(err, "POSIX TZ string") != NULL, "%s: %s", bad[i], err);
	}
}

/* ---- threads ---------------------------------------------------------- */

struct worker {
	const cdr__tz *berlin, *ny;
	int failures;
};

static void *lookups(void *arg)
{
	struct worker *w = arg;

	/* The 2026 figures of the Berlin and New York tests above, over and
	 * over, from several threads on the same two zones. */
	for (int i = 0; i < 20000; i++) {
		w->failures += cdr__tz_offset_at(w->berlin, BERLIN_SPRING_2026) != 2 * HOUR;
		w->failures += cdr__tz_local_to_utc(w->berlin, 1774751400) != 1774747800;
		w->failures += cdr__tz_next_change(w->ny, 1767225600) != 1772953200;
		w->failures += cdr__tz_offset_at(w->ny, 10413792000) != -5 * HOUR;
	}
	return NULL;
}

Test(threads, shared_zones_answer_the_same)
{
	cdr__tz *berlin = load_ok("Europe/Berlin");
	cdr__tz *ny = load_ok("America/New_York");
	pthread_t th[4];
	struct worker w[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){berlin, ny, 0};
		cr_assert_eq(pthread_create(&th[i], NULL, lookups, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(th[i], NULL), 0);
		cr_assert_eq(w[i].failures, 0);
	}
	cdr__tz_free(berlin);
	cdr__tz_free(ny);
}

/* ---- windows ------------------------------------------------------------ */

/* Compare a window's answers with the zone's own: instants and local times
 * on a grid over the window and a margin, and every second near each
 * change the zone makes in it (where gaps and folds are). */
static void window_agrees(const cdr__tz *tz, int64_t from, int64_t to)
{
	cdr__tz_win w;
	cdr__tz_win_init(&w, tz, from, to);
	cr_assert_leq(w.lo, from);
	const int64_t a = from - 3 * 86400, b = to + 3 * 86400;
	for (int64_t t = a; t < b; t += 1793) {
		cr_assert_eq(cdr__tz_win_offset(&w, t), cdr__tz_offset_at(tz, t),
			     "%s offset at %lld", cdr__tz_name(tz), (long long)t);
		cr_assert_eq(cdr__tz_win_local_to_utc(&w, t),
			     cdr__tz_local_to_utc(tz, t), "%s local %lld",
			     cdr__tz_name(tz), (long long)t);
	}
	for (int64_t c = cdr__tz_next_change(tz, a); c < b;
	     c = cdr__tz_next_change(tz, c)) {
		const int32_t o0 = cdr__tz_offset_at(tz, c - 1),
			      o1 = cdr__tz_offset_at(tz, c);
		for (int64_t d = -2 * HOUR - 2; d <= 2 * HOUR + 2; d++) {
			const int64_t t = c + d;
			cr_assert_eq(cdr__tz_win_offset(&w, t),
				     cdr__tz_offset_at(tz, t), "%s at %lld",
				     cdr__tz_name(tz), (long long)t);
			const int64_t l[2] = {c + o0 + d, c + o1 + d};
			for (int k = 0; k < 2; k++)
				cr_assert_eq(cdr__tz_win_local_to_utc(&w, l[k]),
					     cdr__tz_local_to_utc(tz, l[k]),
					     "%s local %lld", cdr__tz_name(tz),
					     (long long)l[k]);
		}
	}
}

/* Days from 1970-01-01 to the first of a month (y >= 1970). */
static int64_t month_day(int y, int m)
{
	static const int cum[12] = {0, 31, 59, 90, 120, 151,
				    181, 212, 243, 273, 304, 334};
	int64_t yb = y - 1;
	int64_t d = yb * 365 + yb / 4 - yb / 100 + yb / 400 - 719162;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d + cum[m - 1] + (m > 2 && leap);
}

Test(window, answers_as_the_zone_does)
{
	static const char *const zones[] = {
		"UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York",
		"Australia/Sydney", "Australia/Lord_Howe", "Africa/Casablanca",
		"America/Sao_Paulo",
	};
	static const int months[][2] = {
		{2026, 1}, {2026, 3}, {2026, 4}, {2026, 10}, {2026, 11},
		{2026, 12}, {1986, 5}, {1991, 9}, {2300, 3}, {2300, 10},
		{1970, 1}, {2019, 5},
	};
	for (size_t z = 0; z < sizeof(zones) / sizeof(*zones); z++) {
		cdr__tz *tz = load_ok(zones[z]);
		for (size_t m = 0; m < sizeof(months) / sizeof(*months); m++) {
			int64_t d0 = month_day(months[m][0], months[m][1]);
			/* a period's window: about two months either side */
			window_agrees(tz, (d0 - 62) * 86400, (d0 + 93) * 86400);
		}
		/* More changes than a window holds: it stops short, and
		 * what lies beyond is asked of the zone. */
		window_agrees(tz, month_day(2026, 1) * 86400,
			      month_day(2031, 1) * 86400);
		cdr__tz_free(tz);
	}
}

/* Not vacuous: the window answers the period itself, and stops where a
 * zone changes too often. */
Test(window, covers_the_period)
{
	cdr__tz *sh = load_ok("Asia/Shanghai"), *be = load_ok("Europe/Berlin");
	const int64_t from = (month_day(2026, 3) - 62) * 86400,
		      to = (month_day(2026, 4) + 62) * 86400;
	cdr__tz_win w;
	cdr__tz_win_init(&w, sh, from, to);
	cr_assert(w.lo == from && w.hi == to && w.llo < w.lhi);
	cr_assert_eq(w.end[0], INT64_MAX); /* one stretch: +08:00 */
	cr_assert_eq(w.off[0], 8 * HOUR);
	cdr__tz_win_init(&w, be, from, to);
	cr_assert(w.lo == from && w.hi == to);
	/* 2026-03-29 01:00Z, then +02:00 to the end */
	cr_assert_eq(w.end[0], BERLIN_SPRING_2026);
	cr_assert_eq(w.off[0], HOUR);
	cr_assert_eq(w.off[1], 2 * HOUR);
	cr_assert_eq(w.end[1], INT64_MAX);
	/* the gap: local 02:00..03:00 is shifted forward, so local times
	 * below 03:00 local (01:00Z + 2 h) still take +01:00 */
	cr_assert_eq(w.lend[0], BERLIN_SPRING_2026 + 2 * HOUR);
	/* ten years of Berlin hold 20 changes: the window stops short */
	cdr__tz_win_init(&w, be, month_day(2026, 1) * 86400,
			 month_day(2036, 1) * 86400);
	cr_assert_lt(w.hi, month_day(2036, 1) * 86400);
	cr_assert_eq(w.end[CDR_TZ_WIN_MAX - 1], INT64_MAX);
	cdr__tz_free(sh);
	cdr__tz_free(be);
}
