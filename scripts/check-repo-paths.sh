#!/usr/bin/env bash
# Fails when a file of the repository (tracked, or new and not ignored) cites a path outside it:
# the `shared` directory beside the checkout, or an absolute path under the `work` directory of
# the machine it was written on. Someone who clones the repository has neither; the project's
# own documents are in docs/. The patterns are spelt so that this script does not match itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if git grep --untracked -n -I -E '\.\./shared|/wor[k]/' -- .; then
  echo "check-repo-paths: the lines above cite paths outside the repository; cite docs/ instead" >&2
  exit 1
fi
