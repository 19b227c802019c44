#!/usr/bin/python3
"""Counts results in meson testlog.json files and prints the closing line
'N passed, N failed' (skipped tests are reported separately)."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            for line in f:
                result = json.loads(line).get("result")
                if result in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif result == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except OSError as e:
        print("count_tests: %s" % e, file=sys.stderr)
        failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
