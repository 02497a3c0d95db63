#!/usr/bin/env bash
# A small stand-in for a bioinformatics pipeline: short-lived tools, a
# compression step, a sort, a multi-threaded step and a parallel fan-out.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/reads.txt" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    for i in range(200_000):
        f.write("".join(random.choice("ACGT") for _ in range(30)) + "\n")
PY
gzip -k -1 "$work/reads.txt"
zcat "$work/reads.txt.gz" | sort | uniq -c | sort -rn | sed -n "1,3p" > "$work/top.txt"
for i in 1 2 3 4; do
  ( awk '{ n += length($0) } END { print n }' "$work/reads.txt" > "$work/len.$i" ) &
done
wait
python3 -c 'import threading, hashlib
def work():
    h = hashlib.sha256()
    for _ in range(200_000): h.update(b"x" * 64)
ts = [threading.Thread(target=work) for _ in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]'
echo "demo done: $(cat "$work/top.txt" | wc -l) top k-mers, $(cat "$work"/len.* | head -1) bases"
