/*
 * fuzz_parse.c - libFuzzer target: one CDR line into cdr__parse_line.
 *
 * The input is copied into a malloc'd buffer of exactly its size, so that
 * AddressSanitizer catches a read one byte past the line (the parser gets a
 * pointer and a length, never a NUL-terminated string). Whatever the bytes,
 * the parser must return CDR_OK or one of the malformed reasons; when it
 * accepts a line, the record must satisfy the contract's bounds (SPEC
 * section 3), checked here one by one so a violation names itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define UNIX_MAX 253402300799LL	     /* 9999-12-31T23:59:59Z */
#define NAIVE_MIN (-62135596800LL)   /* 0001-01-01 00:00:00 */
#define QTY_BOUND 1000000000000ULL   /* duration, volume < 10^12 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const uint8_t *data, size_t size)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_parse: invariant broken: %s\nline (%zu bytes): ",
		what, size);
	for (size_t i = 0; i < size && i < 256; i++)
		fprintf(stderr, data[i] >= 0x20 && data[i] < 0x7f ? "%c"
								  : "\\x%02x",
			data[i]);
	fputc('\n', stderr);
	abort();
}

/* [s, s + n) lies inside [p, p + size). */
static int inside(const char *s, size_t n, const char *p, size_t size)
{
	return s >= p && s <= p + size && n <= (size_t)(p + size - s);
}

static int all_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || !strchr(set, s[i]))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	if (size)
		memcpy(p, data, size);

	cdr__rec r;
	memset(&r, 0xA5, sizeof(r)); /* no stale field may look valid */
	int rc = cdr__parse_line(p, size, &r);
	check(rc >= CDR_OK && rc <= CDR_R_VOLUME, "reason out of range", data,
	      size);

	/* A pure function of the bytes: a second parse agrees. */
	cdr__rec again;
	memset(&again, 0x5A, sizeof(again));
	check(cdr__parse_line(p, size, &again) == rc, "second parse differs",
	      data, size);

	if (rc == CDR_OK) {
		check(r.line == p && r.line_len == size, "line/line_len", data,
		      size);
		check(r.id == p, "id starts the line", data, size);
		check(r.id_len >= 1 && r.id_len <= 64, "id_len in 1..64", data,
		      size);
		check(memchr(r.id, ',', r.id_len) == NULL, "id holds a comma",
		      data, size);
		check(inside(r.sub, r.sub_len, p, size), "sub inside the line",
		      data, size);
		check(r.sub_len >= 1, "sub non-empty", data, size);
		check(all_of(r.sub, r.sub_len, "0123456789"), "sub digits only",
		      data, size);
		check(r.service == CDR_VOICE || r.service == CDR_SMS ||
			      r.service == CDR_DATA,
		      "service", data, size);
		check(inside(r.dest, r.dest_len, p, size),
		      "dest inside the line", data, size);
		check(memchr(r.dest, ',', r.dest_len) == NULL,
		      "dest holds a comma", data, size);
		if (r.service != CDR_DATA)
			check(r.dest_len >= 1 &&
				      all_of(r.dest, r.dest_len, "0123456789*#"),
			      "voice/sms dest is 0-9*#", data, size);
		check(r.duration < QTY_BOUND, "duration < 10^12", data, size);
		check(r.volume < QTY_BOUND, "volume < 10^12", data, size);
		check(r.start_kind == CDR_START_LOCAL ||
			      r.start_kind == CDR_START_UTC,
		      "start_kind", data, size);
		if (r.start_kind == CDR_START_UTC)
			check(r.start >= 0 && r.start <= UNIX_MAX,
			      "UTC start in 1970..9999", data, size);
		else
			check(r.start >= NAIVE_MIN && r.start <= UNIX_MAX,
			      "naive start in 0001..9999", data, size);
		check(again.id == r.id && again.id_len == r.id_len &&
			      again.sub == r.sub && again.sub_len == r.sub_len &&
			      again.dest == r.dest &&
			      again.dest_len == r.dest_len &&
			      again.service == r.service &&
			      again.start_kind == r.start_kind &&
			      again.start == r.start &&
			      again.duration == r.duration &&
			      again.volume == r.volume,
		      "second record differs", data, size);
	}
	free(p);
	return 0;
}
