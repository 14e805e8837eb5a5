/*
 * fuzz_format.c - libFuzzer target: the quoted-field splitter and every
 * input format of SPEC 11 on one line.
 *
 * The first byte picks what is exercised (modulo 6): 0 detection from the
 * line as a first line (cdr__fmt_head with auto), then the line parsed in
 * the format found; 1..4 the line parsed as native, asterisk,
 * asterisk-custom or freeswitch; 5 through a column map with a header.
 * The rest, copied into a buffer of exactly its size so ASan sees a read
 * past it, is the line. Invariants: the splitter's fields lie inside the
 * line or the scratch and are never longer than the line together; a
 * parse returns a known reason, is a pure function of the bytes, and an
 * accepted record satisfies section 3 (digits, bounds), with its key
 * inside the line or the scratch and the whole line for switch records.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *p, size_t n)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_format: invariant broken: %s\nline (%zu bytes): ",
		what, n);
	for (size_t i = 0; i < n && i < 256; i++)
		fprintf(stderr, p[i] >= 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x",
			(unsigned char)p[i]);
	fputc('\n', stderr);
	abort();
}

static int inside(const char *s, size_t n, const char *b, size_t bn)
{
	return s >= b && s <= b + bn && n <= (size_t)(b + bn - s);
}

static int digits(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return 0;
	return 1;
}

/* A map over a fixed header; loaded once from a file it writes. */
static cdr_colmap *map;
static const char map_header[] = "a;b;c;d;e;f;g";

static void setup(void)
{
	char path[] = "/tmp/cdrate-fuzz-map-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		abort();
	fputs("delimiter = ;\nid = a\nsubscriber = b\ndestination = c\n"
	      "start = d\nstart_format = %d/%m/%y %H:%M\nduration = 5\n"
	      "service = f\nanswered = g=Y\n", f);
	fclose(f);
	char err[CDR_ERR_MAX];
	if (cdr_colmap_load(&map, path, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	remove(path);
}

static void check_split(const char *p, size_t n, char *sc)
{
	static cdr__field f[CDR__MAXF];
	int k = cdr__split(p, n, ',', f, CDR__MAXF, sc);
	check(k >= -2 && k <= CDR__MAXF && k != 0, "field count", p, n);
	size_t total = 0;
	for (int i = 0; i < k; i++) {
		check(inside(f[i].s, f[i].n, p, n) ||
			      inside(f[i].s, f[i].n, sc, n),
		      "field outside line and scratch", p, n);
		total += f[i].n;
	}
	check(total <= n, "fields longer than the line", p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!map)
		setup();
	if (!size)
		return 0;
	int mode = data[0] % 6;
	size_t n = size - 1;
	char *p = malloc(n ? n : 1);
	char *sc = malloc(CDR__SCRATCH(n));
	if (!p || !sc)
		abort();
	memcpy(p, data + 1, n);
	check_split(p, n, sc);

	static const cdr_format kinds[] = {
		CDR_FORMAT_AUTO, CDR_FORMAT_NATIVE, CDR_FORMAT_ASTERISK,
		CDR_FORMAT_ASTERISK_CUSTOM, CDR_FORMAT_FREESWITCH, CDR_FORMAT_MAP,
	};
	cdr__fmt f;
	char err[CDR_ERR_MAX];
	int hrc = mode == 5 ? cdr__fmt_head(&f, CDR_FORMAT_MAP, map, map_header,
					    sizeof(map_header) - 1, err,
					    sizeof(err))
			    : cdr__fmt_head(&f, kinds[mode], NULL, p, n, err,
					    sizeof(err));
	if (hrc) { /* only a header starting `id,` without all columns */
		check(mode <= 1 && n >= 3 && !memcmp(p, "id,", 3),
		      "head refused a line that is no id, header", p, n);
		goto out;
	}
	check(f.kind > CDR_FORMAT_AUTO && f.kind < CDR_FORMAT_N, "kind", p, n);
	cdr__rec r, again;
	memset(&r, 0xA5, sizeof(r));
	int rc = cdr__fmt_parse(&f, p, n, &r, sc, "in.csv", 9);
	check(rc >= CDR_OK && rc < CDR_NREASON && rc != CDR_R_DUPLICATE,
	      "reason", p, n);
	char *sc2 = malloc(CDR__SCRATCH(n));
	if (!sc2)
		abort();
	check(cdr__fmt_parse(&f, p, n, &again, sc2, "in.csv", 9) == rc,
	      "second parse differs", p, n);
	if (rc == CDR_OK) {
		check(r.sub_len >= 1 && r.sub_len <= 32 &&
			      digits(r.sub, r.sub_len, "0123456789"),
		      "subscriber digits", p, n);
		if (r.service != CDR_DATA)
			check(r.dest_len >= 1 &&
				      digits(r.dest, r.dest_len, "0123456789*#"),
			      "destination 0-9*#", p, n);
		check(r.duration < 1000000000000ULL &&
			      r.volume < 1000000000000ULL,
		      "quantities < 10^12", p, n);
		check(inside(r.key, r.key_len, p, n) ||
			      inside(r.key, r.key_len, sc, CDR__SCRATCH(n)),
		      "key outside line and scratch", p, n);
		if (f.kind >= CDR_FORMAT_ASTERISK &&
		    f.kind <= CDR_FORMAT_FREESWITCH)
			check(r.key == p && r.key_len == n,
			      "a switch record's key is its line", p, n);
		check(!r.id_line || (r.id_line == 9 && r.id_len == 6),
		      "FILE:LINE id", p, n);
		check(again.key_len == r.key_len &&
			      !memcmp(again.key, r.key, r.key_len) &&
			      again.start == r.start &&
			      again.duration == r.duration,
		      "second record differs", p, n);
		const char *k;
		size_t kn;
		cdr__fmt_key(&f, p, n, &k, &kn, sc2);
		check(kn == r.key_len && !memcmp(k, r.key, kn),
		      "cdr__fmt_key differs from the parse", p, n);
	}
	free(sc2);
out:
	free(p);
	free(sc);
	return 0;
}
