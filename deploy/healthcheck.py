"""Container health check: exit 0 when the URL answers 200 (no curl in the slim image)."""

import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=4) as reply:  # noqa: S310
        sys.exit(0 if reply.status == 200 else 1)
except Exception:
    sys.exit(1)
