#!/usr/bin/env bash
# The test command: set up (idempotent), then run the pytest suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STREAMD_REQUIRE_VMIC=1 exec .venv/bin/python -m pytest -m "not slow" "$@"
