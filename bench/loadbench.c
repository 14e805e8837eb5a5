/*
 * loadbench.c - time loading a tariff through the public API, best of
 * three, for the subscriber and zone-table load figures of `make bench`.
 * usage: loadbench TARIFF_DIR [RUNS [CACHE]]   (RUNS=1 for one load under
 * callgrind). With CACHE, loads go through the tariff image there
 * (cdr_tariff_load_cached); a load that could not use it writes it, untimed,
 * so the runs after it map it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cdrate/cdrate.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	char err[CDR_ERR_MAX];
	double best = 1e9;
	int runs = argc >= 3 ? atoi(argv[2]) : 3;
	const char *cache = argc == 4 ? argv[3] : NULL;
	if (argc < 2 || argc > 4 || runs < 1) {
		fprintf(stderr, "usage: loadbench TARIFF_DIR [RUNS [CACHE]]\n");
		return 2;
	}
	for (int i = 0; i < runs; i++) {
		cdr_tariff *t;
		cdr_tariff_cache ci = {0};
		double t0 = now();
		if (cache ? cdr_tariff_load_cached(&t, argv[1], NULL, cache, &ci,
						   err, sizeof(err))
			  : cdr_tariff_load(&t, argv[1], NULL, err, sizeof(err))) {
			fprintf(stderr, "loadbench: %s\n", err);
			return 1;
		}
		double s = now() - t0;
		if (cache && !ci.used) {
			fprintf(stderr, "loadbench: image not used (%s); "
				"writing it\n", ci.why);
			if (cdr_tariff_cache_write(t, ci.fp, cache, err,
						   sizeof(err))) {
				fprintf(stderr, "loadbench: %s\n", err);
				return 1;
			}
		}
		cdr_tariff_free(t);
		if (s < best)
			best = s;
	}
	printf("load=%.3f\n", best);
	return 0;
}
