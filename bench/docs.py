#!/usr/bin/env python3
"""bench/docs.py - copy the generated result tables into docs/BENCHMARKS.md (make bench-docs).

docs/BENCHMARKS.md holds marker pairs such as
    <!-- BEGIN latest.md -->  ...  <!-- END latest.md -->
and everything between a pair is replaced by bench/results/<name> (its first line, the title,
is dropped; headings are pushed two levels down). A missing results file leaves its section as
it was. Nothing is measured here.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
RESULTS = os.path.join(ROOT, "bench", "results")


def main():
    text = open(DOC).read()
    changed = []

    def repl(m):
        name = m.group(1)
        path = os.path.join(RESULTS, name)
        if not os.path.exists(path):
            return m.group(0)
        lines = open(path).read().rstrip("\n").splitlines()
        if lines and lines[0].startswith("# "):
            lines = ["_%s_" % lines[0][2:]] + lines[1:]
        lines = ["##" + l if l.startswith("#") else l for l in lines]
        changed.append(name)
        return "<!-- BEGIN %s -->\n%s\n<!-- END %s -->" % (name, "\n".join(lines), name)

    text = re.sub(r"<!-- BEGIN (\S+) -->.*?<!-- END \1 -->", repl, text, flags=re.S)
    open(DOC, "w").write(text)
    print("docs/BENCHMARKS.md: updated %s" % (", ".join(changed) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
