/*
 * fuzz_tariff.c - libFuzzer target: a whole tariff directory from one input.
 *
 * The input is cut on separator lines "\n@@\n" into up to nine parts, which
 * become, in this order:
 *
 *   tariff.conf  zones.csv  bands.csv  holidays.csv  plans.csv  rates.csv
 *   packages.csv  subscribers.csv  outages.csv
 *
 * (the ninth part takes the rest of the input, separators included). Files
 * without a part are removed, so a short input also exercises missing
 * required and optional files. The directory is made once per process
 * (under /dev/shm when there is one: no disk I/O per run) and removed at
 * exit; each run overwrites its files.
 *
 * Then cdr_tariff_load: on success the tariff is described (to /dev/null)
 * and freed; on failure the message must be non-empty and NUL-terminated
 * inside the buffer and no tariff handed out. LeakSanitizer checks that
 * both paths free everything.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdrate/cdrate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFILES 9
#define SEP "\n@@\n"
#define SEP_LEN 4

static const char *const names[NFILES] = {
	"tariff.conf", "zones.csv",    "bands.csv",
	"holidays.csv", "plans.csv",   "rates.csv",
	"packages.csv", "subscribers.csv", "outages.csv",
};

static char dir[256];
static char paths[NFILES][320];
static FILE *devnull;

static void remove_dir(void)
{
	for (int i = 0; i < NFILES; i++)
		unlink(paths[i]);
	rmdir(dir);
}

static void setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if (!base) {
		base = getenv("TMPDIR");
		if (!base || !*base)
			base = "/tmp";
	}
	snprintf(dir, sizeof(dir), "%s/cdrate-fuzz-tariff-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("fuzz_tariff: mkdtemp");
		abort();
	}
	for (int i = 0; i < NFILES; i++)
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", dir, names[i]);
	devnull = fopen("/dev/null", "w");
	if (!devnull) {
		perror("fuzz_tariff: /dev/null");
		abort();
	}
	atexit(remove_dir);
}

static void put_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f)) {
		perror(path);
		abort();
	}
}

/* The next separator at or after p, or NULL. */
static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end)
{
	while ((size_t)(end - p) >= SEP_LEN) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || (size_t)(end - nl) < SEP_LEN)
			return NULL;
		if (!memcmp(nl, SEP, SEP_LEN))
			return nl;
		p = nl + 1;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		setup();

	const uint8_t *p = data, *end = data + size;
	int k = 0;
	for (; k < NFILES && p; k++) {
		const uint8_t *sep = k < NFILES - 1 ? find_sep(p, end) : NULL;
		const uint8_t *stop = sep ? sep : end;
		put_file(paths[k], p, (size_t)(stop - p));
		p = sep ? sep + SEP_LEN : NULL;
	}
	for (; k < NFILES; k++)
		if (unlink(paths[k]) && errno != ENOENT) {
			perror(paths[k]);
			abort();
		}

	cdr_tariff *t = (cdr_tariff *)(uintptr_t)1; /* must become NULL */
	char err[CDR_ERR_MAX];
	memset(err, 0x7f, sizeof(err));
	int rc = cdr_tariff_load(&t, dir, NULL, err, sizeof(err));
	if (rc == 0) {
		if (!t) {
			fprintf(stderr, "fuzz_tariff: load returned 0, no "
					"tariff\n");
			abort();
		}
		if (cdr_tariff_describe(t, devnull) < 0) {
			fprintf(stderr, "fuzz_tariff: describe failed\n");
			abort();
		}
		cdr_tariff_free(t);
	} else {
		if (rc > 0 || t) {
			fprintf(stderr, "fuzz_tariff: failed load: rc %d, "
					"tariff %p\n",
				rc, (void *)t);
			abort();
		}
		const char *nul = memchr(err, '\0', sizeof(err));
		if (!nul || nul == err) {
			fprintf(stderr, "fuzz_tariff: failed load (rc %d) "
					"without a message\n",
				rc);
			abort();
		}
	}
	return 0;
}
