/*
 * replay.c - run a libFuzzer target over saved inputs, without libFuzzer.
 *
 *   replay_<name> DIR_OR_FILE...
 *
 * Every regular file named (directories: every regular file in them, in
 * name order, not recursing) is read into a buffer of exactly its size and
 * handed to LLVMFuzzerTestOneInput, so the seed corpora and saved crashes
 * run in `make test` under any compiler. A target reports a broken
 * invariant by aborting; replay itself fails (exit 1) on an unreadable
 * argument or a target return value other than 0 and -1 (libFuzzer's
 * "keep" and "do not add to the corpus").
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, unsigned long *count)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (!f || fstat(fileno(f), &st)) {
		perror(path);
		if (f)
			fclose(f);
		return 1;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *b = malloc(n ? n : 1);
	if (!b || fread(b, 1, n, f) != n) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(b);
		fclose(f);
		return 1;
	}
	fclose(f);
	int rc = LLVMFuzzerTestOneInput(b, n);
	free(b);
	(*count)++;
	if (rc != 0 && rc != -1) {
		fprintf(stderr, "%s: target returned %d\n", path, rc);
		return 1;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *path, unsigned long *count)
{
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int bad = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(path) + strlen(de->d_name) + 2;
		char *full = malloc(len);
		struct stat st;
		if (!full)
			abort();
		snprintf(full, len, "%s/%s", path, de->d_name);
		if (stat(full, &st) || !S_ISREG(st.st_mode)) {
			free(full);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[n++] = full;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		bad |= run_file(names[i], count);
		free(names[i]);
	}
	free(names);
	return bad;
}

int main(int argc, char **argv)
{
	unsigned long count = 0;
	int bad = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st)) {
			perror(argv[i]);
			bad = 1;
		} else if (S_ISDIR(st.st_mode)) {
			bad |= run_dir(argv[i], &count);
		} else {
			bad |= run_file(argv[i], &count);
		}
	}
	printf("replay: %lu inputs\n", count);
	return bad;
}
