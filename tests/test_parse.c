/*
 * test_parse.c - the CDR line parser (contract section 3 and step 1 of
 * section 5): field forms, and the first bad field from the left decides
 * the malformed:<column> reason.
 */
#include <criterion/criterion.h>
#include <string.h>

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
