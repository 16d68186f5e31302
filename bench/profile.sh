#!/usr/bin/env bash
# npm run profile [-- SCENARIO [PAYLOAD [SECONDS]]]     (default: 1to1 128 5)
#
# Runs one meshbus node (`meshbus start`) under a profiler while the bench
# harness drives SCENARIO against it, three times:
#   1. clinic doctor  -> bench/profiles/<stamp>/doctor/*.html
#   2. clinic flame   -> bench/profiles/<stamp>/flame/*.html
#   3. node --cpu-prof -> bench/profiles/<stamp>/cpuprofile/*.cpuprofile and summary.txt
#      (top functions by self time and meshbus functions by inclusive time, as text)
# (NO_INSIGHT=1 keeps clinic from asking for analytics consent: without a TTY it would exit silently.)
# PROFILE_TOOLS="cpu" (or "doctor flame cpu") picks which ones run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SCEN="${1:-1to1}"
SIZE="${2:-128}"
SECS="${3:-5}"
TOOLS="${PROFILE_TOOLS:-doctor flame cpu}"
[ -f bench/dist/run.js ] || npx tsc -b
OUT="$ROOT/bench/profiles/$(date -u +%Y%m%dT%H%M%SZ)-$SCEN-$SIZE"
mkdir -p "$OUT"
port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
PORT=$(port)
WSPORT=$(port)
NODE_ARGS=("$ROOT/bin/meshbus.js" start --port "$PORT" --http-port 0 --ws-port "$WSPORT" --log-level warn)
LOAD="node $ROOT/bench/dist/run.js --targets meshbus --scenarios $SCEN --sizes $SIZE --duration $SECS --no-write --external-meshbus 127.0.0.1:$PORT,ws://127.0.0.1:$WSPORT"
CLINIC="$ROOT/node_modules/.bin/clinic"

for tool in $TOOLS; do
  case "$tool" in
    doctor|flame)
      if [ ! -x "$CLINIC" ]; then echo "clinic is not installed (npm install): skipping clinic $tool" >&2; continue; fi
      echo "== clinic $tool: $SCEN $SIZE B, ${SECS}s" >&2
      (cd "$OUT" && NO_INSIGHT=1 "$CLINIC" "$tool" --open=false --dest "$OUT/$tool" \
        --on-port "$LOAD > $OUT/$tool-load.txt 2>&1" -- node "${NODE_ARGS[@]}") || true
      ls "$OUT/$tool"/*.html >/dev/null 2>&1 || echo "clinic $tool wrote no report (see above)" >&2
      ;;
    cpu)
      echo "== node --cpu-prof: $SCEN $SIZE B, ${SECS}s" >&2
      node --cpu-prof --cpu-prof-dir="$OUT/cpuprofile" "${NODE_ARGS[@]}" &
      PID=$!
      for _ in $(seq 1 100); do node -e "require('net').connect($PORT,'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))" && break; sleep 0.1; done
      $LOAD > "$OUT/cpu-load.txt" 2>&1 || true
      kill -INT "$PID"
      wait "$PID" || true
      node "$ROOT/bench/dist/cpuprofile.js" "$OUT"/cpuprofile/*.cpuprofile --top 30 > "$OUT/summary.txt"
      ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
  esac
done
echo "reports in $OUT" >&2
ls -R "$OUT" >&2
