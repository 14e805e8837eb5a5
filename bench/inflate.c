/*
 * inflate.c - how fast each gzip library decompresses a file, to choose
 * the one cdrate's gzip source uses (ISA-L's igzip against zlib), on the
 * same bytes in the same run.
 *
 * usage: inflate isal|zlib FILE.gz   prints the decompressed bytes and lines
 *
 * Both decode through 1 MiB input and 4 MiB output buffers, the sizes the
 * source uses, and read concatenated members through. Not part of the
 * library; built by bench/run.sh.
 */
#include <isa-l/igzip_lib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IN (1u << 20)
#define OUT (4u << 20)

static uint64_t count_lines(const unsigned char *p, size_t n)
{
	uint64_t c = 0;
	for (const unsigned char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
		c++;
	return c;
}

static int run_isal(FILE *f, unsigned char *in, unsigned char *out,
		    uint64_t *bytes, uint64_t *lines)
{
	struct inflate_state st;
	isal_inflate_init(&st);
	st.crc_flag = ISAL_GZIP;
	for (;;) {
		if (!st.avail_in) {
			size_t n = fread(in, 1, IN, f);
			if (!n)
				return st.block_state == ISAL_BLOCK_FINISH ? 0 : 1;
			st.next_in = in;
			st.avail_in = (uint32_t)n;
		}
		st.next_out = out;
		st.avail_out = OUT;
		int rc = isal_inflate(&st);
		if (rc < 0)
			return 1;
		size_t got = OUT - st.avail_out;
		*bytes += got;
		*lines += count_lines(out, got);
		if (st.block_state == ISAL_BLOCK_FINISH && st.avail_in) {
			isal_inflate_reset(&st);
			st.crc_flag = ISAL_GZIP;
		}
	}
}

static int run_zlib(FILE *f, unsigned char *in, unsigned char *out,
		    uint64_t *bytes, uint64_t *lines)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return 1;
	int end = 0;
	for (;;) {
		if (!z.avail_in) {
			size_t n = fread(in, 1, IN, f);
			if (!n)
				return end ? 0 : 1;
			z.next_in = in;
			z.avail_in = (uInt)n;
		}
		z.next_out = out;
		z.avail_out = OUT;
		int rc = inflate(&z, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
			return 1;
		size_t got = OUT - z.avail_out;
		*bytes += got;
		*lines += count_lines(out, got);
		end = rc == Z_STREAM_END;
		if (end)
			inflateReset(&z);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s isal|zlib FILE.gz\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[2], "rb");
	unsigned char *in = malloc(IN), *out = malloc(OUT);
	if (!f || !in || !out)
		return 2;
	uint64_t bytes = 0, lines = 0;
	int rc = !strcmp(argv[1], "isal") ? run_isal(f, in, out, &bytes, &lines)
					  : run_zlib(f, in, out, &bytes, &lines);
	printf("%llu bytes, %llu lines\n", (unsigned long long)bytes,
	       (unsigned long long)lines);
	return rc;
}
