#!/usr/bin/env bash
# The lint and format checks `npm test` runs: Biome for TypeScript and
# JavaScript (biome.json), clang-format for the C in native/ and the test shim
# (.clang-format). To fix what they report: npx biome check --write . &&
# clang-format -i native/src/*.[ch] native/token/*.c test/helpers/*.c
set -euo pipefail
cd "$(dirname "$0")/.."
npx biome check .
clang-format --dry-run --Werror native/src/*.c native/src/*.h native/token/*.c test/helpers/*.c
echo "lint and format: clean"
