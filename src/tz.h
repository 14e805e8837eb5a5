/*
 * tz.h - time zones read from compiled tzdata (TZif), without libc.
 *
 * The rater carries two tariffs in two time zones at once and rates from
 * several threads, so it cannot use localtime/mktime, which read the single
 * process-wide TZ. This module reads the TZif file itself and answers the
 * three questions rating asks: what is the UTC offset at an instant, which
 * instant is a given local wall-clock time, and when does the offset next
 * change.
 *
 * Instants are Unix seconds (int64_t, no leap seconds). Offsets are seconds
 * east of Greenwich. A "naive local" time is the local wall clock counted in
 * seconds from 1970-01-01 00:00:00 local, as if it were UTC (so it can be
 * built with cdr__days_from_civil).
 *
 * Thread safety: a loaded cdr__tz is immutable. Every lookup is a pure read
 * and may run from any number of threads at once; nothing allocates after
 * load.
 */
#ifndef CDR_TZ_H
#define CDR_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct cdr__tz cdr__tz;

/*
 * Load the zone called name: "UTC" and its aliases ("Etc/UTC", "GMT",
 * "Etc/GMT", "UCT", "Zulu", "Universal", "Greenwich", "GMT0", "GMT+0",
 * "GMT-0", with or without "Etc/") are built in and need no file; any other
 * name is an IANA name such as "Europe/Berlin", read from $TZDIR if set and
 * non-empty, else /usr/share/zoneinfo.
 *
 * Names are restricted to [A-Za-z0-9_+./-], at most 255 bytes, not starting
 * with '/', with no path component starting with '.' (so no ".."): the name
 * comes from a tariff file and must not reach files outside the zone
 * directory.
 *
 * Returns 0 and a new zone in *out, owned by the caller (cdr__tz_free), or
 * a negative errno and leaves *out untouched:
 *   -ENOENT  no such zone (missing file, or a directory such as "Europe");
 *   -EINVAL  a name that breaks the rules above, a file that is not a
 *            well-formed TZif file (v1..v4), or one with leap seconds
 *            ("right/" zones; CDR instants are POSIX seconds);
 *   -ENOMEM  out of memory;
 *   other    -errno from open/read, passed through.
 * On error, err (if not NULL and errlen > 0) receives a one-line message,
 * NUL-terminated and truncated to errlen bytes, e.g.
 * "unknown time zone 'Mars/Base'".
 */
int cdr__tz_load(cdr__tz **out, const char *name, char *err, size_t errlen);

/* Free a zone. NULL-safe. */
void cdr__tz_free(cdr__tz *tz);

/* The name the zone was loaded with, as given. Lives as long as tz. */
const char *cdr__tz_name(const cdr__tz *tz);

/*
 * UTC offset (seconds east) in force at instant utc. Valid for every
 * instant; beyond the file's last transition the POSIX TZ string of the
 * file's footer decides (computed on the fly past year 2200), and beyond
 * +-2^62 s (some 146 billion years) the offset is that at +-2^62.
 */
int32_t cdr__tz_offset_at(const cdr__tz *tz, int64_t utc);

/*
 * The UTC instant of naive local time local. A local time that occurs once
 * maps to that instant. One inside a daylight-saving gap (a wall-clock time
 * that is skipped) is shifted forward by the length of the gap; one inside a
 * fold (a wall-clock time that occurs twice) means its first occurrence.
 * Both amount to using the offset in force just before the transition:
 * Europe/Berlin 2026-03-29 02:30 gives 01:30Z, 2026-10-25 02:30 gives 00:30Z.
 * local is clamped to +-2^62.
 */
int64_t cdr__tz_local_to_utc(const cdr__tz *tz, int64_t local);

/*
 * The first instant strictly after utc at which the UTC offset changes (a
 * change of abbreviation or of the isdst flag alone does not count), or
 * INT64_MAX if it never changes again. From that instant on,
 * cdr__tz_offset_at returns the new offset.
 */
int64_t cdr__tz_next_change(const cdr__tz *tz, int64_t utc);

/*
 * A window of a zone: its few constant stretches of offset across a range
 * of instants, copied out once so that the lookups of one billing period
 * cost a comparison or two instead of two or three binary searches over
 * the zone's table (one stretch for Asia/Shanghai, three for a month with
 * a DST change). Outside the window the lookups below ask the zone itself;
 * inside they give exactly the zone's answers (tests/test_tz.c compares
 * them instant by instant). Immutable once built: any number of threads
 * may read it.
 */
#define CDR_TZ_WIN_MAX 8
typedef struct cdr__tz_win {
	const cdr__tz *tz;
	int64_t lo, hi;	  /* instants [lo, hi) are answered here */
	int64_t llo, lhi; /* naive local times [llo, lhi) likewise */
	/* Stretch i has offset off[i] and ends at instant end[i]; a local
	 * time below lend[i] that no earlier stretch took belongs to it
	 * (the last ones are INT64_MAX). */
	int64_t end[CDR_TZ_WIN_MAX], lend[CDR_TZ_WIN_MAX];
	int32_t off[CDR_TZ_WIN_MAX];
} cdr__tz_win;

/* Build the window of tz over instants [from, to) (shorter when the zone
 * changes more than CDR_TZ_WIN_MAX - 1 times there). */
void cdr__tz_win_init(cdr__tz_win *w, const cdr__tz *tz, int64_t from,
		      int64_t to);

/* cdr__tz_offset_at through a window. */
static inline int32_t cdr__tz_win_offset(const cdr__tz_win *w, int64_t utc)
{
	if (utc >= w->lo && utc < w->hi) {
		unsigned i = 0;
		while (utc >= w->end[i])
			i++;
		return w->off[i];
	}
	return cdr__tz_offset_at(w->tz, utc);
}

/* cdr__tz_local_to_utc through a window. */
static inline int64_t cdr__tz_win_local_to_utc(const cdr__tz_win *w,
					       int64_t local)
{
	if (local >= w->llo && local < w->lhi) {
		unsigned i = 0;
		while (local >= w->lend[i])
			i++;
		return local - w->off[i];
	}
	return cdr__tz_local_to_utc(w->tz, local);
}

#endif
