#!/bin/sh
# Coverage-guided fuzzing of the native scanner with libFuzzer + ASan + UBSan.
# Usage: native/fuzz/run.sh [runs (default 1000000)] [extra libFuzzer flags]
# Seeds: the regression corpus proto/test/corpus/*.hex (decoded to binary,
# prefixed with the 3 control bytes). New inputs go to native/fuzz/out/ (not committed).
set -eu
cd "$(dirname "$0")"
RUNS=${1:-1000000}
shift 2>/dev/null || true
NODE_INC=${NODE_INC:-$(node -p "require('path').resolve(process.execPath, '../../include/node')")}
[ -f "$NODE_INC/node_api.h" ] || NODE_INC=/usr/include/node
ADDON_API=$(node -p "require('path').dirname(require.resolve('node-addon-api/package.json'))" 2>/dev/null || echo ../../node_modules/node-addon-api)
mkdir -p build out seeds
FLAGS="-O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
clang++ -std=c++17 $FLAGS -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS -I"$NODE_INC" -I"$ADDON_API" \
  -c scan_fuzzer.cc -o build/scan_fuzzer.o
# The Node-API functions the addon's entry points reference: trapping stubs (never called).
nm -u build/scan_fuzzer.o | awk '$2 ~ /^napi_/ {print "void " $2 "(void) { __builtin_trap(); }"}' > build/napi_stubs.c
clang -c build/napi_stubs.c -o build/napi_stubs.o
clang++ $FLAGS build/scan_fuzzer.o build/napi_stubs.o -o build/scan_fuzzer
for f in ../../proto/test/corpus/*.hex; do
  b=$(basename "$f" .hex)
  { printf '\006\007\000'; grep -v '^#' "$f" | tr -d ' \n' | xxd -r -p; } > "seeds/$b"
done
./build/scan_fuzzer -runs="$RUNS" -max_len=4096 -print_final_stats=1 "$@" out seeds
