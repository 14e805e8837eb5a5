#!/usr/bin/env python3
"""Write hostile CDR inputs into DIR, one file each, seeded (same bytes every
run), and print "NAME EXPECTED_LINES" for each: the lines cdrate must read,
i.e. the non-empty lines once a trailing \\r is dropped. Each must end rated
or rejected, never crash the run. usage: hostile.py DIR"""
import os
import random
import sys

out = sys.argv[1]
rng = random.Random(20261125)
GOOD = b"h%d,8613800000001,voice,2026-10-05 08:00:00,13912345678,60,0"
files = {}

files["garbage"] = bytes(rng.getrandbits(8) for _ in range(200_000))
files["nul_bytes"] = b"\n".join(
    (GOOD % i).replace(b"voice", b"vo\0ice" if i % 2 else b"voice") + b"\0"
    * (i % 3) for i in range(500)) + b"\n"
files["bad_utf8"] = b"\n".join(
    b"\xff\xfe%d,\xc3\x28,data,2026-10-05 08:00:00,\xed\xa0\x80apn,0,10" % i
    for i in range(100)) + b"\n" + b"\xe4\xb8\xad\xe6\x96\x87" + (GOOD % 1)[2:] + b"\n"
files["long_line"] = (GOOD % 1 + b"\n" + b"x" * (20 * 1024 * 1024) + b"\n"
                      + GOOD % 2 + b"\n" + b"y," * 40000 + b"\n" + GOOD % 3)
files["no_final_newline"] = GOOD % 1 + b"\r\n" + GOOD % 2
files["empty"] = b""
files["only_blank_lines"] = b"\n\r\n\n"
numbers = [
    b"o1,8613800000001,voice,2026-10-05 08:00:00,139,99999999999999999999999,0",
    b"o2,8613800000001,data,2026-10-05 08:00:00,,0,18446744073709551616",
    b"o3,8613800000001,voice,2026-13-45 25:61:00,139,1,0",
    b"o4,8613800000001,voice,9999-12-31T23:59:59Z,139,1,0",
    b"o5,8613800000001,voice,9999-12-31 23:59:59,139,1,0",
    b"o6,8613800000001,voice,2026-10-05 08:00:00,139,-5,0",
    b"o7,8613800000001,voice,-1,139,5,0",
    b"o8,8613800000001,voice,2026-10-05 08:00:00,139,5,-0",
    b"o9,8613800000001,voice,1e9,139,5,0",
    b"o10,8613800000001,voice,2026-10-05 08:00:00,139,999999999999,0",
    b"o11," + b"9" * 40 + b",voice,2026-10-05 08:00:00,139,1,0",
    b",".join([b"c"] * 5000),
    b",,,,,,",
    b"x" * 64 + b",8613800000001,sms,2026-10-05 08:00:00,139,0,0",
    b"x" * 65 + b",8613800000001,sms,2026-10-05 08:00:00,139,0,0",
]
files["numbers_dates_columns"] = b"\n".join(numbers) + b"\n"

for name, data in files.items():
    with open(os.path.join(out, name + ".csv"), "wb") as f:
        f.write(data)
    lines = data.split(b"\n")
    n = sum(1 for l in lines if l[:-1 if l.endswith(b"\r") else None])
    print(name, n)
