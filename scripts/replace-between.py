#!/usr/bin/env python3
"""replace-between.py FILE BEGIN END CONTENT_FILE: puts CONTENT_FILE's text between the marker
lines BEGIN and END of FILE (used by `make docs` for the README's configuration table)."""
import sys

path, begin, end, content_path = sys.argv[1:5]
text = open(path).read()
start = text.index(begin + "\n") + len(begin) + 1
stop = text.index(end, start)
with open(path, "w") as f:
    f.write(text[:start] + open(content_path).read() + text[stop:])
