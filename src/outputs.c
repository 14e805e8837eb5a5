/*
 * outputs.c - the rejects and itemize files: CSV text, the records workers
 * write during the pass, the words of a reject's detail, and the finish
 * that sorts them into the files users load.
 *
 * Both files are CSV with a header (README "Rejects" and "Itemize"):
 *
 *   rejects  file,line,reason,detail,record
 *   itemize  id,account,subscriber,service,start,destination,zone,band,
 *            plan,quantity,charge
 *
 * Text fields follow one rule so that PostgreSQL `COPY ... csv header` and
 * DuckDB `read_csv` take them with no options: every byte that is not part
 * of valid UTF-8, every control character (0x00-0x1F, 0x7F) and the
 * backslash are written `\xHH`, so the text is valid UTF-8 and the original
 * bytes can be recovered exactly; then a field holding `,` or `"` is quoted
 * (RFC 4180, `""` inside). `record` is always quoted.
 *
 * Order. Workers finish chunks in no fixed order, so during the pass each
 * worker appends binary records (a small header, then bytes) to a private
 * unlinked temporary; the finish maps it, drops the lines duplicates took
 * back (by location: a line's input and offset name it exactly), adds the
 * `duplicate` rejects, sorts and writes the file. Rejects sort by input
 * path bytewise then place in the file (so by line); itemize by account,
 * start instant, then the line's bytes (so by id). Neither depends on the
 * thread count or the order inputs were given in. The cost is a pointer a
 * line and a sort on the calling thread, paid only with the outputs.
 *
 * Line numbers. Only some inputs count lines while they are read
 * (reader.c). Workers already walk every line of a chunk, so each notes how
 * many lines its chunks hold (one pair per chunk, 4 MiB) and a reject's
 * line within its chunk; the finish adds the lines of the chunks before it.
 * A duplicate's line (and the line it duplicates) is counted here by
 * reading its chunk back from the chunk's start - cold, and only for the
 * chunks that hold duplicates.
 *
 * Sections: CSV text - worker records - reject details - line numbers -
 * finishing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "civil.h"
#include "format.h"
#include "internal.h"
#include "run_int.h"
#include "sys.h"
#include "write.h"

/* ---- CSV text -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0, n) that is not a control
 * character, or 0 when s[0] must be escaped. */
static size_t utf8_ok(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c >= 0x20 && c < 0x7F)
		return c == '\\' ? 0 : 1;
	if (c < 0xC2 || c > 0xF4)
		return 0; /* controls, DEL, continuation bytes, overlongs */
	size_t k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	/* Overlong three- and four-byte forms, surrogates, past U+10FFFF. */
	if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
	    (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
		return 0;
	return k;
}

size_t cdr__csv_text(char *b, const char *s, size_t n, int quote)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	/* The usual field is plain: printable ASCII without , " or \. */
	while (i < n && u[i] >= 0x20 && u[i] < 0x7F && u[i] != ',' &&
	       u[i] != '"' && u[i] != '\\')
		i++;
	if (i == n && !quote) {
		memcpy(b, s, n);
		return n;
	}
	if (!quote)
		quote = memchr(s, ',', n) || memchr(s, '"', n);
	size_t o = 0;
	if (quote)
		b[o++] = '"';
	for (i = 0; i < n;) {
		size_t k = utf8_ok(u + i, n - i);
		if (!k) {
			b[o++] = '\\';
			b[o++] = 'x';
			b[o++] = hex[u[i] >> 4];
			b[o++] = hex[u[i] & 15];
			i++;
			continue;
		}
		if (u[i] == '"')
			b[o++] = '"';
		memcpy(b + o, u + i, k);
		o += k;
		i += k;
	}
	if (quote)
		b[o++] = '"';
	return o;
}

/* ---- worker records -------------------------------------------------- */

int cdr__ob_flush(outbuf *o)
{
	if (o->n && cdr__write_all(o->fd, o->b, o->n)) {
		o->failed = 1;
		return -errno;
	}
	o->n = 0;
	return 0;
}

/* Room for `need` more bytes; records are whole, so O_APPEND writes
 * from several workers interleave only at record boundaries. */
static int ob_room(outbuf *o, size_t need)
{
	if (o->n + need > OUTBUF)
		return cdr__ob_flush(o);
	return 0;
}

/* A reject as a worker writes it. `line` is absolute when its top bit is
 * set (a duplicate's, counted at the finish), else the line within the
 * chunk at `chunk_loc`. */
#define LINE_ABS (1ULL << 63)
typedef struct rej_hdr {
	uint64_t key; /* input's rank by path << LOC_OFF_BITS | offset */
	uint64_t loc;
	uint64_t line;
	uint32_t n; /* record bytes, after the detail */
	uint16_t reason;
	uint16_t dn; /* detail bytes */
} rej_hdr;

/* An itemize line: the sort key (account, start), then the line. The
 * tariff's accounts are numbered in bytewise order, so the number sorts
 * as the name does, in a compare that stays in cache. */
typedef struct item_hdr {
	uint64_t loc;
	int64_t start_utc;
	uint32_t account;
	uint32_t n; /* line bytes, '\n' included */
} item_hdr;

static void put_rej(char *b, uint64_t key, uint64_t loc, uint64_t line,
		    int reason, const char *detail, size_t dn, const char *p,
		    size_t n)
{
	rej_hdr h = {key, loc, line, (uint32_t)n, (uint16_t)reason,
		     (uint16_t)dn};
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), detail, dn);
	memcpy(b + sizeof(h) + dn, p, n);
}

int cdr__rej_put(cdr_run *r, outbuf *o, uint64_t loc, uint64_t rel,
		 int reason, const char *detail, size_t dn, const char *p,
		 size_t n)
{
	if (o->fd < 0)
		return 0;
	if (ob_room(o, sizeof(rej_hdr) + dn + n))
		return -errno;
	uint64_t key = (uint64_t)r->rank[loc >> LOC_OFF_BITS] << LOC_OFF_BITS |
		       (loc & ((1ULL << LOC_OFF_BITS) - 1));
	put_rej(o->b + o->n, key, loc, rel, reason, detail, dn, p, n);
	o->n += sizeof(rej_hdr) + dn + n;
	return 0;
}

/* YYYY-MM-DD HH:MM:SS of local seconds (years 1969..10000: the
 * instants of SPEC 3 in any zone); 19 bytes, 20 past year 9999. */
static void put2(char *b, unsigned v)
{
	b[0] = (char)('0' + v / 10 % 10);
	b[1] = (char)('0' + v % 10);
}

size_t cdr__fmt_local(char *b, int64_t local)
{
	int64_t day = cdr__floor_div(local, 86400), s = local - day * 86400;
	int64_t y, y0;
	unsigned m, d;
	cdr__civil_from_days(day, &y, &m, &d);
	y0 = y;
	if (y > 9999) { /* 9999-12-31 23:59:59Z is in 10000 east of UTC */
		b[0] = '1';
		b++;
		y -= 10000;
	}
	put2(b, (unsigned)(y / 100));
	put2(b + 2, (unsigned)(y % 100));
	b[4] = '-';
	put2(b + 5, m);
	b[7] = '-';
	put2(b + 8, d);
	b[10] = ' ';
	put2(b + 11, (unsigned)(s / 3600));
	b[13] = ':';
	put2(b + 14, (unsigned)(s / 60 % 60));
	b[16] = ':';
	put2(b + 17, (unsigned)(s % 60));
	return y0 > 9999 ? 20 : 19;
}

static const char *const svc_names[] = {"voice", "sms", "data"};

static const char *plan_of(const cdr_tariff *t, const cdr__rated *x)
{
	return x->row >= 0 ? t->plans[t->rows[x->row].plan].name : "-";
}

/* id,account,subscriber,service,start,destination,zone,band,plan,
 * quantity,charge; b holds cdr__item_bound bytes. */
size_t cdr__item_fmt(char *b, const cdr_tariff *t, const cdr__rec *rec,
		     const cdr__rated *x)
{
	size_t o = 0;
	if (rec->id_line) { /* FILE:LINE: the path's text, then the line */
		o = cdr__csv_text(b, rec->id, rec->id_len, 0);
		int q = o && b[0] == '"';
		if (q) /* reopen the quoted path to put the number inside */
			o--;
		b[o++] = ':';
		o += cdr__fmt_u128(b + o, rec->id_line);
		if (q)
			b[o++] = '"';
	} else {
		o = cdr__csv_text(b, rec->id, rec->id_len, 0);
	}
	const char *acct = t->accounts[x->account];
	const char *zone = x->zone < t->nzones ? t->zone_names[x->zone] : "*";
	const char *band =
		x->band == CDR_BAND_STAR ? "*" : t->band_names[x->band];
	const char *plan = plan_of(t, x);
	b[o++] = ',';
	o += cdr__csv_text(b + o, acct, strlen(acct), 0);
	b[o++] = ',';
	o += cdr__csv_text(b + o, rec->sub, rec->sub_len, 0);
	b[o++] = ',';
	memcpy(b + o, svc_names[x->service], strlen(svc_names[x->service]));
	o += strlen(svc_names[x->service]);
	b[o++] = ',';
	o += cdr__fmt_local(b + o,
		       x->start_utc + cdr__tz_offset_at(t->tz, x->start_utc));
	b[o++] = ',';
	o += cdr__csv_text(b + o, rec->dest, rec->dest_len, 0);
	b[o++] = ',';
	o += cdr__csv_text(b + o, zone, strlen(zone), 0);
	b[o++] = ',';
	o += cdr__csv_text(b + o, band, strlen(band), 0);
	b[o++] = ',';
	o += cdr__csv_text(b + o, plan, strlen(plan), 0);
	b[o++] = ',';
	o += cdr__fmt_u128(b + o, x->quantity);
	b[o++] = ',';
	o += cdr__fmt_scaled(b + o, x->charge_micros, 6);
	b[o++] = '\n';
	return o;
}

size_t cdr__item_bound(const cdr_tariff *t, const cdr__rec *rec,
		       const cdr__rated *x)
{
	size_t zn = x->zone < t->nzones ? strlen(t->zone_names[x->zone]) : 1;
	size_t bn = x->band == CDR_BAND_STAR ? 1
					      : strlen(t->band_names[x->band]);
	size_t text = rec->id_len + strlen(t->accounts[x->account]) +
		      rec->sub_len + rec->dest_len + zn + bn +
		      strlen(plan_of(t, x));
	/* ten commas, the stamp, two numbers and a line end: far below */
	return CDR__CSV_BOUND(text) + 256;
}

int cdr__item_put(outbuf *o, const cdr_tariff *t, const cdr__rec *rec,
		  const cdr__rated *x, uint64_t loc)
{
	if (ob_room(o, sizeof(item_hdr) + cdr__item_bound(t, rec, x)))
		return -errno;
	char *b = o->b + o->n;
	size_t n = cdr__item_fmt(b + sizeof(item_hdr), t, rec, x);
	item_hdr h = {loc, x->start_utc, x->account, (uint32_t)n};
	memcpy(b, &h, sizeof(h));
	o->n += sizeof(h) + n;
	return 0;
}

/* ---- reject details -------------------------------------------------- */

/* Append to a detail: printf into what is left of it. */
typedef struct dbuf {
	char *b;
	size_t n, cap;
} dbuf;

static void dput(dbuf *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void dput(dbuf *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (d->n < d->cap) {
		int k = vsnprintf(d->b + d->n, d->cap - d->n, fmt, ap);
		if (k > 0)
			d->n += (size_t)k < d->cap - d->n ? (size_t)k
							   : d->cap - d->n - 1;
	}
	va_end(ap);
}

/* A value from the line, quoted, cut at 64 bytes (the record holds it
 * whole). Escaping happens when the file is written. */
static void dval(dbuf *d, const char *name, const char *s, size_t n)
{
	int cut = n > 64;
	dput(d, "%s \"%.*s%s\": ", name, (int)(cut ? 64 : n), s,
	     cut ? "..." : "");
}

/* Which field of the line a malformed reason is about: its index in the
 * line for the input's format, or -1. */
static int field_of(const cdr__fmt *f, int reason, int nf)
{
	static const int mc[] = {
		[CDR_R_ID] = CDR__MC_ID,
		[CDR_R_SUBSCRIBER] = CDR__MC_SUB,
		[CDR_R_SERVICE] = CDR__MC_SERVICE,
		[CDR_R_START] = CDR__MC_START,
		[CDR_R_DESTINATION] = CDR__MC_DEST,
		[CDR_R_DURATION] = CDR__MC_DURATION,
		[CDR_R_VOLUME] = CDR__MC_VOLUME,
	};
	int c = mc[reason];
	if (f->bycol)
		return f->col[c];
	switch (f->kind) {
	case CDR_FORMAT_ASTERISK: /* src dst ... answer billsec: 2 3 11 14 */
		return c == CDR__MC_SUB ? 1 : c == CDR__MC_DEST ? 2
		       : c == CDR__MC_START ? 10 : c == CDR__MC_DURATION ? 13
		       : -1;
	case CDR_FORMAT_ASTERISK_CUSTOM:
		return c == CDR__MC_SUB ? 1 : c == CDR__MC_DEST ? 2
		       : c == CDR__MC_START ? 9 : c == CDR__MC_DURATION ? 12
		       : -1;
	case CDR_FORMAT_FREESWITCH:
		return c == CDR__MC_SUB ? 1 : c == CDR__MC_DEST ? 2
		       : c == CDR__MC_START ? 5 : c == CDR__MC_DURATION ? 8
		       : -1;
	default: /* native by position: the columns in map order */
		(void)nf;
		return c;
	}
}

static const char *fields_expected(const cdr__fmt *f, char *tmp, size_t n)
{
	if (f->nfields) {
		snprintf(tmp, n, "%d", f->nfields);
		return tmp;
	}
	switch (f->kind) {
	case CDR_FORMAT_ASTERISK:
		return "16 to 21";
	case CDR_FORMAT_ASTERISK_CUSTOM:
		return "19";
	case CDR_FORMAT_FREESWITCH:
		return "13 or 15";
	case CDR_FORMAT_MAP:
		return "the map's columns";
	default:
		return "7";
	}
}

/* The words for a line rejected while parsing: its field re-examined. */
static void detail_parse(dbuf *d, const cdr__fmt *f, const char *p, size_t n,
			 int reason, const cdr__norm *norm)
{
	cdr__field fl[CDR__MAXF];
	char *scratch = malloc(CDR__SCRATCH(n));
	int native = f->kind == CDR_FORMAT_NATIVE && !f->bycol;
	int nf = -1;
	if (native) { /* SPEC 3: no quoting, every comma splits */
		nf = 0;
		for (size_t i = 0, s0 = 0; i <= n; i++)
			if (i == n || p[i] == ',') {
				if (nf < CDR__MAXF)
					fl[nf] = (cdr__field){p + s0,
							      (uint32_t)(i - s0), 0};
				nf++;
				s0 = i + 1;
			}
		if (nf > CDR__MAXF)
			nf = reason == CDR_R_COLUMNS ? nf : -2;
	} else if (scratch) {
		nf = cdr__split(p, n, f->delim ? f->delim : ',', fl, CDR__MAXF,
				scratch);
	}
	char tmp[16];
	if (reason == CDR_R_COLUMNS) {
		if (nf == -1 && scratch)
			dput(d, "a quoted field does not close");
		else if (nf == -2)
			dput(d, "more than %d fields, expected %s", CDR__MAXF,
			     fields_expected(f, tmp, sizeof(tmp)));
		else if (nf >= 0)
			dput(d, "%d field%s, expected %s", nf, nf == 1 ? "" : "s",
			     fields_expected(f, tmp, sizeof(tmp)));
		free(scratch);
		return;
	}
	int i = field_of(f, reason, nf);
	if (i >= 0 && i < nf)
		dval(d, cdr_reason_name(reason) + 10, fl[i].s, fl[i].n);
	free(scratch);
	switch (reason) {
	case CDR_R_ID:
		dput(d, "expected 1 to 64 bytes");
		break;
	case CDR_R_SUBSCRIBER:
		dput(d, "expected digits after an optional +%s",
		     norm ? " (after normalize.csv)" : "");
		break;
	case CDR_R_SERVICE:
		dput(d, "expected voice, sms or data");
		break;
	case CDR_R_START:
		if (f->map && f->map->start_format)
			dput(d, "expected %s", f->map->start_format);
		else
			dput(d, "expected YYYY-MM-DD HH:MM:SS (or with T, Z, "
				"+HH:MM, or Unix seconds) from 1970 to 9999");
		break;
	case CDR_R_DESTINATION:
		dput(d, "expected 0-9, * or # after an optional +%s",
		     norm ? " (after normalize.csv)" : "");
		break;
	case CDR_R_DURATION:
		dput(d, "expected whole seconds from 0 below 10^12");
		break;
	case CDR_R_VOLUME:
		dput(d, "expected whole bytes from 0 below 10^12");
		break;
	default:
		break;
	}
}

size_t cdr__reject_detail(char *out, size_t cap, const cdr_tariff *t,
			  const cdr__period *per, const cdr__fmt *f,
			  const char *p, size_t n, int reason,
			  const cdr__rec *rec, const cdr__rated *x)
{
	dbuf d = {out, 0, cap};
	out[0] = '\0';
	switch (reason) {
	case CDR_R_LINE_TOO_LONG:
		dput(&d, "longer than %zu bytes; the record holds its first %zu",
		     CDR_LINE_MAX, CDR_LINE_MAX);
		break;
	case CDR_R_UNANSWERED:
		dput(&d, "not answered (no answer time%s)",
		     f->kind == CDR_FORMAT_ASTERISK ||
				     f->kind == CDR_FORMAT_ASTERISK_CUSTOM
			     ? ", or disposition not ANSWERED"
		     : f->map && f->map->answered_value
			     ? ", or the map's answered rule does not hold"
			     : "");
		break;
	case CDR_R_AFTER_PERIOD: {
		char s[24];
		s[cdr__fmt_local(s, x->start_utc +
				       cdr__tz_offset_at(t->tz, x->start_utc))] =
			'\0';
		dput(&d, "starts %s local, after the period %04d-%02d", s,
		     per->year, per->month);
		break;
	}
	case CDR_R_NO_ZONE:
		dput(&d, "no zones.csv prefix matches destination %.*s",
		     (int)(rec->dest_len > 64 ? 64 : rec->dest_len), rec->dest);
		break;
	case CDR_R_INACTIVE:
	case CDR_R_UNKNOWN_SUBSCRIBER: {
		int64_t local =
			x->start_utc + cdr__tz_offset_at(t->tz, x->start_utc);
		char s[24];
		s[cdr__fmt_local(s, local)] = '\0';
		s[10] = '\0';
		if (reason == CDR_R_INACTIVE)
			dput(&d, "subscriber %.*s has no row active on %s",
			     (int)rec->sub_len, rec->sub, s);
		else
			dput(&d, "subscriber %.*s is not in subscribers.csv",
			     (int)rec->sub_len, rec->sub);
		break;
	}
	case CDR_R_NO_RATE: {
		const char *plan = plan_of(t, x);
		const char *zone =
			x->zone < t->nzones ? t->zone_names[x->zone] : "*";
		const char *band =
			x->band == CDR_BAND_STAR ? "*" : t->band_names[x->band];
		if (x->rate_row >= 0) /* the start band had one: a piece not */
			dput(&d, "no rate for a band the call crosses (plan %s, "
				 "%s, zone %s, split from band %s)",
			     plan, svc_names[x->service], zone, band);
		else
			dput(&d, "no rate for plan %s, %s, zone %s, band %s",
			     plan, svc_names[x->service], zone, band);
		break;
	}
	case CDR_R_DUPLICATE:
		break; /* written at the finish, which knows the lines */
	default:
		detail_parse(&d, f, p, n, reason, f->norm);
		break;
	}
	return d.n;
}

/* ---- line numbers ---------------------------------------------------- */

/* Every chunk's (location, lines), sorted, the count replaced by the
 * line number of the chunk's first line. */
static int chunk_table(cdr_run *r, lvec *ct)
{
	int rc = 0;
	for (int i = 0; !rc && i < r->nw; i++)
		for (size_t k = 0; !rc && k < r->w[i].chunks.n; k++)
			rc = cdr__lvec_push(ct, r->w[i].chunks.e[2 * k],
					    r->w[i].chunks.e[2 * k + 1]);
	if (rc)
		return rc;
	if (ct->n)
		qsort(ct->e, ct->n, 2 * sizeof(uint64_t), cdr__cmp_pair);
	uint64_t line = 1, in = UINT64_MAX;
	for (size_t k = 0; k < ct->n; k++) {
		uint64_t idx = ct->e[2 * k] >> LOC_OFF_BITS;
		if (idx != in) {
			in = idx;
			line = 1;
		}
		uint64_t n = ct->e[2 * k + 1];
		ct->e[2 * k + 1] = line;
		line += n;
	}
	return 0;
}

/* The chunk holding loc: index of the last chunk at or before it. */
static size_t chunk_at(const lvec *ct, uint64_t loc)
{
	size_t lo = 0, hi = ct->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ct->e[2 * mid] <= loc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : 0;
}

/*
 * Line numbers of sorted locations, by reading each one's chunk back from
 * the chunk's start and counting newlines: consecutive locations of one
 * chunk continue the count. Inputs are read as dedup.c reads them (the
 * spool, or the path it checked).
 */
static int lines_back(cdr_run *r, const lvec *ct, const uint64_t *locs,
		      size_t n, uint64_t *lines)
{
	enum { BLK = 1 << 20 };
	char *blk = malloc(BLK);
	int fd = -1, rc = 0;
	uint32_t open_idx = UINT32_MAX;
	size_t cur = SIZE_MAX; /* chunk being counted */
	uint64_t pos = 0, line = 0;
	if (!blk)
		return -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		uint32_t idx = (uint32_t)(locs[i] >> LOC_OFF_BITS);
		const input *in = &r->in[idx];
		if (idx != open_idx) {
			if (fd >= 0 && fd != r->in[open_idx].spool_fd)
				close(fd);
			open_idx = idx;
			fd = in->spool_fd >= 0
				     ? in->spool_fd
				     : cdr__sys_table.open(cdr__in_open_path(in),
							   O_RDONLY | O_CLOEXEC, 0);
			if (fd < 0) {
				rc = -errno;
				break;
			}
			cur = SIZE_MAX;
		}
		size_t c = chunk_at(ct, locs[i]);
		uint64_t off = locs[i] & ((1ULL << LOC_OFF_BITS) - 1);
		if (c != cur) {
			cur = c;
			pos = ct->e[2 * c] & ((1ULL << LOC_OFF_BITS) - 1);
			line = ct->e[2 * c + 1];
		}
		while (pos < off) {
			size_t want = off - pos < BLK ? (size_t)(off - pos) : BLK;
			ssize_t got = pread(fd, blk, want,
					    (off_t)(in->spool_at + pos));
			if (got <= 0) {
				rc = got < 0 ? -errno : -ESTALE;
				break;
			}
			for (const char *q = blk, *e = blk + got;
			     (q = memchr(q, '\n', (size_t)(e - q))); q++)
				line++;
			pos += (uint64_t)got;
		}
		lines[i] = line;
	}
	if (fd >= 0 && open_idx != UINT32_MAX && fd != r->in[open_idx].spool_fd)
		close(fd);
	free(blk);
	return rc;
}

/* ---- finishing ------------------------------------------------------- */

int cdr__cmp_pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return (x[0] > y[0]) - (x[0] < y[0]);
}

static int cmp_u64(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return (*x > *y) - (*x < *y);
}

/* Is loc among the sorted taken-back locations? */
static int taken_back(const uint64_t *locs, size_t n, uint64_t loc)
{
	return n && bsearch(&loc, locs, n, sizeof(*locs), cmp_u64) != NULL;
}

/* The temporary a worker's records go to: unlinked at once. */
int cdr__out_tmp(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/cdrate-out-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	unlink(path);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_APPEND)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The workers' records, mapped (NULL and 0 when there are none). */
static int map_tmp(int fd, void **p, size_t *n)
{
	struct stat st;
	*p = NULL;
	*n = 0;
	if (fstat(fd, &st))
		return -errno;
	if (!st.st_size)
		return 0;
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	*p = m;
	*n = (size_t)st.st_size;
	return 0;
}

/* Buffered writes to an output's temporary. */
typedef struct wbuf {
	int fd;
	char *b;
	size_t n;
	int rc;
} wbuf;

static void wb_put(wbuf *w, const char *s, size_t n)
{
	if (w->rc)
		return;
	if (w->n + n > OUTBUF) {
		if (cdr__write_all(w->fd, w->b, w->n))
			w->rc = -errno;
		w->n = 0;
	}
	if (n > OUTBUF) {
		if (!w->rc && cdr__write_all(w->fd, s, n))
			w->rc = -errno;
		return;
	}
	memcpy(w->b + w->n, s, n);
	w->n += n;
}

static int wb_end(wbuf *w)
{
	if (!w->rc && w->n && cdr__write_all(w->fd, w->b, w->n))
		w->rc = -errno;
	return w->rc;
}

static int cmp_rej(const void *a, const void *b)
{
	rej_hdr x, y;
	memcpy(&x, *(const char *const *)a, sizeof(x));
	memcpy(&y, *(const char *const *)b, sizeof(y));
	return (x.key > y.key) - (x.key < y.key);
}

/* An itemize row's sort key, gathered so the sort reads only this. */
typedef struct ikey {
	uint32_t account;
	int64_t start_utc;
	const char *rec;
} ikey;

static int cmp_item(const void *a, const void *b)
{
	const ikey *x = a, *y = b;
	if (x->account != y->account)
		return x->account < y->account ? -1 : 1;
	if (x->start_utc != y->start_utc)
		return x->start_utc < y->start_utc ? -1 : 1;
	item_hdr hx, hy; /* same account, same second: by the row's bytes */
	memcpy(&hx, x->rec, sizeof(hx));
	memcpy(&hy, y->rec, sizeof(hy));
	size_t m = hx.n < hy.n ? hx.n : hy.n;
	int c = memcmp(x->rec + sizeof(hx), y->rec + sizeof(hy), m);
	if (c || hx.n != hy.n)
		return c ? c : (hx.n > hy.n) - (hx.n < hy.n);
	return (hx.loc > hy.loc) - (hx.loc < hy.loc);
}

/* Pointers to the records of [p, p + n) not taken back, appended to *v. */
static int index_records(const char *p, size_t n, int rej, const uint64_t *tb,
			 size_t ntb, const char ***v, size_t *nv, size_t *cap)
{
	for (size_t o = 0; o < n;) {
		uint64_t loc;
		size_t len;
		if (rej) {
			rej_hdr h;
			memcpy(&h, p + o, sizeof(h));
			loc = h.loc;
			len = sizeof(h) + h.dn + h.n;
		} else {
			item_hdr h;
			memcpy(&h, p + o, sizeof(h));
			loc = h.loc;
			len = sizeof(h) + h.n;
		}
		if (!taken_back(tb, ntb, loc)) {
			if (*nv == *cap) {
				size_t c = *cap ? *cap * 2 : 1024;
				const char **nw = realloc(*v, c * sizeof(*nw));
				if (!nw)
					return -ENOMEM;
				*v = nw;
				*cap = c;
			}
			(*v)[(*nv)++] = p + o;
		}
		o += len;
	}
	return 0;
}

/* The line counted for loc, one of the sorted locs[0, n). */
static uint64_t line_at(const uint64_t *locs, const uint64_t *lines, size_t n,
			uint64_t loc)
{
	const uint64_t *p = bsearch(&loc, locs, n, sizeof(*locs), cmp_u64);
	return lines[p - locs];
}

/* The duplicate rejects, as worker records with absolute lines. */
static int dup_records(cdr_run *r, const dupset *d, const lvec *ct,
		       char **out, size_t *outn)
{
	size_t nl = 2 * d->n;
	uint64_t *locs = malloc((nl ? nl : 1) * sizeof(*locs));
	uint64_t *lines = malloc((nl ? nl : 1) * sizeof(*lines));
	size_t cap = d->text.n + d->n * (sizeof(rej_hdr) + 4200);
	char *b = malloc(cap ? cap : 1);
	int rc = !locs || !lines || !b ? -ENOMEM : 0;
	size_t u = 0;
	/* Lines dedup.c has not counted (inputs other than compressed ones)
	 * are counted here. */
	nl = 0;
	for (size_t i = 0; !rc && i < d->n; i++) {
		if (!d->lline[2 * i])
			locs[nl++] = d->loc[i];
		if (!d->lline[2 * i + 1])
			locs[nl++] = d->win[i];
	}
	if (!rc) {
		qsort(locs, nl, sizeof(*locs), cmp_u64);
		for (size_t i = 0; i < nl; i++)
			if (!u || locs[u - 1] != locs[i])
				locs[u++] = locs[i];
		rc = lines_back(r, ct, locs, u, lines);
	}
	size_t o = 0;
	for (size_t i = 0; !rc && i < d->n; i++) {
		uint64_t la = d->lline[2 * i], lw = d->lline[2 * i + 1];
		if (!la)
			la = line_at(locs, lines, u, d->loc[i]);
		if (!lw)
			lw = line_at(locs, lines, u, d->win[i]);
		la = cdr__in_line(&r->in[d->loc[i] >> LOC_OFF_BITS], la);
		lw = cdr__in_line(&r->in[d->win[i] >> LOC_OFF_BITS], lw);
		char det[4200];
		const char *wpath = r->in[d->win[i] >> LOC_OFF_BITS].path;
		int dn = snprintf(det, sizeof(det), "duplicate of %.4000s:%llu",
				  wpath,
				  (unsigned long long)lw);
		const char *p = d->text.text + d->text.off[i];
		size_t n = d->text.off[i + 1] - d->text.off[i];
		uint64_t loc = d->loc[i];
		uint64_t key = (uint64_t)r->rank[loc >> LOC_OFF_BITS]
				       << LOC_OFF_BITS |
			       (loc & ((1ULL << LOC_OFF_BITS) - 1));
		put_rej(b + o, key, loc, LINE_ABS | la,
			CDR_R_DUPLICATE, det, (size_t)dn, p, n);
		o += sizeof(rej_hdr) + (size_t)dn + n;
	}
	free(locs);
	free(lines);
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	*outn = o;
	return 0;
}

static const char REJECTS_HEADER[] = "file,line,reason,detail,record\n";
static const char ITEMIZE_HEADER[] =
	"id,account,subscriber,service,start,destination,zone,band,plan,"
	"quantity,charge\n";

int cdr__finish_rejects(cdr_run *r, const dupset *d, char *err, size_t errlen)
{
	const char *label = cdr__outputs_label(r->rej_out.set, r->rej_out.id);
	const char **v = NULL;
	void *map = NULL;
	char *dups = NULL, *line = NULL;
	size_t n = 0, nv = 0, vcap = 0, dn = 0;
	lvec ct = {0};
	uint64_t *tb = malloc((d->n ? d->n : 1) * sizeof(*tb));
	wbuf wb = {r->rej_out.fd, malloc(OUTBUF), 0, 0};
	line = malloc(CDR__CSV_BOUND(CDR_LINE_MAX + 4096 + 4200) + 64);
	int rc = !tb || !wb.b || !line ? -ENOMEM : 0;
	if (!rc) {
		if (d->n) { /* memcpy and qsort want pointers even for none */
			memcpy(tb, d->loc, d->n * sizeof(*tb));
			qsort(tb, d->n, sizeof(*tb), cmp_u64);
		}
		rc = map_tmp(r->rej_tmp, &map, &n);
	}
	const char *p = map;
	if (!rc)
		rc = chunk_table(r, &ct);
	if (!rc)
		rc = index_records(p, n, 1, tb, d->n, &v, &nv, &vcap);
	if (!rc && d->n)
		rc = dup_records(r, d, &ct, &dups, &dn);
	if (!rc)
		rc = index_records(dups, dn, 1, NULL, 0, &v, &nv, &vcap);
	if (!rc && nv)
		qsort(v, nv, sizeof(*v), cmp_rej);
	if (!rc)
		wb_put(&wb, REJECTS_HEADER, sizeof(REJECTS_HEADER) - 1);
	for (size_t i = 0; !rc && i < nv; i++) {
		rej_hdr h;
		memcpy(&h, v[i], sizeof(h));
		const char *det = v[i] + sizeof(h), *rec = det + h.dn;
		const char *path = r->in[h.loc >> LOC_OFF_BITS].path;
		/* A worker's reject always has its chunk in the table. */
		uint64_t ln = h.line & LINE_ABS ? h.line & ~LINE_ABS
			      : ct.n ? ct.e[2 * chunk_at(&ct, h.loc) + 1] + h.line
				     : h.line + 1;
		if (!(h.line & LINE_ABS)) /* a duplicate's is mapped already */
			ln = cdr__in_line(&r->in[h.loc >> LOC_OFF_BITS], ln);
		const char *reason = cdr_reason_name(h.reason);
		size_t o = cdr__csv_text(line, path, strlen(path), 0);
		line[o++] = ',';
		o += cdr__fmt_u128(line + o, ln);
		line[o++] = ',';
		/* A line, not a C string. */
		memcpy(line + o, reason, strlen(reason)); // NOLINT(bugprone-not-null-terminated-result)
		o += strlen(reason);
		line[o++] = ',';
		o += cdr__csv_text(line + o, det, h.dn, 0);
		line[o++] = ',';
		o += cdr__csv_text(line + o, rec, h.n, 1);
		line[o++] = '\n';
		wb_put(&wb, line, o);
	}
	if (!rc)
		rc = wb_end(&wb);
	if (map)
		munmap(map, n);
	free(v);
	free(dups);
	free(line);
	free(tb);
	free(wb.b);
	free(ct.e);
	if (rc)
		snprintf(err, errlen, "%s: cannot write: %s", label,
			 strerror(-rc));
	return rc;
}

int cdr__finish_itemize(cdr_run *r, const dupset *d, char *err, size_t errlen)
{
	const char *label = cdr__outputs_label(r->item_out.set, r->item_out.id);
	const char **v = NULL;
	void *map = NULL;
	size_t n = 0, nv = 0, vcap = 0;
	uint64_t *tb = malloc((d->n ? d->n : 1) * sizeof(*tb));
	wbuf wb = {r->item_out.fd, malloc(OUTBUF), 0, 0};
	int rc = !tb || !wb.b ? -ENOMEM : 0;
	if (!rc) {
		if (d->n) { /* memcpy and qsort want pointers even for none */
			memcpy(tb, d->loc, d->n * sizeof(*tb));
			qsort(tb, d->n, sizeof(*tb), cmp_u64);
		}
		rc = map_tmp(r->item_tmp, &map, &n);
	}
	const char *p = map;
	if (!rc)
		rc = index_records(p, n, 0, tb, d->n, &v, &nv, &vcap);
	ikey *k = !rc && nv ? malloc(nv * sizeof(*k)) : NULL;
	if (!rc && nv && !k)
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < nv; i++) {
		item_hdr h;
		memcpy(&h, v[i], sizeof(h));
		k[i] = (ikey){h.account, h.start_utc, v[i]};
	}
	if (!rc && nv)
		qsort(k, nv, sizeof(*k), cmp_item);
	if (!rc)
		wb_put(&wb, ITEMIZE_HEADER, sizeof(ITEMIZE_HEADER) - 1);
	for (size_t i = 0; !rc && i < nv; i++) {
		item_hdr h;
		memcpy(&h, k[i].rec, sizeof(h));
		wb_put(&wb, k[i].rec + sizeof(h), h.n);
	}
	free(k);
	if (!rc)
		rc = wb_end(&wb);
	if (map)
		munmap(map, n);
	free(v);
	free(tb);
	free(wb.b);
	if (rc)
		snprintf(err, errlen, "%s: cannot write: %s", label,
			 strerror(-rc));
	return rc;
}
