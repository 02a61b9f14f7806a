#!/usr/bin/env python3
"""bench/gen_sqlite.py - write the SQL script of the `sqlite` workload (deterministic).

The script runs in the sqlite3 CLI on an in-memory database (so no disk noise):
  one transaction of ROWS single-row INSERTs (each statement is parsed: realistic allocator
  traffic, strings of 8..120 bytes), a CREATE INDEX, then an aggregate query (GROUP BY with
  count/sum/avg/group_concat) whose output the harness checks is identical under every allocator.

usage: gen_sqlite.py OUT.sql [ROWS]
"""
import random
import sys


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    rnd = random.Random(42)
    alpha = "abcdefghijklmnopqrstuvwxyz0123456789 "
    with open(out, "w") as f:
        f.write("PRAGMA cache_size=-262144;\n")
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, val REAL, name TEXT, tag TEXT);\n")
        f.write("BEGIN;\n")
        for i in range(rows):
            name = "".join(rnd.choice(alpha) for _ in range(rnd.randint(8, 120)))
            f.write("INSERT INTO t(grp,val,name,tag) VALUES(%d,%.3f,'%s','t%d');\n"
                    % (rnd.randint(0, 999), rnd.uniform(0, 1000), name, rnd.randint(0, 49)))
        f.write("COMMIT;\n")
        f.write("CREATE INDEX t_grp ON t(grp, tag);\n")
        f.write("SELECT count(*), sum(length(name)) FROM t;\n")
        f.write("SELECT grp, count(*), round(sum(val),3), round(avg(length(name)),3), "
                "length(group_concat(tag)) FROM t GROUP BY grp ORDER BY 2 DESC, 1 LIMIT 5;\n")
        f.write("SELECT tag, count(DISTINCT grp), max(name) FROM t GROUP BY tag ORDER BY 1 LIMIT 3;\n")


if __name__ == "__main__":
    main()
