#!/usr/bin/env bash
# Bounded headless load test against the app on loopback only.
#
#   bench/load_test.sh [USERS=50] [DURATION=60s]
#   LOAD_ANSWER_WEIGHT=0 bench/load_test.sh      # discount endpoints only (no LLM load)
#
# Starts the app (demo catalog, 127.0.0.1, a free port) unless LOAD_HOST points at one already running,
# waits until /ready says ready (up to LOAD_READY_TIMEOUT s), records the server's RSS, runs locust headless
# (bench/locustfile.py: mixed /predict_discount, /explain_discount, /answer_question), samples RSS every 5 s,
# stops the server and prints: unexpected errors (429/503 by design counted separately), per-endpoint
# p50/p95/p99 over 2xx responses, and RSS before / peak / after. Exit code 1 when there were unexpected errors.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

USERS=${1:-50}
DURATION=${2:-60s}
PY=${PYTHON:-.venv/bin/python}
LOCUST=${LOCUST:-$(dirname "$PY")/locust}
OUT=${LOAD_OUT:-${TMPDIR:-/tmp}/mdi-load}
READY_TIMEOUT=${LOAD_READY_TIMEOUT:-600}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False

SERVER_PID=""
cleanup() { if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

rss_mb() { "$PY" -c "import psutil,sys; p=psutil.Process(int(sys.argv[1])); print(round(sum(q.memory_info().rss for q in [p,*p.children(recursive=True)])/2**20,1))" "$1" 2>/dev/null || echo "n/a"; }

if [ -z "${LOAD_HOST:-}" ]; then
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  HOST="http://127.0.0.1:$PORT"
  # The app as app.py builds it, hardened with ops.install_ops when the factory does not do that itself yet.
  cat >"$OUT/launch_app.py" <<'PYEOF'
import sys

import uvicorn

from core.offline import enforce_offline

enforce_offline()
from app import AppSettings, create_app  # noqa: E402
from core.logging import setup_logging  # noqa: E402
from core.settings import load_settings  # noqa: E402
from ops import OpsSettings, install_ops  # noqa: E402

setup_logging("WARNING")
settings = load_settings(AppSettings, ["--host", "127.0.0.1", "--port", sys.argv[1]], log_start=False)
app = create_app(settings)
if getattr(app.state, "ops", None) is None:
    ops_settings = load_settings(OpsSettings, None, log_start=False)
    ops_settings.drift_model_dir = settings.artifact_dir / "discount_model"
    ops = install_ops(app, ops_settings, versions=lambda: app.state.runtime.readiness()["versions"])
    app.state.runtime.metrics.add_listener(ops.metrics.agent_listener)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
PYEOF
  # every locust user is its own client (X-Forwarded-For), as 50 real users behind a proxy would be
  MDI_OPS_TRUST_FORWARDED_FOR=true MDI_OPS_ACCESS_LOG=false MDI_OPS_CONFIGURE_LOGGING=false PYTHONPATH=. \
    "$PY" "$OUT/launch_app.py" "$PORT" >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  echo "server pid $SERVER_PID on $HOST (log: $OUT/server.log)"
else
  HOST=$LOAD_HOST
  case "$HOST" in http://127.0.0.1:*|http://localhost:*) ;; *) echo "LOAD_HOST must be on loopback"; exit 2;; esac
  SERVER_PID=${LOAD_SERVER_PID:-}
fi

echo -n "waiting for $HOST/ready "
start=$(date +%s)
until "$PY" -c "import sys,urllib.request; r=urllib.request.urlopen(sys.argv[1]+'/ready', timeout=3); sys.exit(0 if r.status==200 else 1)" "$HOST" 2>/dev/null; do
  if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then echo; echo "server died:"; tail -20 "$OUT/server.log"; exit 2; fi
  if [ $(( $(date +%s) - start )) -gt "$READY_TIMEOUT" ]; then echo; echo "not ready after ${READY_TIMEOUT}s"; exit 2; fi
  echo -n "."; sleep 2
done
echo " ready after $(( $(date +%s) - start ))s"

RSS_BEFORE=$([ -n "$SERVER_PID" ] && rss_mb "$SERVER_PID" || echo n/a)
: >"$OUT/rss.txt"
if [ -n "$SERVER_PID" ]; then
  ( while kill -0 "$SERVER_PID" 2>/dev/null; do rss_mb "$SERVER_PID" >>"$OUT/rss.txt"; sleep 5; done ) &
  SAMPLER=$!
fi

LOAD_SUMMARY="$OUT/summary.json" "$LOCUST" -f bench/locustfile.py --headless -u "$USERS" -r 10 -t "$DURATION" \
  --host "$HOST" --csv "$OUT/locust" --only-summary --stop-timeout 30 >"$OUT/locust.log" 2>&1 || true

RSS_AFTER=$([ -n "$SERVER_PID" ] && rss_mb "$SERVER_PID" || echo n/a)
"$PY" -c "import sys,urllib.request; open(sys.argv[2],'wb').write(urllib.request.urlopen(sys.argv[1]+'/metrics', timeout=5).read())" \
  "$HOST" "$OUT/metrics.txt" 2>/dev/null || echo "(no /metrics on $HOST)"
[ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null || true

"$PY" - "$OUT" "$USERS" "$DURATION" "$RSS_BEFORE" "$RSS_AFTER" <<'PYEOF'
import csv, json, sys
from pathlib import Path
out, users, duration, before, after = sys.argv[1:6]
summary = json.loads((Path(out) / "summary.json").read_text())
rss = [float(x) for x in (Path(out) / "rss.txt").read_text().split() if x.replace(".", "", 1).isdigit()]
rows = {r["Name"]: r for r in csv.DictReader(open(Path(out) / "locust_stats.csv"))}
total = rows.get("Aggregated", {})
print(f"\nload test: {users} users for {duration}; requests {total.get('Request Count', '?')}, "
      f"throughput {float(total.get('Requests/s', 0) or 0):.1f} req/s")
unexpected = 0
for name, s in summary.items():
    unexpected += s["unexpected"]
    print(f"  {name:<20} ok {s['outcomes'].get('ok', 0):>6}  by-design 429/503 {s['by_design']:>5}  "
          f"unexpected {s['unexpected']:>3}  p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms  p99 {s['p99_ms']} ms")
    for k, v in s["outcomes"].items():
        if k.startswith("unexpected"):
            print(f"      {k}: {v}")
print(f"unexpected errors: {unexpected}")
metrics_file = Path(out) / "metrics.txt"
if metrics_file.is_file():  # server-side view: latency histogram of the app's own middleware (bucket bounds)
    from prometheus_client.parser import text_string_to_metric_families
    buckets = {}
    for fam in text_string_to_metric_families(metrics_file.read_text()):
        for smp in fam.samples:
            if smp.name.endswith("_http_request_duration_seconds_bucket"):
                buckets.setdefault(smp.labels["route"], []).append((float(smp.labels["le"]), smp.value))
    for route, pairs in sorted(buckets.items()):
        pairs.sort()
        total = pairs[-1][1]
        if route.startswith("/") and total:
            p50 = next(le for le, n in pairs if n >= 0.50 * total)
            p99 = next(le for le, n in pairs if n >= 0.99 * total)
            print(f"  server-side {route:<20} n={int(total)}  p50 <= {p50 * 1000:g} ms  p99 <= {p99 * 1000:g} ms")
print(f"server RSS MB: before {before}, peak {max(rss) if rss else 'n/a'}, after {after} "
      f"(samples every 5 s: {rss[:3]} ... {rss[-3:]})")
sys.exit(1 if unexpected else 0)
PYEOF
