/*
 * summary.c - the figures a run's summary reports that the run itself does
 * not keep: fingerprints of the tariff and of the inputs, and the control
 * totals of a totals file.
 *
 * Control totals are taken from the printed totals, not from the sums
 * inside: they are what an operator who loads the file into a spreadsheet
 * or a database and adds up a column gets, so they check the file as
 * written. Each figure is read back as an integer count of 10^-decimals
 * units and added in 128 bits: exact, whatever the row count.
 *
 * Sections: tariff facts - fingerprints - control totals.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "internal.h"
#include "run_int.h"

/* ---- tariff facts ---------------------------------------------------- */

int cdr_tariff_decimals(const cdr_tariff *t)
{
	return t->decimals;
}

/* ---- fingerprints ---------------------------------------------------- */

static void hex128(XXH128_hash_t h, char hex[CDR_FINGERPRINT_HEX])
{
	snprintf(hex, CDR_FINGERPRINT_HEX, "%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
}

/* Name, NUL, decimal size, NUL into the state. */
static void hash_head(XXH3_state_t *st, const char *name, uint64_t size)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
	XXH3_128bits_update(st, name, strlen(name) + 1);
	XXH3_128bits_update(st, num, (size_t)n + 1);
}

/* Hash one file under `name`; 1 hashed, 0 absent, -errno. */
static int hash_file(XXH3_state_t *st, const char *name, const char *path,
		     char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	/* The size heads the bytes, so a file that grows while hashed gives
	 * a fingerprint of no file; the tariff was loaded already, so that
	 * only mislabels a run that read a file being rewritten. */
	hash_head(st, name, (uint64_t)sb.st_size);
	char buf[1 << 16];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		XXH3_128bits_update(st, buf, (size_t)n);
	int e = n < 0 ? errno : 0;
	close(fd);
	if (e) {
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	return 1;
}

int cdr_tariff_fingerprint(const char *dir, const char *subscribers_path,
			   char hex[CDR_FINGERPRINT_HEX], unsigned *nfiles,
			   char *err, size_t errlen)
{
	/* Every file cdr_tariff_load reads, sorted by name bytewise. */
	static const char *const names[] = {
		"bands.csv",	"holidays.csv",	   "normalize.csv",
		"outages.csv",	"packages.csv",	   "plans.csv",
		"rates.csv",	"subscribers.csv", "tariff.conf",
		"zones.csv",
	};
	XXH3_state_t *st = XXH3_createState();
	unsigned n = 0;
	int rc = 0;
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	XXH3_128bits_reset(st);
	for (size_t i = 0; !rc && i < sizeof(names) / sizeof(*names); i++) {
		char path[4096];
		const char *p = path;
		if (subscribers_path && !strcmp(names[i], "subscribers.csv"))
			p = subscribers_path;
		else if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
					  names[i]) >= sizeof(path)) {
			snprintf(err, errlen, "%s: name too long", dir);
			rc = -ENAMETOOLONG;
			break;
		}
		int got = hash_file(st, names[i], p, err, errlen);
		if (got < 0)
			rc = got;
		else
			n += (unsigned)got;
	}
	if (!rc) {
		hex128(XXH3_128bits_digest(st), hex);
		if (nfiles)
			*nfiles = n;
	}
	XXH3_freeState(st);
	return rc;
}

uint64_t cdr_run_input_bytes(const cdr_run *r, uint32_t i)
{
	return i < r->nin && r->in[i].size > 0 ? (uint64_t)r->in[i].size : 0;
}

void cdr_run_fingerprint(const cdr_run *r, char hex[CDR_FINGERPRINT_HEX])
{
	XXH3_state_t *st = XXH3_createState();
	if (!st) {
		snprintf(hex, CDR_FINGERPRINT_HEX, "%s", "-");
		return;
	}
	XXH3_128bits_reset(st);
	for (uint32_t i = 0; i < r->nin; i++)
		hash_head(st, r->in[i].path, cdr_run_input_bytes(r, i));
	hex128(XXH3_128bits_digest(st), hex);
	XXH3_freeState(st);
}

/* ---- control totals -------------------------------------------------- */

static const char *const money_cols[CDR_MONEY_COLUMNS] = {
	"voice_charge",	    "sms_charge",	"data_charge",
	"allowance_credit", "recurring_charge", "outage_credit",
	"total",
};

const char *cdr_money_column(int i)
{
	return i >= 0 && i < CDR_MONEY_COLUMNS ? money_cols[i] : NULL;
}

/* A plain integer field; -1 when it is not one. */
static int read_count(const char *p, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	if (!n || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(p[i] - '0');
	}
	*v = x;
	return 0;
}

/* A printed amount with exactly `dec` places, as units of 10^-dec. */
static int read_amount(const char *p, size_t n, int dec, i128 *v)
{
	int neg = n && p[0] == '-';
	size_t i = (size_t)neg, digits = 0, frac = 0;
	int point = 0;
	i128 x = 0;
	for (; i < n; i++) {
		if (p[i] == '.' && !point && dec > 0) {
			point = 1;
			continue;
		}
		if (p[i] < '0' || p[i] > '9' || ++digits > 30)
			return -1;
		frac += (size_t)point;
		x = x * 10 + (p[i] - '0');
	}
	if (!digits || (dec > 0 && (!point || frac != (size_t)dec)))
		return -1;
	*v = neg ? -x : x;
	return 0;
}

/*
 * The usual field read in 64 bits, in one walk that also finds its end:
 * from p (below nl), an optional '-' (amounts only: dec >= 0), digits,
 * and with dec > 0 a point and exactly dec digits, 18 digits at most,
 * ending at `stop` (a comma, or nl itself when stop is '\n'). 0 and
 * *v, *endp at the stop; -1 for anything else, which the careful reader
 * above decides (it was 80% of a run's control totals: an i128 multiply
 * a digit and a memchr a field).
 */
static inline int fast_field(const char *p, const char *nl, int dec,
			     char stop, int64_t *v, const char **endp)
{
	const char *s = p;
	const int neg = dec >= 0 && s < nl && *s == '-';
	s += neg;
	uint64_t x = 0;
	const char *d = s;
	while (s < nl && (unsigned char)(*s - '0') <= 9)
		x = x * 10 + (uint64_t)(*s++ - '0');
	size_t digits = (size_t)(s - d);
	if (dec > 0) {
		if (s == nl || *s != '.')
			return -1;
		d = ++s;
		while (s < nl && (unsigned char)(*s - '0') <= 9)
			x = x * 10 + (uint64_t)(*s++ - '0');
		if (s - d != dec)
			return -1;
		digits += (size_t)dec;
	}
	if (!digits || digits > 18 || (stop == '\n' ? s != nl : s == nl || *s != stop))
		return -1;
	*v = neg ? -(int64_t)x : (int64_t)x;
	*endp = s;
	return 0;
}

/* The rows [p, end) of a totals text: counts and sums, or -EINVAL. */
typedef struct ctl_part {
	const char *p, *end;
	int dec, rc;
	uint64_t accounts, records, late;
	i128 sum[CDR_MONEY_COLUMNS];
} ctl_part;

static void *ctl_rows(void *arg)
{
	ctl_part *c = arg;
	const int decimals = c->dec;
	const char *p = c->p, *end = c->end;
	c->rc = -EINVAL;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return NULL;
		/* 14 fields: account, period, 5 counts, 7 amounts. The
		 * account may not hold a comma (it is a plain CSV field). */
		const char *f = p;
		for (int k = 0; k < 14; k++) {
			const int count = k == 2 || k == 3, amount = k >= 7;
			int64_t v;
			const char *fe;
			if ((count || amount) &&
			    !fast_field(f, nl, count ? -1 : decimals,
					k == 13 ? '\n' : ',', &v, &fe)) {
				if (k == 2)
					c->records += (uint64_t)v;
				else if (k == 3)
					c->late += (uint64_t)v;
				else
					c->sum[k - 7] += v;
				f = fe + 1;
				continue;
			}
			const char *e = k == 13 ? nl
						: memchr(f, ',', (size_t)(nl - f));
			if (!e)
				return NULL;
			size_t n = (size_t)(e - f);
			uint64_t q;
			i128 a;
			if (k == 2 || k == 3) {
				if (read_count(f, n, &q))
					return NULL;
				if (k == 2)
					c->records += q;
				else
					c->late += q;
			} else if (k >= 7) {
				if (read_amount(f, n, decimals, &a))
					return NULL;
				c->sum[k - 7] += a;
			}
			f = e + 1;
		}
		c->accounts++;
		p = nl + 1;
	}
	c->rc = 0;
	return NULL;
}

/* Texts from this size are read as two halves on two threads (the sums
 * are exact integers: the same in any order). */
#define CTL_SPLIT_MIN ((size_t)4 << 20)

int cdr_totals_control(const char *csv, size_t len, int decimals,
		       cdr_control *c)
{
	static const char header[] =
		"account,period,records,late_records,voice_seconds,sms_count,"
		"data_bytes,voice_charge,sms_charge,data_charge,"
		"allowance_credit,recurring_charge,outage_credit,total\n";
	memset(c, 0, sizeof(*c));
	if (decimals < 0 || decimals > 6 || len < sizeof(header) - 1 ||
	    memcmp(csv, header, sizeof(header) - 1) != 0)
		return -EINVAL;
	const char *p = csv + sizeof(header) - 1, *end = csv + len;
	ctl_part part[2];
	memset(part, 0, sizeof(part));
	part[0] = (ctl_part){.p = p, .end = end, .dec = decimals};
	part[1] = (ctl_part){.p = end, .end = end, .dec = decimals};
	const char *mid = (size_t)(end - p) >= CTL_SPLIT_MIN
				  ? memchr(p + (end - p) / 2, '\n',
					   (size_t)(end - (p + (end - p) / 2)))
				  : NULL;
	pthread_t th;
	int started = 0;
	if (mid) {
		part[0].end = part[1].p = mid + 1;
		started = !pthread_create(&th, NULL, ctl_rows, &part[1]);
	}
	ctl_rows(&part[0]);
	if (started)
		pthread_join(th, NULL);
	else if (mid)
		ctl_rows(&part[1]);
	if (part[0].rc || part[1].rc)
		return -EINVAL;
	c->accounts = part[0].accounts + part[1].accounts;
	c->records = part[0].records + part[1].records;
	c->late = part[0].late + part[1].late;
	for (int i = 0; i < CDR_MONEY_COLUMNS; i++) {
		const i128 sum = part[0].sum[i] + part[1].sum[i];
		c->money[i][cdr__fmt_scaled(c->money[i], sum, decimals)] = '\0';
	}
	return 0;
}
