/*
 * test_tariff_image.c - the compiled image of the subscriber tables
 * (tariff_image.c): a tariff through its image is the tariff from CSV,
 * table by table; a damaged, truncated, foreign, other-version or stale
 * image is never used, and the load then is the CSV's; the writer never
 * writes a FIFO or into the tariff.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tariff_image.h"
#include "testutil.h"

static char err[CDR_ERR_MAX];

/* n numbers, a third of them with a package, some with a second row
 * (a plan change the day after, or another account), accounts out of
 * order, "-" among them. */
static char *many_subs(unsigned n)
{
	size_t cap = (size_t)n * 80 + 4096, o = 0;
	char *s = malloc(cap);
	cr_assert_not_null(s);
	o += (size_t)snprintf(s + o, cap - o,
			      "subscriber,account,plan,packages,from,to\n");
	for (unsigned i = 0; i < n; i++)
		o += (size_t)snprintf(s + o, cap - o,
				      "%s139%08u,%s%u,%s,%s,2025-01-01,%s\n",
				      i % 11 ? "" : "+", i, i == 17 ? "-" : "K",
				      (i * 7919u) % (n / 3 + 1),
				      i % 3 ? "m18" : "f25", i % 5 ? "" : "d1",
				      i % 13 ? "" : "2026-10-09");
	for (unsigned i = 0; i < n; i += 13)
		o += (size_t)snprintf(s + o, cap - o,
				      "139%08u,%s%u,m18,,2026-10-10,\n", i,
				      i % 2 ? "N" : "K", (i * 7919u) % (n / 3 + 1));
	return s;
}

/* A tariff of n subscribers with a package, and a directory for its
 * image next to it (never inside: the tariff is protected). */
static char *img_tariff(unsigned n, char **cache_dir, char path[512])
{
	char *dir = tu_tariff();
	tu_write(dir, "packages.csv",
		 "package,monthly_fee,service,zone,band,amount\n"
		 "d1,5,data,*,*,1048576\n");
	char *subs = many_subs(n);
	tu_write(dir, "subscribers.csv", subs);
	free(subs);
	*cache_dir = strdup("/tmp/cdrate-img-XXXXXX");
	cr_assert_not_null(mkdtemp(*cache_dir));
	snprintf(path, 512, "%s/t.img", *cache_dir);
	return dir;
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

/* Every subscriber table of a and b equal. */
static void same_tables(const cdr_tariff *a, const cdr_tariff *b)
{
	cr_assert_eq(a->nsubs, b->nsubs);
	cr_assert_eq(a->nrows, b->nrows);
	cr_assert_eq(a->naccounts, b->naccounts);
	cr_assert_eq(a->dash_account, b->dash_account);
	for (uint32_t i = 0; i < a->naccounts; i++)
		cr_assert_str_eq(a->accounts[i], b->accounts[i]);
	for (uint32_t i = 0; i < a->nsubs; i++) {
		cr_assert_str_eq(a->subs[i].num, b->subs[i].num);
		cr_assert_eq(a->subs[i].first_row, b->subs[i].first_row);
		cr_assert_eq(a->subs[i].nrows, b->subs[i].nrows);
	}
	size_t npk = 0;
	for (uint32_t i = 0; i < a->nrows; i++) {
		const cdr__sub_row *x = &a->rows[i], *y = &b->rows[i];
		cr_assert(x->sub == y->sub && x->account == y->account &&
				  x->plan == y->plan &&
				  x->first_pkg == y->first_pkg &&
				  x->npkg == y->npkg &&
				  x->from_day == y->from_day &&
				  x->to_day == y->to_day && x->line == y->line &&
				  x->change_start == y->change_start &&
				  x->change_end == y->change_end,
			  "row %u", i);
		cr_assert_eq(a->row_allow_svc[i], b->row_allow_svc[i]);
		npk += x->npkg;
	}
	if (npk)
		cr_assert_eq(memcmp(a->row_pkgs, b->row_pkgs,
				    npk * sizeof(uint32_t)),
			     0);
	const cdr__submap *ma = a->sub_map, *mb = b->sub_map;
	for (unsigned k = 0; k < SUB_SHARDS; k++) {
		cr_assert_eq(ma->mask[k], mb->mask[k]);
		cr_assert_eq(ma->n[k], mb->n[k]);
		cr_assert_eq(memcmp(ma->s[k], mb->s[k],
				    ((size_t)ma->mask[k] + 1) * sizeof(subslot)),
			     0, "shard %u", k);
	}
	/* lookups, hits and misses */
	for (uint32_t i = 0; i < a->nsubs; i++) {
		const char *num = a->subs[i].num;
		cr_assert_eq(cdr__sub_lookup(b, num, strlen(num)), (int32_t)i);
	}
	cr_assert_eq(cdr__sub_lookup(b, "99999", 5), -1);
	char *la = check_list(a), *lb = check_list(b);
	cr_assert_str_eq(la, lb);
	free(la);
	free(lb);
	cr_assert_eq(a->noutages, b->noutages);
	for (uint32_t i = 0; i < a->noutages; i++)
		cr_assert_eq(a->outages[i].sub, b->outages[i].sub);
}

/* Load dir through the image at path. */
static cdr_tariff *load_c(const char *dir, const char *path,
			  cdr_tariff_cache *ci)
{
	cdr_tariff *t = NULL;
	int rc = cdr_tariff_load_cached(&t, dir, NULL, path, ci, err,
					sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	return t;
}

/* A load that writes the image, then one that uses it. */
static void build(const char *dir, const char *path)
{
	cdr_tariff_cache ci;
	cdr_tariff *t = load_c(dir, path, &ci);
	cr_assert_eq(ci.used, 0);
	cr_assert_eq(strlen(ci.fp), 32);
	cr_assert_eq(cdr_tariff_cache_write(t, ci.fp, path, err, sizeof(err)),
		     0, "%s", err);
	cdr_tariff_free(t);
}

static void rm_img(char *cache_dir, const char *path)
{
	unlink(path);
	rmdir(cache_dir);
	free(cache_dir);
}

Test(tariff_image, round_trip_equals_the_csv_load)
{
	char *cd, path[512];
	char *dir = img_tariff(20000, &cd, path);
	tu_write(dir, "outages.csv",
		 "subscriber,from,to\n13900000005,2026-10-03 10:00:00,"
		 "2026-10-04 10:00:00\n");
	cdr_tariff_cache ci;
	cdr_tariff *csv = tu_load(dir, err);
	cr_assert_not_null(csv, "%s", err);
	cdr_tariff *first = load_c(dir, path, &ci);
	cr_assert_eq(ci.used, 0);
	cr_assert_str_eq(ci.why, "no image yet");
	/* the fingerprint is the one the summary prints */
	char fp[CDR_FINGERPRINT_HEX];
	unsigned nf;
	cr_assert_eq(cdr_tariff_fingerprint(dir, NULL, fp, &nf, err,
					    sizeof(err)),
		     0);
	cr_assert_str_eq(ci.fp, fp);
	cr_assert_eq(ci.nfiles, nf);
	same_tables(csv, first);
	cr_assert_eq(cdr_tariff_cache_write(first, ci.fp, path, err,
					    sizeof(err)),
		     0, "%s", err);
	cdr_tariff_free(first);
	for (int copy = 0; copy < 2; copy++) {
		cdr__timg_copy = copy;
		cdr_tariff *img = load_c(dir, path, &ci);
		cdr__timg_copy = 0;
		cr_assert_eq(ci.used, 1, "%s", ci.why);
		cr_assert_not_null(img->img);
		cr_assert_str_eq(ci.fp, fp);
		same_tables(csv, img);
		cdr_tariff_free(img);
	}
	cdr_tariff_free(csv);
	rm_img(cd, path);
	tu_rmdir(dir);
}

/* Overwrite len bytes at off of the file. */
static void poke(const char *path, off_t off, const void *b, size_t len)
{
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, b, len, off), (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	return st.st_size;
}

/* After damage that makes `why` (a prefix), the load is the CSV's and
 * a rewrite makes the image usable again. */
static void rejected(const char *dir, const char *path, const char *why)
{
	cdr_tariff_cache ci;
	cdr_tariff *csv = tu_load(dir, err);
	cr_assert_not_null(csv, "%s", err);
	cdr_tariff *t = load_c(dir, path, &ci);
	cr_assert_eq(ci.used, 0, "used a damaged image (%s)", why);
	cr_assert_null(t->img);
	cr_assert(strncmp(ci.why, why, strlen(why)) == 0, "why '%s', wanted '%s'",
		  ci.why, why);
	same_tables(csv, t);
	cr_assert_eq(cdr_tariff_cache_write(t, ci.fp, path, err, sizeof(err)),
		     0, "%s", err);
	cdr_tariff_free(t);
	t = load_c(dir, path, &ci);
	cr_assert_eq(ci.used, 1, "%s", ci.why);
	same_tables(csv, t);
	cdr_tariff_free(t);
	cdr_tariff_free(csv);
}

Test(tariff_image, damaged_images_are_rejected_and_rebuilt)
{
	char *cd, path[512];
	char *dir = img_tariff(3000, &cd, path);
	build(dir, path);
	off_t n = file_size(path);
	/* a flipped byte in the body (the rows), at the end (a slot) */
	unsigned char b;
	int fd = open(path, O_RDONLY);
	cr_assert_eq(pread(fd, &b, 1, n / 2), 1);
	close(fd);
	b ^= 0x10;
	poke(path, n / 2, &b, 1);
	rejected(dir, path, "corrupt (checksum)");
	poke(path, n - 1, "\x01", 1);
	rejected(dir, path, "corrupt (checksum)");
	/* the header: a count changed */
	uint32_t big = 7;
	poke(path, 100, &big, sizeof(big));
	rejected(dir, path, "corrupt");
	/* truncated: cut short, and cut inside the header */
	cr_assert_eq(truncate(path, n - 4096), 0);
	rejected(dir, path, "truncated");
	cr_assert_eq(truncate(path, 40), 0);
	rejected(dir, path, "truncated");
	/* extended */
	fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_eq(write(fd, "x", 1), 1);
	close(fd);
	rejected(dir, path, "truncated or extended");
	/* another byte order, another version, not an image at all */
	const uint32_t swapped = 0x04030201u;
	poke(path, 8, &swapped, 4);
	rejected(dir, path, "made on a machine of another byte order");
	poke(path, 16, "9.9.9", 6);
	rejected(dir, path, "made by another version");
	poke(path, 0, "cdrtimg", 7);
	rejected(dir, path, "not a tariff image");
	/* an empty file */
	fd = open(path, O_WRONLY | O_TRUNC);
	close(fd);
	rejected(dir, path, "truncated");
	rm_img(cd, path);
	tu_rmdir(dir);
}

Test(tariff_image, stale_after_an_edit)
{
	char *cd, path[512];
	char *dir = img_tariff(2000, &cd, path);
	build(dir, path);
	/* a new row in subscribers.csv: the fingerprint moves */
	char *subs = many_subs(2000);
	size_t l = strlen(subs);
	char *more = malloc(l + 64);
	memcpy(more, subs, l);
	snprintf(more + l, 64, "15000000001,NEW,m18,,2026-10-01,\n");
	tu_write(dir, "subscribers.csv", more);
	free(subs);
	free(more);
	rejected(dir, path, "stale");
	cdr_tariff_cache ci;
	cdr_tariff *t = load_c(dir, path, &ci);
	cr_assert_eq(ci.used, 1);
	cr_assert_geq(cdr__sub_lookup(t, "15000000001", 11), 0);
	cdr_tariff_free(t);
	/* another file of the tariff (rates.csv) also makes it stale */
	tu_write(dir, "rates.csv", T_RATES "f25,sms,*,*,0,0.2,1,1,1\n");
	rejected(dir, path, "stale");
	rm_img(cd, path);
	tu_rmdir(dir);
}

/* plans.csv changed between the fingerprint and its load: the image's
 * plan indexes would name other plans, so it is not attached. */
Test(tariff_image, plans_changed_since_the_fingerprint)
{
	char *cd, path[512];
	char *dir = img_tariff(500, &cd, path);
	build(dir, path);
	char fp[CDR_FINGERPRINT_HEX];
	cr_assert_eq(cdr_tariff_fingerprint(dir, NULL, fp, NULL, err,
					    sizeof(err)),
		     0);
	cdr__timg *img;
	char why[192];
	cr_assert_eq(cdr__timg_open(&img, path, fp, why, sizeof(why)), 0, "%s",
		     why);
	tu_write(dir, "plans.csv", "plan,monthly_fee\nf25,25\nm18,18\n");
	cdr_tariff *t = NULL;
	int used = -1;
	cr_assert_eq(cdr__tariff_load_img(&t, dir, NULL, img, &used, why,
					  sizeof(why), err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(used, 0);
	cr_assert(strstr(why, "plans or packages changed"), "%s", why);
	cdr__timg_close(img);
	cdr_tariff *csv = tu_load(dir, err);
	same_tables(csv, t);
	cdr_tariff_free(csv);
	cdr_tariff_free(t);
	rm_img(cd, path);
	tu_rmdir(dir);
}

Test(tariff_image, writer_refuses_fifos_and_the_tariff)
{
	char *cd, path[512];
	char *dir = img_tariff(100, &cd, path);
	cdr_tariff_cache ci;
	cdr_tariff *t = load_c(dir, path, &ci);
	char fifo[600], inside[600];
	snprintf(fifo, sizeof(fifo), "%s/fifo", cd);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	cr_assert_neq(cdr_tariff_cache_write(t, ci.fp, fifo, err, sizeof(err)),
		      0);
	cr_assert(strstr(err, "not a regular file"), "%s", err);
	snprintf(inside, sizeof(inside), "%s/subscribers.csv", dir);
	cr_assert_neq(cdr_tariff_cache_write(t, ci.fp, inside, err,
					     sizeof(err)),
		      0);
	cr_assert(strstr(err, "the tariff"), "%s", err);
	snprintf(inside, sizeof(inside), "%s/new.img", dir);
	cr_assert_neq(cdr_tariff_cache_write(t, ci.fp, inside, err,
					     sizeof(err)),
		      0);
	cr_assert_eq(access(inside, F_OK), -1);
	/* a FIFO is never opened by a load either */
	cdr_tariff *u = load_c(dir, fifo, &ci);
	cr_assert_eq(ci.used, 0);
	cr_assert_str_eq(ci.why, "not a regular file");
	cdr_tariff_free(u);
	unlink(fifo);
	cdr_tariff_free(t);
	rm_img(cd, path);
	tu_rmdir(dir);
}

/* With the tariff unreadable as a fingerprint, the load is the CSV's,
 * with the CSV's own message. */
Test(tariff_image, a_bad_tariff_fails_as_without_an_image)
{
	char *cd, path[512];
	char *dir = img_tariff(10, &cd, path);
	char p[600];
	snprintf(p, sizeof(p), "%s/zones.csv", dir);
	unlink(p);
	cdr_tariff *t = NULL;
	cdr_tariff_cache ci;
	cr_assert_neq(cdr_tariff_load_cached(&t, dir, NULL, path, &ci, err,
					     sizeof(err)),
		      0);
	cr_assert(strstr(err, "zones.csv"), "%s", err);
	cr_assert_null(t);
	rm_img(cd, path);
	tu_rmdir(dir);
}

/* A whole file, malloc'd. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	cr_assert_geq(n, 0);
	rewind(f);
	char *b = malloc((size_t)n + 1);
	cr_assert_not_null(b);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* The image written beside the caller (start, join) is the bytes of the
 * one written in place, and a load trusts it; two writes may be under
 * way at once; no temporary is left beside it. */
Test(tariff_image, a_write_on_its_own_thread_is_the_same_image)
{
	char *cd, path[512], p2[600], p3[600];
	char *dir = img_tariff(20000, &cd, path);
	snprintf(p2, sizeof(p2), "%s/b.img", cd);
	snprintf(p3, sizeof(p3), "%s/c.img", cd);
	cdr_tariff_cache ci;
	cdr_tariff *t = load_c(dir, path, &ci);
	cr_assert_eq(cdr_tariff_cache_write(t, ci.fp, path, err, sizeof(err)),
		     0, "%s", err);
	cdr_tariff_cache_job *j[2];
	cr_assert_eq(cdr_tariff_cache_start(&j[0], t, ci.fp, p2, err,
					    sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(cdr_tariff_cache_start(&j[1], t, ci.fp, p3, err,
					    sizeof(err)),
		     0, "%s", err);
	cr_assert_not_null(j[0]);
	/* not in place before the join */
	cr_assert_eq(access(p2, F_OK), -1);
	double secs = -1;
	cr_assert_eq(cdr_tariff_cache_join(j[0], &secs, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_geq(secs, 0);
	cr_assert_eq(cdr_tariff_cache_join(j[1], NULL, err, sizeof(err)), 0,
		     "%s", err);
	size_t la, lb, lc;
	char *a = slurp(path, &la), *b = slurp(p2, &lb), *c = slurp(p3, &lc);
	cr_assert_eq(la, lb);
	cr_assert_eq(la, lc);
	cr_assert(memcmp(a, b, la) == 0 && memcmp(a, c, la) == 0);
	free(a);
	free(b);
	free(c);
	cdr_tariff_free(t);
	t = load_c(dir, p2, &ci);
	cr_assert_eq(ci.used, 1, "%s", ci.why);
	cdr_tariff_free(t);
	unlink(p2);
	unlink(p3);
	unlink(path);
	cr_assert_eq(rmdir(cd), 0, "a temporary was left in %s", cd);
	free(cd);
	tu_rmdir(dir);
}

/* A write that cannot be done says so at the join, with the message of
 * the write in place; a NULL job joins as nothing. */
Test(tariff_image, a_failed_write_on_its_own_thread_says_why_at_the_join)
{
	char *cd, path[512], bad[700], file[600];
	char *dir = img_tariff(100, &cd, path);
	snprintf(file, sizeof(file), "%s/file", cd);
	tu_write(cd, "file", "x");
	snprintf(bad, sizeof(bad), "%s/t.img", file);
	cdr_tariff_cache ci;
	cdr_tariff *t = load_c(dir, path, &ci);
	char want[CDR_ERR_MAX];
	cr_assert_neq(cdr_tariff_cache_write(t, ci.fp, bad, want,
					     sizeof(want)),
		      0);
	cdr_tariff_cache_job *j;
	cr_assert_eq(cdr_tariff_cache_start(&j, t, ci.fp, bad, err,
					    sizeof(err)),
		     0, "%s", err);
	double secs = -1;
	cr_assert_neq(cdr_tariff_cache_join(j, &secs, err, sizeof(err)), 0);
	cr_assert_str_eq(err, want);
	cr_assert_eq(secs, 0);
	cr_assert_eq(cdr_tariff_cache_join(NULL, &secs, err, sizeof(err)), 0);
	/* a fingerprint that is not one is refused, as in place */
	cr_assert_eq(cdr_tariff_cache_start(&j, t, "abc", path, err,
					    sizeof(err)),
		     0);
	cr_assert_neq(cdr_tariff_cache_join(j, NULL, err, sizeof(err)), 0);
	cr_assert(strstr(err, "no subscriber tables"), "%s", err);
	cr_assert_eq(access(path, F_OK), -1);
	cdr_tariff_free(t);
	unlink(file);
	rm_img(cd, path);
	tu_rmdir(dir);
}
