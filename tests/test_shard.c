/*
 * test_shard.c - the shard stages through the library: the bucket hash is
 * the documented one and never moves, and split, dedup, rate and merge
 * over a small tariff give the totals and rejects of one run, with a
 * duplicate whose two copies name subscribers of two accounts.
 * tests/e2e/shard.sh covers the command, every format and the refusals.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cdrate/cdrate.h"
#include "testutil.h"

Test(shard, bucket_is_xxh3_64_seed_0_mod_n)
{
	const char *keys[] = {"A1001", "B007", "G338", "-", ""};
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		for (int n = 1; n <= 9; n++)
			cr_expect_eq(cdr_shard_bucket(keys[i], strlen(keys[i]), n),
				     XXH3_64bits_withSeed(keys[i], strlen(keys[i]),
							  0) %
					     (uint64_t)n);
	/* Pinned: parts written today must be read the same way later. */
	cr_expect_eq(cdr_shard_bucket("A1001", 5, 4), 2);
	cr_expect_eq(cdr_shard_bucket("A1001", 5, 7), 0);
	cr_expect_eq(cdr_shard_bucket("B007", 4, 1000), 895);
	cr_expect_eq(cdr_shard_bucket("G338", 4, 7), 5);
	cr_expect_eq(cdr_shard_bucket("", 0, 1000), 138);
}

/* Read a whole file; NULL when it cannot. */
static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *b = malloc(1 << 20);
	*n = fread(b, 1, 1 << 20, f);
	b[*n] = '\0';
	fclose(f);
	return b;
}

/* One run over the inputs: its totals and rejects text. */
static void single(cdr_tariff *t, const char *in, const char *rej,
		   char **tot, size_t *totn)
{
	char err[CDR_ERR_MAX];
	cdr_run_opts ro = {.period_year = 2026, .period_month = 10,
			   .threads = 2, .rejects_path = rej};
	cdr_run *r;
	cr_assert_eq(cdr_run_create(&r, &t, 1, &ro, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(cdr_run_add_input(r, in, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cdr_run_execute(r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cdr_run_totals(r, 0, tot, totn), 0);
	cr_assert_eq(cdr_run_commit(r, err, sizeof(err)), 0, "%s", err);
	cdr_run_free(r);
}

Test(shard, stages_give_the_single_runs_totals_and_rejects)
{
	char *dir = tu_tariff();
	/* Id X1 comes twice, for subscribers of two accounts: the bytewise
	 * smaller line (13800000001's, read second) wins, so A1 is charged
	 * and A2, read first, is not. */
	tu_write(dir, "subscribers.csv",
		 "subscriber,account,plan,packages,from,to\n"
		 "13800000001,A1,m18,,2025-01-01,\n"
		 "13800000002,A2,m18,,2025-01-01,\n"
		 "13800000003,A3,m18,,2025-01-01,\n");
	char in[600], parts[600], rej[600], mrej[600];
	snprintf(in, sizeof(in), "%s/in.csv", dir);
	snprintf(parts, sizeof(parts), "%s/parts", dir);
	snprintf(rej, sizeof(rej), "%s/rej-one.csv", dir);
	snprintf(mrej, sizeof(mrej), "%s/rej-merged.csv", dir);
	tu_write(dir, "in.csv",
		 "id,subscriber,service,start,destination,duration,volume\n"
		 "X1,13800000002,voice,2026-10-05 10:00:00,01012345678,60,0\n"
		 "X2,13800000003,sms,2026-10-06 10:00:00,13912345678,0,0\n"
		 "X1,13800000001,voice,2026-10-05 10:00:00,01012345678,60,0\n"
		 "X3,13899999999,voice,2026-10-07 10:00:00,01012345678,60,0\n"
		 "bad line\n");
	char err[CDR_ERR_MAX];
	cdr_tariff *t = tu_load(dir, err);
	char fp[CDR_FINGERPRINT_HEX];
	cr_assert_eq(cdr_tariff_fingerprint(dir, NULL, fp, NULL, err,
					    sizeof(err)),
		     0);
	char *one;
	size_t onen;
	single(t, in, rej, &one, &onen);

	const char *inputs[] = {in};
	cdr_shard_opts o = {.dir = parts, .shards = 3, .parts = 1,
			    .inputs = inputs, .ninputs = 1, .tariff = t,
			    .tariff_fp = fp, .period_year = 2026,
			    .period_month = 10, .threads = 1};
	cr_assert_eq(cdr_shard_split(&o, err, sizeof(err)), 0, "%s", err);
	/* rate before dedup is refused, naming the missing marker */
	o.bucket = 0;
	cr_assert_eq(cdr_shard_rate(&o, err, sizeof(err)), CDR_SHARD_REFUSED);
	cr_expect(strstr(err, "dedup/bucket-0.ok: missing") != NULL, "%s", err);
	for (o.bucket = 0; o.bucket < 3; o.bucket++)
		cr_assert_eq(cdr_shard_dedup(&o, err, sizeof(err)), 0, "%s", err);
	for (o.bucket = 0; o.bucket < 3; o.bucket++)
		cr_assert_eq(cdr_shard_rate(&o, err, sizeof(err)), 0, "%s", err);

	cdr_outputs *set;
	cr_assert_eq(cdr_outputs_create(&set), 0);
	int rid = cdr_outputs_add(set, "--rejects", mrej, err, sizeof(err));
	cr_assert_gt(rid, 0);
	cr_assert_eq(cdr_outputs_open(set, err, sizeof(err)), 0, "%s", err);
	char *tot;
	size_t totn;
	cdr_shard_result res;
	cr_assert_eq(cdr_shard_merge(&o, set, rid, 0, &tot, &totn, &res, err,
				     sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(cdr_outputs_commit(set, err, sizeof(err)), 0, "%s", err);
	cdr_outputs_free(set);
	cr_expect_eq(totn, onen);
	cr_expect(totn == onen && !memcmp(tot, one, onen), "totals:\n%s\nwant:\n%s",
		  tot, one);
	cr_expect(strstr(tot, "\nA1,2026-10,1,") != NULL, "%s", tot);
	cr_expect(strstr(tot, "\nA2,2026-10,0,") != NULL, "%s", tot);
	cr_expect_eq(res.st.read, 5);
	cr_expect_eq(res.st.rated, 2);
	cr_expect_eq(res.st.rejected, 3);
	size_t a, b;
	char *ra = slurp(rej, &a), *rb = slurp(mrej, &b);
	cr_assert(ra && rb);
	cr_expect(a == b && !memcmp(ra, rb, a), "rejects:\n%s\nwant:\n%s", rb, ra);
	cr_expect(strstr(rb, "duplicate of") != NULL, "%s", rb);
	/* A merge with another N is refused. */
	free(tot);
	cdr_shard_result_free(&res);
	o.shards = 2;
	cr_expect_eq(cdr_shard_merge(&o, NULL, 0, 0, &tot, &totn, &res, err,
				     sizeof(err)),
		     CDR_SHARD_REFUSED);
	cr_expect(strstr(err, "shards 3, not 2") != NULL, "%s", err);
	free(ra);
	free(rb);
	free(one);
	cdr_shard_result_free(&res);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}

/* `rows` and `accounts` of cdr_tariff_describe's subscribers line; every
 * row's account in bucket k of n (k < 0: any). */
static void describe_rows(const cdr_tariff *t, int n, int k, unsigned *rows)
{
	char *b = NULL;
	size_t bn = 0;
	FILE *f = open_memstream(&b, &bn);
	cr_assert(f);
	cdr_tariff_describe(t, f);
	fclose(f);
	const char *p = strstr(b, "\nsubscribers: ");
	cr_assert(p);
	unsigned nums, nacc;
	cr_assert_eq(sscanf(p, "\nsubscribers: %u numbers, %u rows, %u accounts",
			    &nums, rows, &nacc), 3);
	unsigned seen = 0;
	for (const char *q = p + 1; (q = strstr(q, " account ")) != NULL; q++) {
		const char *a = q + 9, *e = strchr(a, ' ');
		cr_assert(e);
		if (k >= 0)
			cr_expect_eq(cdr_shard_bucket(a, (size_t)(e - a), n),
				     (uint32_t)k, "row of account %.*s in bucket %d",
				     (int)(e - a), a, k);
		seen++;
	}
	cr_expect_eq(seen, *rows);
	free(b);
}

Test(shard, a_bucket_load_keeps_its_accounts_rows)
{
	const char *dir = "fixtures/demo/tariff";
	char err[CDR_ERR_MAX];
	cdr_tariff *t;
	unsigned all, sum = 0, one;
	cr_assert_eq(cdr_tariff_load(&t, dir, NULL, err, sizeof(err)), 0, "%s", err);
	describe_rows(t, 1, -1, &all);
	cdr_tariff_free(t);
	cr_assert_gt(all, 5);
	for (int k = 0; k < 3; k++) {
		cr_assert_eq(cdr_tariff_load_bucket(&t, dir, NULL, 3, k, err,
						    sizeof(err)),
			     0, "%s", err);
		describe_rows(t, 3, k, &one);
		cdr_tariff_free(t);
		sum += one;
	}
	cr_expect_eq(sum, all, "every row in exactly one bucket");
	/* shards 0: the whole tariff. */
	cr_assert_eq(cdr_tariff_load_bucket(&t, dir, NULL, 0, 0, err, sizeof(err)), 0);
	describe_rows(t, 1, -1, &one);
	cdr_tariff_free(t);
	cr_expect_eq(one, all);
}
