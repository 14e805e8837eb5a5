/*
 * format.h - the input formats: how one line of an input becomes a cdr__rec.
 *
 * An input's format is settled once, from its first non-empty line, before
 * any of its lines is rated (cdr__fmt_detect, or cdr__fmt_head for a format
 * the caller named). After that every line goes through cdr__fmt_parse,
 * which gives the fields of SPEC section 3 and checks them as a native line
 * is checked, so rating never knows which format a record came from.
 *
 * Three things differ between formats and are answered here:
 *   - the fields (native: 7 by position; switch formats: the mapping table
 *     of section 11; maps and reordered native headers: columns by index);
 *   - the duplicate key: the id for native files and maps with an id, the
 *     whole line for switch records (switches reuse uniqueid across legs);
 *   - the itemize id: the native id, uniqueid[-sequence], uuid, or
 *     FILE:LINE (then rec->id is the path and rec->id_line the line).
 *
 * Fields that need no rewriting point into the line; a quoted field with
 * `""` or text after its closing quote is rebuilt in the caller's scratch
 * (CDR__SCRATCH(n) bytes for a line of n bytes), so the parser still never
 * allocates. Sections: fields - formats - maps - detection - parsing.
 */
#ifndef CDR_FORMAT_H
#define CDR_FORMAT_H

#include "internal.h"

/* ---- fields ---------------------------------------------------------- */

#define CDR__MAXF 256 /* fields a switch or map line may have */

typedef struct cdr__field {
	const char *s;
	uint32_t n;
	uint8_t quoted;
} cdr__field;

/* Scratch a line of n bytes may need: every field rebuilt, and an id
 * `uniqueid-sequence` composed. */
#define CDR__SCRATCH(n) (4 * (size_t)(n) + 2 * (size_t)CDR__NORM_MAX + 32)
/* Where rewritten numbers go: after the rebuilt fields and the id. */
#define CDR__NORM_BUF(scratch, n) ((scratch) + 2 * (size_t)(n) + 16)

/*
 * Split p[0, n) at `delim` with section 11's quoting: a field may be wrapped
 * in '"' (spaces and tabs before the quote skipped), `""` inside is one '"',
 * delimiters inside are data, text after the closing quote up to the next
 * delimiter is appended. Returns the field count (at most max), -1 for a
 * quote that does not close, -2 for more than max fields.
 */
int cdr__split(const char *p, size_t n, char delim, cdr__field *f, int max,
	       char *scratch);

/* ---- formats --------------------------------------------------------- */

/* Columns a map (or a native header read by name) can name. */
enum {
	CDR__MC_ID, CDR__MC_SUB, CDR__MC_SERVICE, CDR__MC_START, CDR__MC_DEST,
	CDR__MC_DURATION, CDR__MC_VOLUME, CDR__MC_ANSWERED, CDR__MC_N
};

/* A column map as loaded from its file (format_map.c). */
struct cdr_colmap {
	char *path;
	int header;	     /* the first non-empty line names the columns */
	char delim;
	char *name[CDR__MC_N]; /* header name of a column, or NULL */
	int num[CDR__MC_N];    /* 0-based column number, or -1 */
	unsigned line[CDR__MC_N]; /* map line that named it, for messages */
	int service_const;     /* a cdr__service, or -1: a column */
	char *answered_value;  /* NULL: every record is answered */
	char *start_format;    /* NULL: the native forms of section 3 */
};

/*
 * One input's settled format. For CDR_FORMAT_MAP (and a native header read
 * by name, kind NATIVE with `bycol`) `col` holds 0-based column indices
 * resolved against the input's header (or the map's numbers), -1 absent.
 */
typedef struct cdr__fmt {
	uint8_t kind;	/* cdr_format, never CDR_FORMAT_AUTO */
	uint8_t header; /* skip the first non-empty line */
	uint8_t bycol;	/* columns by index (map, reordered native header) */
	uint8_t guessed; /* auto could not place it: read as native */
	uint8_t line_ids; /* itemize ids may be FILE:LINE: count lines */
	char delim;
	int nfields;	/* with a header: the count a line must have */
	int16_t col[CDR__MC_N];
	const cdr_colmap *map; /* answered value, start format; or NULL */
	const cdr__norm *norm; /* the tariff's normalize.csv, or NULL */
} cdr__fmt;

/*
 * Settle the format of an input from its first non-empty line p[0, n) (no
 * line end, no BOM). `want` is the format asked for (AUTO: detect). Returns
 * 0, or -EINVAL with a message in err (a header starting `id,` without all
 * seven columns; a map's column missing from the header).
 */
int cdr__fmt_head(cdr__fmt *f, cdr_format want, const cdr_colmap *map,
		  const char *p, size_t n, char *err, size_t errlen);

/* ---- parsing --------------------------------------------------------- */

/*
 * Parse one line (no line end) of an input in format f. `path` and `lineno`
 * make FILE:LINE ids. Returns CDR_OK, CDR_R_UNANSWERED or a malformed
 * reason; on CDR_OK rec->key is the duplicate key and rec->id the itemize
 * id. scratch holds CDR__SCRATCH(n) bytes and must live as long as rec.
 */
int cdr__fmt_parse(const cdr__fmt *f, const char *p, size_t n, cdr__rec *rec,
		   char *scratch, const char *path, uint64_t lineno);

/* The duplicate key of a line that parsed (for reading lines back): into
 * *key (the line, or scratch of CDR__SCRATCH(n) bytes). */
void cdr__fmt_key(const cdr__fmt *f, const char *p, size_t n,
		  const char **key, size_t *key_n, char *scratch);

/*
 * The fields of section 3 given as slices (the id may be absent: id->s
 * NULL), checked as a native line is: the first bad one decides the reason.
 * `start_format` NULL means the native start forms. (format_native.c)
 */
int cdr__rec_fill(cdr__rec *r, const cdr__field *f, const char *start_format,
		  const cdr__norm *norm, char *nbuf);
/* The native line through the checked path alone, never the one-walk
 * path: what that path must agree with on every line (tests). */
int cdr__parse_line_checked(const char *p, size_t n, cdr__rec *r);
/* The native line with numbers normalised (nbuf: CDR__NORM_BUF). */
int cdr__parse_line_norm(const char *p, size_t n, cdr__rec *r,
			 const cdr__norm *norm, char *nbuf);

/* A switch record's duplicate key is its line; its id a field or FILE:LINE
 * (format_asterisk.c, format_freeswitch.c). */
int cdr__parse_asterisk(const char *p, size_t n, cdr__rec *r, char *scratch,
			int custom, const cdr__norm *norm);
int cdr__parse_freeswitch(const char *p, size_t n, cdr__rec *r,
			  char *scratch, const cdr__norm *norm);
/* By column index (format_map.c). */
int cdr__parse_bycol(const cdr__fmt *f, const char *p, size_t n,
		     cdr__rec *r, char *scratch);

/* Is s[0, n) a YYYY-MM-DD HH:MM:SS stamp? (detection) */
int cdr__is_stamp(const char *s, size_t n);

#endif
