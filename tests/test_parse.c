/*
 * test_parse.c - the CDR line parser (contract section 3 and step 1 of
 * section 5): field forms, and the first bad field from the left decides
 * the malformed:<column> reason.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "format.h"
#include "internal.h"

static int parse(const char *s, cdr__rec *r)
{
	return cdr__parse_line(s, strlen(s), r);
}

Test(parse, voice_record_fields)
{
	cdr__rec r;
	cr_assert_eq(parse("c1,+8613800000001,voice,2026-10-05 08:00:00,"
			   "+85223456789,300,0", &r), CDR_OK);
	cr_assert_eq(r.id_len, 2);
	cr_assert_eq(r.sub_len, 13); /* '+' dropped */
	cr_assert_eq(memcmp(r.sub, "8613800000001", 13), 0);
	cr_assert_eq(r.service, CDR_VOICE);
	cr_assert_eq(r.start_kind, CDR_START_LOCAL);
	/* 2026-10-05 is day 20731 (20727 is 10-01); + 8 h */
	cr_assert_eq(r.start, 20731LL * 86400 + 8 * 3600);
	cr_assert_eq(r.dest_len, 11);
	cr_assert_eq(memcmp(r.dest, "85223456789", 11), 0);
	cr_assert_eq(r.duration, 300);
	cr_assert_eq(r.volume, 0);
}

Test(parse, start_forms)
{
	cdr__rec r;
	/* 'T' form is naive local too */
	cr_assert_eq(parse("a,1,sms,2026-10-05T08:00:00,2,0,0", &r), CDR_OK);
	cr_assert_eq(r.start_kind, CDR_START_LOCAL);
	/* Z: absolute. 2026-10-05 08:00Z = 20731*86400 + 28800 = 1791187200 */
	cr_assert_eq(parse("a,1,sms,2026-10-05 08:00:00Z,2,0,0", &r), CDR_OK);
	cr_assert_eq(r.start_kind, CDR_START_UTC);
	cr_assert_eq(r.start, 1791187200LL);
	/* +08:00 is 8 hours ahead of UTC: 08:00+08:00 = 00:00Z */
	cr_assert_eq(parse("a,1,sms,2026-10-05T08:00:00+08:00,2,0,0", &r), CDR_OK);
	cr_assert_eq(r.start, 1791187200LL - 28800);
	/* -04:30: 08:00-04:30 = 12:30Z */
	cr_assert_eq(parse("a,1,sms,2026-10-05T08:00:00-04:30,2,0,0", &r), CDR_OK);
	cr_assert_eq(r.start, 1791187200LL + 16200);
	/* Unix seconds */
	cr_assert_eq(parse("a,1,sms,1791187200,2,0,0", &r), CDR_OK);
	cr_assert_eq(r.start_kind, CDR_START_UTC);
	cr_assert_eq(r.start, 1791187200LL);
	/* The last instant allowed: 9999-12-31T23:59:59Z = 253402300799 */
	cr_assert_eq(parse("a,1,sms,253402300799,2,0,0", &r), CDR_OK);
	cr_assert_eq(parse("a,1,sms,9999-12-31T23:59:59Z,2,0,0", &r), CDR_OK);
	cr_assert_eq(r.start, 253402300799LL);
}

Test(parse, malformed_start)
{
	const char *bad[] = {
		"a,1,sms,253402300800,2,0,0",	       /* after 9999 */
		"a,1,sms,-1,2,0,0",		       /* before 1970 */
		"a,1,sms,2026-13-45 25:61:00,2,0,0",   /* impossible date */
		"a,1,sms,2026-02-29 10:00:00,2,0,0",   /* not a leap year */
		"a,1,sms,2026-10-05 08:00,2,0,0",      /* no seconds */
		"a,1,sms,2026-10-05 08:00:00+8,2,0,0", /* offset not HH:MM */
		"a,1,sms,2026-10-05 08:00:00+24:00,2,0,0",
		"a,1,sms,1969-12-31T23:59:59Z,2,0,0",
		"a,1,sms,,2,0,0",
		"a,1,sms,12e5,2,0,0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cdr__rec r;
		cr_assert_eq(parse(bad[i], &r), CDR_R_START, "%s", bad[i]);
	}
}

Test(parse, first_bad_field_from_the_left_wins)
{
	cdr__rec r;
	/* every field bad: columns are fine, id is first */
	cr_assert_eq(parse(",x,fax,never,abc,-1,-1", &r), CDR_R_ID);
	cr_assert_eq(parse("a,x,fax,never,abc,-1,-1", &r), CDR_R_SUBSCRIBER);
	cr_assert_eq(parse("a,1,fax,never,abc,-1,-1", &r), CDR_R_SERVICE);
	cr_assert_eq(parse("a,1,voice,never,abc,-1,-1", &r), CDR_R_START);
	cr_assert_eq(parse("a,1,voice,0,abc,-1,-1", &r), CDR_R_DESTINATION);
	cr_assert_eq(parse("a,1,voice,0,12,-1,-1", &r), CDR_R_DURATION);
	cr_assert_eq(parse("a,1,voice,0,12,1,-1", &r), CDR_R_VOLUME);
	cr_assert_eq(parse("a,1,voice,0,12,1,1", &r), CDR_OK);
}

Test(parse, column_count)
{
	cdr__rec r;
	cr_assert_eq(parse("a,1,voice,0,12,1", &r), CDR_R_COLUMNS);
	cr_assert_eq(parse("a,1,voice,0,12,1,1,", &r), CDR_R_COLUMNS);
	cr_assert_eq(parse("", &r), CDR_R_COLUMNS);
	char many[4000];
	memset(many, ',', sizeof(many) - 1);
	many[sizeof(many) - 1] = '\0';
	cr_assert_eq(parse(many, &r), CDR_R_COLUMNS);
}

Test(parse, fields)
{
	cdr__rec r;
	char id65[80];
	memset(id65, 'x', 65);
	strcpy(id65 + 65, ",1,sms,0,2,0,0");
	cr_assert_eq(parse(id65, &r), CDR_R_ID); /* ids are 1-64 bytes */
	cr_assert_eq(parse(id65 + 1, &r), CDR_OK);
	cr_assert_eq(parse("a,+,sms,0,2,0,0", &r), CDR_R_SUBSCRIBER);
	cr_assert_eq(parse("a,1 2,sms,0,2,0,0", &r), CDR_R_SUBSCRIBER);
	cr_assert_eq(parse("a,1,Voice,0,2,0,0", &r), CDR_R_SERVICE);
	/* '*' and '#' are ordinary destination characters */
	cr_assert_eq(parse("a,1,voice,0,*#06#,0,0", &r), CDR_OK);
	cr_assert_eq(parse("a,1,voice,0,,0,0", &r), CDR_R_DESTINATION);
	cr_assert_eq(parse("a,1,sms,0,+,0,0", &r), CDR_R_DESTINATION);
	/* data: any text or nothing */
	cr_assert_eq(parse("a,1,data,0,cmnet.apn,0,100", &r), CDR_OK);
	cr_assert_eq(parse("a,1,data,0,,0,100", &r), CDR_OK);
	/* bounds: < 10^12; ignored columns must still be integers */
	cr_assert_eq(parse("a,1,voice,0,2,999999999999,0", &r), CDR_OK);
	cr_assert_eq(parse("a,1,voice,0,2,1000000000000,0", &r), CDR_R_DURATION);
	cr_assert_eq(parse("a,1,voice,0,2,99999999999999999999999,0", &r),
		     CDR_R_DURATION); /* overflows 64 bits: rejected */
	cr_assert_eq(parse("a,1,sms,0,2,1.5,0", &r), CDR_R_DURATION);
	cr_assert_eq(parse("a,1,sms,0,2,0,", &r), CDR_R_VOLUME);
	cr_assert_eq(parse("a,1,voice,0,2,0,x", &r), CDR_R_VOLUME);
}

/*
 * The one-walk path (format_native.c) must accept only lines the checked
 * path accepts, filled exactly alike, and leave every reason to it. Each
 * line below is mutated at every byte (replaced by each byte of `alphabet`,
 * deleted, or preceded by one), and each mutant parsed both ways in an
 * exactly sized buffer, so under ASan a wide load past the line fails too.
 */
static void same_both_ways(const char *line, size_t n, unsigned *fast_ok)
{
	char *p = malloc(n ? n : 1);
	cr_assert(p);
	memcpy(p, line, n);
	cdr__rec a, b;
	memset(&a, 0x55, sizeof(a));
	memset(&b, 0xAA, sizeof(b));
	int ra = cdr__parse_line(p, n, &a), rb = cdr__parse_line_checked(p, n, &b);
	cr_assert_eq(ra, rb, "reason %d against %d: '%.*s'", ra, rb, (int)n, p);
	if (ra == CDR_OK) {
		(*fast_ok)++;
		cr_assert(a.line == b.line && a.line_len == b.line_len &&
			  a.id_line == b.id_line, "%.*s", (int)n, p);
		cr_assert(a.id == b.id && a.id_len == b.id_len && a.key == b.key &&
			  a.key_len == b.key_len, "id: %.*s", (int)n, p);
		cr_assert(a.sub == b.sub && a.sub_len == b.sub_len &&
			  a.subk[0] == b.subk[0] && a.subk[1] == b.subk[1],
			  "subscriber: %.*s", (int)n, p);
		cr_assert(a.service == b.service && a.start_kind == b.start_kind &&
			  a.start == b.start, "start: %.*s", (int)n, p);
		cr_assert(a.dest == b.dest && a.dest_len == b.dest_len,
			  "destination: %.*s", (int)n, p);
		cr_assert(a.duration == b.duration && a.volume == b.volume,
			  "quantities: %.*s", (int)n, p);
	}
	free(p);
}

Test(parse, one_walk_path_agrees_with_checked_path)
{
	static const char *const lines[] = {
		"00005cwg,18507921318,voice,2026-10-07 09:08:32,42572981,42,0",
		"00005cwh,+18873318500,sms,2026-10-01T08:47:45,+17331628945,0,0",
		"x,1,data,2000-02-29 23:59:59,cmnet,0,123456789012",
		"id-with-a-longer-name-0000000001,1234567890123456,voice,"
		"1999-12-31 00:00:00,0012345678901234567,000000000007,0",
		"0123456789012345678901234567890123456789012345678901234567890123"
		",99,voice,2026-10-05 08:00:00,12,1,1",
		"a,123456789012345,sms,0001-01-01 00:00:00,1,0,0",
		"a,12345678,voice,2026-10-05 08:00:00,*#06#,0,0",
		"a,1,data,2026-10-05 08:00:00,,0,100",
		"a,1,voice,2026-10-05 08:00:00Z,2,0,0",
		"a,1,voice,1791187200,2,0,0",
	};
	static const char alphabet[] = ",0919+*#-: TZxa\"\r\n\t";
	static const unsigned char high[] = {0x00, 0x80, 0xFA, 0xFF, 0x2F, 0x3A};
	unsigned fast_ok = 0;
	char buf[256];
	for (size_t l = 0; l < sizeof(lines) / sizeof(*lines); l++) {
		const char *s = lines[l];
		size_t n = strlen(s);
		cr_assert(n + 1 < sizeof(buf));
		same_both_ways(s, n, &fast_ok);
		for (size_t i = 0; i <= n; i++) {
			/* every prefix, so loads near the end are tried */
			same_both_ways(s, i, &fast_ok);
			for (size_t c = 0; c < sizeof(alphabet) - 1 + sizeof(high); c++) {
				char ch = c < sizeof(alphabet) - 1
						  ? alphabet[c]
						  : (char)high[c - (sizeof(alphabet) - 1)];
				if (i < n) { /* replace */
					memcpy(buf, s, n);
					buf[i] = ch;
					same_both_ways(buf, n, &fast_ok);
				}
				/* insert before i */
				memcpy(buf, s, i);
				buf[i] = ch;
				memcpy(buf + i + 1, s + i, n - i);
				same_both_ways(buf, n + 1, &fast_ok);
			}
			if (i < n) { /* delete */
				memcpy(buf, s, i);
				memcpy(buf + i, s + i + 1, n - i - 1);
				same_both_ways(buf, n - 1, &fast_ok);
			}
		}
	}
	/* Not vacuous: many mutants are still good lines. */
	cr_assert_gt(fast_ok, 1000);
}

/* The subscriber comes packed as the subscriber table keys it, by
 * either path (8 to 16 digits by the one-walk path, more by the checked). */
Test(parse, one_walk_path_packs_the_subscriber)
{
	cdr__rec r;
	cr_assert_eq(parse("c,+8613800000001,voice,2026-10-05 08:00:00,12,1,0", &r),
		     CDR_OK);
	/* digit + 1 per nibble, first digit highest: 8613800000001 */
	cr_assert_eq(r.subk[0], 0x9724911111112ULL);
	cr_assert_eq(r.subk[1], 0);
	cr_assert_eq(parse("c,12345678901234567,sms,2026-10-05 08:00:00,12,1,0", &r),
		     CDR_OK);
	cr_assert_eq(r.subk[0], 0x23456789A1234567ULL);
	cr_assert_eq(r.subk[1], 0x8ULL);
}

/*
 * The chunk walk (cdr__walk_line) finds the line end itself: for a line
 * followed by '\n' and more bytes, it must end the line where a newline
 * search ends it (a '\r' before the '\n' dropped), accept only what the
 * checked path accepts on that line, and fill it alike. Each buffer is
 * exactly 192 bytes from the line's start (the most the walk may read),
 * so under ASan a load past them fails; with fewer it must decline.
 */
static void walk_agrees(const char *line, size_t n, const char *after,
			unsigned *walk_ok)
{
	enum { PAD = 192 };
	char *p = malloc(PAD);
	cr_assert(p);
	memset(p, '7', PAD);
	size_t an = strlen(after);
	if (n + an > PAD)
		an = n < PAD ? PAD - n : 0;
	if (n > PAD)
		n = PAD;
	memcpy(p, line, n);
	memcpy(p + n, after, an);
	cdr__rec a, b;
	memset(&a, 0x55, sizeof(a));
	memset(&b, 0xAA, sizeof(b));
	size_t wn = 0;
	const char *next = NULL;
	int ra = cdr__walk_line(p, p + PAD, &a, &wn, &next);
	/* the line as the splitter finds it */
	const char *nl = memchr(p, '\n', PAD);
	if (ra == CDR_OK) {
		cr_assert(nl, "walked a line without its newline");
		size_t ln = (size_t)(nl - p);
		if (ln && p[ln - 1] == '\r')
			ln--;
		(*walk_ok)++;
		cr_assert_eq(wn, ln, "length %zu against %zu: '%.*s'", wn, ln,
			     (int)ln, p);
		cr_assert(next == nl + 1, "%.*s", (int)ln, p);
		int rb = cdr__parse_line_checked(p, ln, &b);
		cr_assert_eq(rb, CDR_OK, "walked a line the checked path rejects "
			     "(%d): '%.*s'", rb, (int)ln, p);
		cr_assert(a.line == b.line && a.line_len == b.line_len &&
			  a.id_line == b.id_line, "%.*s", (int)ln, p);
		cr_assert(a.id == b.id && a.id_len == b.id_len && a.key == b.key &&
			  a.key_len == b.key_len, "id: %.*s", (int)ln, p);
		cr_assert(a.sub == b.sub && a.sub_len == b.sub_len &&
			  a.subk[0] == b.subk[0] && a.subk[1] == b.subk[1],
			  "subscriber: %.*s", (int)ln, p);
		cr_assert(a.service == b.service && a.start_kind == b.start_kind &&
			  a.start == b.start, "start: %.*s", (int)ln, p);
		cr_assert(a.dest == b.dest && a.dest_len == b.dest_len,
			  "destination: %.*s", (int)ln, p);
		cr_assert(a.duration == b.duration && a.volume == b.volume,
			  "quantities: %.*s", (int)ln, p);
	}
	/* Fewer than 192 readable bytes: always declined, nothing read. */
	cr_assert_neq(cdr__walk_line(p + 1, p + PAD, &a, &wn, &next), CDR_OK);
	free(p);
}

static void walk_both_ends(const char *line, size_t n, unsigned *walk_ok)
{
	walk_agrees(line, n, "\n", walk_ok);
	walk_agrees(line, n, "\r\n9,1,sms,2026-10-05 08:00:00,2,0,0\n",
		    walk_ok);
	walk_agrees(line, n, "\n\n", walk_ok);
	walk_agrees(line, n, "", walk_ok); /* no newline in reach */
}

/*
 * Times of day around every bound, by both walks against the checked
 * path: hours 0 to 30 (the walk tests the hour through the second of
 * the day), minutes and seconds at 0, 9, 50, 59, 60, 69 and 99 (it tests
 * their tens apart), days 0, 1, 29, 30, 31 and 32 of October and
 * February.
 */
Test(parse, times_of_day_at_their_bounds)
{
	static const int ms[] = {0, 9, 50, 59, 60, 69, 99};
	static const int days[] = {0, 1, 29, 30, 31, 32};
	unsigned ok = 0, walked = 0;
	char line[96];
	for (int hh = 0; hh <= 30; hh++)
		for (size_t m = 0; m < sizeof(ms) / sizeof(*ms); m++)
			for (size_t s = 0; s < sizeof(ms) / sizeof(*ms); s++)
				for (size_t d = 0; d < sizeof(days) / sizeof(*days);
				     d++)
					for (int mo = 2; mo <= 10; mo += 8) {
						int n = snprintf(
							line, sizeof(line),
							"00000001,13566190350,voice,"
							"2026-%02d-%02d %02d:%02d:%02d,"
							"12345,60,0",
							mo, days[d], hh, ms[m], ms[s]);
						same_both_ways(line, (size_t)n, &ok);
						walk_agrees(line, (size_t)n, "\n",
							    &walked);
					}
	/* 24 hours x 4 x 4 x the valid days (1 of February 2026, 4 of October) */
	cr_assert_eq(ok, 24u * 4 * 4 * (1 + 4));
	cr_assert_eq(walked, ok);
}

Test(parse, chunk_walk_agrees_with_checked_path)
{
	static const char *const lines[] = {
		"00005cwg,18507921318,voice,2026-10-07 09:08:32,42572981,42,0",
		"00005cwh,+18873318500,sms,2026-10-01T08:47:45,+17331628945,0,0",
		"x,1,data,2000-02-29 23:59:59,cmnet,0,123456789012",
		"id-with-a-longer-name-0000000001,1234567890123456,voice,"
		"1999-12-31 00:00:00,0012345678901234567,000000000007,0",
		"0123456789012345678901234567890123456789012345678901234567890123"
		",99,voice,2026-10-05 08:00:00,12,1,1",
		"a,123456789012345,sms,0001-01-01 00:00:00,1,0,0",
		"a,12345678,voice,2026-10-05 08:00:00,*#06#,0,0",
		"a,1,data,2026-10-05 08:00:00,,0,100",
		"a,1,voice,2026-10-05 08:00:00Z,2,0,0",
		"a,1,voice,1791187200,2,0,0",
		"00000001,13566190350,data,2026-10-24 22:34:36,cmnet,1882,847749",
		"7,1234567890123456,voice,2024-02-29 23:59:59,"
		"1234567890123456789012345678901,999999999999,999999999999",
	};
	static const char alphabet[] = ",0919+*#-: TZxa\"\r\n\t";
	static const unsigned char high[] = {0x00, 0x80, 0xFA, 0xFF, 0x2F, 0x3A};
	unsigned walk_ok = 0;
	char buf[256];
	for (size_t l = 0; l < sizeof(lines) / sizeof(*lines); l++) {
		const char *s = lines[l];
		size_t n = strlen(s);
		cr_assert(n + 1 < sizeof(buf));
		walk_both_ends(s, n, &walk_ok);
		for (size_t i = 0; i <= n; i++) {
			walk_agrees(s, i, "\n", &walk_ok);
			for (size_t c = 0; c < sizeof(alphabet) - 1 + sizeof(high); c++) {
				char ch = c < sizeof(alphabet) - 1
						  ? alphabet[c]
						  : (char)high[c - (sizeof(alphabet) - 1)];
				if (i < n) { /* replace */
					memcpy(buf, s, n);
					buf[i] = ch;
					walk_agrees(buf, n, "\n", &walk_ok);
				}
				memcpy(buf, s, i); /* insert before i */
				buf[i] = ch;
				memcpy(buf + i + 1, s + i, n - i);
				walk_agrees(buf, n + 1, "\n", &walk_ok);
			}
			if (i < n) { /* delete */
				memcpy(buf, s, i);
				memcpy(buf + i, s + i + 1, n - i - 1);
				walk_agrees(buf, n - 1, "\n", &walk_ok);
			}
		}
	}
	cr_assert_gt(walk_ok, 1000);
}

/* Every field at every length around the 16-byte loads' edges: ids of
 * 1-66 bytes, numbers of 1-18 digits, destinations of 1-34 digits or an
 * APN of 0-50 bytes, quantities of 1-14 digits, each with the others
 * short and long. */
Test(parse, chunk_walk_at_every_field_length)
{
	unsigned walk_ok = 0;
	char line[256], f[5][80];
	const char *stamp = "2026-10-31 23:59:59";
	for (int which = 0; which < 6; which++)
		for (int len = 0; len <= 66; len++)
			for (int other = 0; other < 2; other++) {
				int L[6] = {other ? 40 : 1, other ? 16 : 1,
					    other ? 31 : 1, other ? 12 : 1,
					    other ? 12 : 1, other ? 47 : 0};
				L[which] = len;
				memset(f[0], 'i', (size_t)L[0]);
				for (int k = 0; k < 4; k++)
					for (int j = 0; j < L[k + 1]; j++)
						f[k + 1][j] = (char)('1' + (j + k) % 9);
				int n = snprintf(line, sizeof(line),
						 "%.*s,%.*s,voice,%s,%.*s,%.*s,%.*s",
						 L[0], f[0], L[1], f[1], stamp, L[2], f[2],
						 L[3], f[3], L[4], f[4]);
				walk_both_ends(line, (size_t)n, &walk_ok);
				char apn[80];
				memset(apn, 'a', (size_t)L[5]);
				n = snprintf(line, sizeof(line),
					     "%.*s,+%.*s,data,%s,%.*s,%.*s,%.*s",
					     L[0], f[0], L[1], f[1], stamp, L[5], apn,
					     L[3], f[3], L[4], f[4]);
				walk_both_ends(line, (size_t)n, &walk_ok);
			}
	cr_assert_gt(walk_ok, 300);
}

/* The subscriber table is built with cdr__sub_hash of each number's text
 * and probed with cdr__sub_hash_packed of the parser's packing: the two
 * must agree on every number, of every length, by either parser path. */
Test(parse, subscriber_hash_of_the_text_is_that_of_the_packing)
{
	const char digits[] = "86138000000011234567890123456789";
	char line[128];
	for (size_t n = 1; n <= 32; n++) {
		int len = snprintf(line, sizeof(line),
				   "c,+%.*s,voice,2026-10-05 08:00:00,12,1,0\n",
				   (int)n, digits);
		cdr__rec r;
		cr_assert_eq(cdr__parse_line(line, (size_t)len - 1, &r), CDR_OK);
		cr_assert_eq(cdr__sub_hash(digits, n), cdr__sub_hash_packed(r.subk),
			     "%zu digits", n);
		cr_assert_eq(cdr__parse_line_checked(line, (size_t)len - 1, &r),
			     CDR_OK);
		cr_assert_eq(cdr__sub_hash(digits, n), cdr__sub_hash_packed(r.subk),
			     "%zu digits", n);
	}
}
