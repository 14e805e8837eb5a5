/*
 * format.c - the quoted-field splitter, format detection and the dispatch
 * from an input's settled format to its parser.
 *
 * Detection looks at one line, the input's first non-empty one, in the
 * order of SPEC 11's table: a native header, 7 unquoted native fields, then
 * each switch layout by the fields that only it has quoted or unquoted
 * where it does. Anything else is read as native (every line then gets its
 * own reject reason) and flagged, so the summary can name the file.
 *
 * Sections: names - splitting - native headers - detection - dispatch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "format.h"

/* ---- names ----------------------------------------------------------- */

static const char *const fmt_names[CDR_FORMAT_N] = {
	"auto", "native", "asterisk", "asterisk-custom", "freeswitch", "map",
};

const char *cdr_format_name(cdr_format f)
{
	return (unsigned)f < CDR_FORMAT_N ? fmt_names[f] : NULL;
}

int cdr_format_from_name(const char *name, cdr_format *f)
{
	for (int i = 0; i < CDR_FORMAT_MAP; i++)
		if (!strcmp(name, fmt_names[i])) {
			*f = (cdr_format)i;
			return 0;
		}
	return -EINVAL;
}

/* ---- splitting ------------------------------------------------------- */

/*
 * The first byte c at or after p[i], within p[0, n): its index, or n. Most
 * fields of a switch record are a few bytes long, where memchr's call and
 * set-up cost more than the search itself: 16 bytes are compared at once
 * with SSE2 (part of every x86-64), what is left of the line 8 at a time
 * (the zero-byte test on x ^ c, whose lowest flagged byte is exact), then
 * byte by byte. Wide loads only where the line holds them: lines come in
 * exactly sized buffers too (the duplicate check, tests, fuzzers).
 */
static inline size_t find_byte(const char *p, size_t i, size_t n,
			       unsigned char c)
{
#ifdef __SSE2__
	const __m128i pc = _mm_set1_epi8((char)c);
	for (; n - i >= 16; i += 16) {
		const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		const unsigned m =
			(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, pc));
		if (m)
			return i + (unsigned)__builtin_ctz(m);
	}
#endif
	const uint64_t ones = 0x0101010101010101ULL, pat = ones * c;
	for (; n - i >= 8; i += 8) {
		uint64_t x;
		memcpy(&x, p + i, 8);
		x ^= pat;
		const uint64_t m = (x - ones) & ~x & 0x8080808080808080ULL;
		if (m)
			return i + ((unsigned)__builtin_ctzll(m) >> 3);
	}
	for (; i < n; i++)
		if (p[i] == (char)c)
			return i;
	return n;
}

/*
 * One pass, left to right. An unquoted field is the bytes up to the next
 * delimiter, quotes and all (a stray '"' mid-field is data). A quoted field
 * points into the line when its content is plain; only `""` or a tail after
 * the closing quote makes it rebuilt in scratch, which never outgrows the
 * line (each field's rebuilt text is no longer than its raw text).
 */
int cdr__split(const char *p, size_t n, char delim, cdr__field *f, int max,
	       char *scratch)
{
	size_t i = 0, so = 0;
	int k = 0;
	for (;;) {
		if (k == max)
			return -2;
		size_t j = i;
		if (j < n && p[j] != '"') /* a quote right away is usual */
			while (j < n && (p[j] == ' ' || p[j] == '\t'))
				j++;
		if (j == n || p[j] != '"') { /* unquoted */
			size_t e = find_byte(p, i, n, (unsigned char)delim);
			f[k++] = (cdr__field){p + i, (uint32_t)(e - i), 0};
			if (e == n)
				return k;
			i = e + 1;
			continue;
		}
		size_t a = ++j; /* content starts after the quote */
		int plain = 1;
		for (;;) {
			size_t q = find_byte(p, j, n, '"');
			if (q == n)
				return -1; /* the quote never closes */
			j = q + 1;
			if (j < n && p[j] == '"') { /* `""`: one quote */
				plain = 0;
				j++;
				continue;
			}
			break;
		}
		size_t close = j - 1; /* the closing quote */
		/* Usually the delimiter follows the closing quote at once. */
		size_t e = j < n && p[j] == delim
				   ? j
				   : find_byte(p, j, n, (unsigned char)delim);
		const int last = e == n;
		if (plain && e == j) {
			f[k++] = (cdr__field){p + a, (uint32_t)(close - a), 1};
		} else {
			char *o = scratch + so;
			size_t m = 0;
			for (size_t x = a; x < close; x++) {
				o[m++] = p[x];
				if (p[x] == '"')
					x++; /* the second of a `""` */
			}
			memcpy(o + m, p + j, e - j);
			m += e - j;
			so += m;
			f[k++] = (cdr__field){o, (uint32_t)m, 1};
		}
		if (last)
			return k;
		i = e + 1;
	}
}

/* ---- native headers -------------------------------------------------- */

static const char *const native_cols[7] = {
	"id", "subscriber", "service", "start", "destination", "duration",
	"volume",
};

/* Index of the header field named `name`, or -1. */
static int find_col(const cdr__field *h, int nh, const char *name)
{
	size_t len = strlen(name);
	for (int i = 0; i < nh; i++)
		if (h[i].n == len && !memcmp(h[i].s, name, len))
			return i;
	return -1;
}

/* ---- detection ------------------------------------------------------- */

static int is_int(const cdr__field *x)
{
	if (!x->n)
		return 0;
	for (uint32_t i = 0; i < x->n; i++)
		if (x->s[i] < '0' || x->s[i] > '9')
			return 0;
	return 1;
}

static int qstamp(const cdr__field *x)
{
	return x->quoted && cdr__is_stamp(x->s, x->n);
}

/* Fields are 1-based in the contract's table; F(k) is field k. */
#define F(k) (&f[(k) - 1])

static cdr_format detect(const cdr__field *f, int nf)
{
	if (nf == 7) {
		int plain = 1;
		for (int i = 0; i < 7; i++)
			plain &= !f[i].quoted;
		const cdr__field *s = F(3);
		if (plain && ((s->n == 5 && !memcmp(s->s, "voice", 5)) ||
			      (s->n == 3 && !memcmp(s->s, "sms", 3)) ||
			      (s->n == 4 && !memcmp(s->s, "data", 4))))
			return CDR_FORMAT_NATIVE;
	}
	if (nf >= 16 && nf <= 21 && qstamp(F(10)) && qstamp(F(12)) &&
	    !F(13)->quoted && is_int(F(13)) && !F(14)->quoted && is_int(F(14)))
		return CDR_FORMAT_ASTERISK;
	if (nf == 19 && qstamp(F(9)) && qstamp(F(11)) && F(12)->quoted &&
	    is_int(F(12)) && F(13)->quoted && is_int(F(13)) &&
	    !F(19)->quoted && is_int(F(19)))
		return CDR_FORMAT_ASTERISK_CUSTOM;
	if ((nf == 13 || nf == 15) && qstamp(F(5)) && qstamp(F(7)) &&
	    F(8)->quoted && is_int(F(8)) && F(9)->quoted && is_int(F(9)))
		return CDR_FORMAT_FREESWITCH;
	return CDR_FORMAT_AUTO;
}

/* Resolve a map's columns against a header (or its numbers alone). */
static int map_resolve(cdr__fmt *f, const cdr_colmap *m, const cdr__field *h,
		       int nh, char *err, size_t errlen)
{
	for (int c = 0; c < CDR__MC_N; c++) {
		f->col[c] = (int16_t)m->num[c];
		if (!m->name[c])
			continue;
		int i = find_col(h, nh, m->name[c]);
		if (i < 0) {
			snprintf(err, errlen,
				 "header has no column '%s' (%s:%u)",
				 m->name[c], m->path, m->line[c]);
			return -EINVAL;
		}
		f->col[c] = (int16_t)i;
	}
	return 0;
}

int cdr__fmt_head(cdr__fmt *f, cdr_format want, const cdr_colmap *map,
		  const char *p, size_t n, char *err, size_t errlen)
{
	cdr__field h[CDR__MAXF];
	char *scratch = malloc(CDR__SCRATCH(n));
	if (!scratch) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(f, 0, sizeof(*f));
	for (int c = 0; c < CDR__MC_N; c++)
		f->col[c] = -1;
	f->delim = ',';
	int rc = 0;
	if (want == CDR_FORMAT_MAP) {
		f->kind = CDR_FORMAT_MAP;
		f->bycol = 1;
		f->map = map;
		f->delim = map->delim;
		f->header = (uint8_t)map->header;
		int nh = cdr__split(p, n, map->delim, h, CDR__MAXF, scratch);
		if (map->header && nh < 0) {
			snprintf(err, errlen, "header: %s",
				 nh == -1 ? "a quote does not close"
					  : "too many columns");
			rc = -EINVAL;
		} else {
			f->nfields = map->header ? nh : 0;
			rc = map_resolve(f, map, h, map->header ? nh : 0, err,
					 errlen);
		}
		f->line_ids = f->col[CDR__MC_ID] < 0;
		free(scratch);
		return rc;
	}
	int nh = cdr__split(p, n, ',', h, CDR__MAXF, scratch);
	if (want == CDR_FORMAT_AUTO || want == CDR_FORMAT_NATIVE) {
		/* A native header: the seven names, in any order. */
		int cols[7], all = nh > 0;
		for (int c = 0; c < 7 && nh > 0; c++) {
			cols[c] = find_col(h, nh, native_cols[c]);
			all &= cols[c] >= 0;
		}
		int starts_id = n >= 3 && !memcmp(p, "id,", 3);
		if (all) {
			f->kind = CDR_FORMAT_NATIVE;
			f->header = 1;
			static const char canon[] = "id,subscriber,service,"
						    "start,destination,"
						    "duration,volume";
			if (n != sizeof(canon) - 1 || memcmp(p, canon, n) != 0) {
				/* Read by name, as through a map. */
				f->bycol = 1;
				f->nfields = nh;
				for (int c = 0; c < 7; c++)
					f->col[c] = (int16_t)cols[c];
			}
		} else if (starts_id) {
			for (int c = 0; c < 7; c++)
				if (find_col(h, nh, native_cols[c]) < 0) {
					snprintf(err, errlen,
						 "header has no column '%s'",
						 native_cols[c]);
					break;
				}
			rc = -EINVAL;
		} else if (want == CDR_FORMAT_NATIVE) {
			f->kind = CDR_FORMAT_NATIVE;
		} else {
			cdr_format d = nh > 0 ? detect(h, nh) : CDR_FORMAT_AUTO;
			f->kind = (uint8_t)(d == CDR_FORMAT_AUTO ? CDR_FORMAT_NATIVE
								 : d);
			f->guessed = d == CDR_FORMAT_AUTO;
		}
	} else {
		f->kind = (uint8_t)want;
	}
	f->line_ids = f->kind == CDR_FORMAT_ASTERISK;
	free(scratch);
	return rc;
}

/* ---- dispatch -------------------------------------------------------- */

int cdr__fmt_parse(const cdr__fmt *f, const char *p, size_t n, cdr__rec *rec,
		   char *scratch, const char *path, uint64_t lineno)
{
	int rc;
	rec->id_line = 0;
	rec->id = NULL;
	switch (f->kind) {
	case CDR_FORMAT_ASTERISK:
		rc = cdr__parse_asterisk(p, n, rec, scratch, 0, f->norm);
		break;
	case CDR_FORMAT_ASTERISK_CUSTOM:
		rc = cdr__parse_asterisk(p, n, rec, scratch, 1, f->norm);
		break;
	case CDR_FORMAT_FREESWITCH:
		rc = cdr__parse_freeswitch(p, n, rec, scratch, f->norm);
		break;
	default:
		rc = f->bycol ? cdr__parse_bycol(f, p, n, rec, scratch)
		     : f->norm ? cdr__parse_line_norm(p, n, rec, f->norm,
						      CDR__NORM_BUF(scratch, n))
			       : cdr__parse_line(p, n, rec);
		break;
	}
	rec->line = p;
	rec->line_len = (uint32_t)n;
	if (rc == CDR_OK && !rec->id) { /* FILE:LINE */
		rec->id = path;
		rec->id_len = (uint32_t)strlen(path);
		rec->id_line = lineno;
	}
	return rc;
}

void cdr__fmt_key(const cdr__fmt *f, const char *p, size_t n,
		  const char **key, size_t *key_n, char *scratch)
{
	cdr__rec rec;
	if (f->kind == CDR_FORMAT_NATIVE && !f->bycol) {
		/* The id is the first field: no need to parse the rest. */
		const char *c = memchr(p, ',', n);
		*key = p;
		*key_n = c ? (size_t)(c - p) : n;
		return;
	}
	if (cdr__fmt_parse(f, p, n, &rec, scratch, "", 0) == CDR_OK) {
		*key = rec.key;
		*key_n = rec.key_len;
	} else { /* never for a line that parsed before */
		*key = p;
		*key_n = n;
	}
}
