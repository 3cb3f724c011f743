#!/bin/sh
# Container entrypoint: (re)build stale artifacts for the configured catalog (a no-op when they match the
# catalog and code), then run the command (default: the app). MDI_SKIP_BUILD=1 skips the build step.
set -eu
if [ "${MDI_SKIP_BUILD:-0}" != "1" ]; then
  python -m scripts.build_artifacts
fi
exec "$@"
