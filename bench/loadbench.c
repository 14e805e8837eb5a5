/*
 * loadbench.c - time loading a tariff through the public API, best of
 * three, for the subscriber and zone-table load figures of `make bench`.
 * usage: loadbench TARIFF_DIR [RUNS]   (RUNS=1 for one load under callgrind)
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
	int runs = argc == 3 ? atoi(argv[2]) : 3;
	if (argc < 2 || argc > 3 || runs < 1) {
		fprintf(stderr, "usage: loadbench TARIFF_DIR [RUNS]\n");
		return 2;
	}
	for (int i = 0; i < runs; i++) {
		cdr_tariff *t;
		double t0 = now();
		if (cdr_tariff_load(&t, argv[1], NULL, err, sizeof(err))) {
			fprintf(stderr, "loadbench: %s\n", err);
			return 1;
		}
		double s = now() - t0;
		cdr_tariff_free(t);
		if (s < best)
			best = s;
	}
	printf("load=%.3f\n", best);
	return 0;
}
