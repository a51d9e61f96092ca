#!/usr/bin/env bash
# The GPU checks of the real-model recipes, on one GPU (sized for an H100), from the repository root
# of a machine that reaches the package registry:
#
#   bash bench/gpu_check.sh [r1|gsm|all]      (OUT=runs/gpu-check by default)
#
#   r1   `reasonlab run recipes/real-r1-gpu.yaml` (Qwen2.5-Coder-1.5B-Instruct's R1-Zero as the
#        teacher, distillation into SmolLM2 against GRPO and SFT students, scaling), stopped after
#        R1_LIMIT seconds (480: the recipe's target is 8 minutes on one H100); prints each stage's
#        time from OUT/real-r1/stage_times.json, whether it finished, and the claims if it did.
#   gsm  R1-Zero from Qwen2.5-Coder-0.5B-Instruct on gym:gsm_symbolic in its boxed template
#        (`bench/real_rl.py --parts gsm`, GSM_SET overrides the CPU recipe's sizes), greedy on 200
#        held-out problems before and after, paired; prints the time and the gain.
#
# Installs first (`make setup real-model real-model-1.5b`: with nvidia-smi present the Makefile takes
# the CUDA torch; vLLM through `pip install -e .[vllm]` unless NO_VLLM=1). A finished stage is reused
# on a second call, a killed GRPO run resumes. Last line:
#   gpu_check: r1 M:SS (finished|stopped at STAGE), gsm E% -> F% (+G [lo, hi]) M:SS
set -euo pipefail
cd "$(dirname "$0")/.."
PART=${1:-all}
OUT=${OUT:-runs/gpu-check}
R1_LIMIT=${R1_LIMIT:-480}
GSM_SET=${GSM_SET:-"steps=60 prompts_per_step=16 generations_per_prompt=8 eval_n=0 save_every=10"}
command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: this check needs a GPU" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

make -s setup real-model real-model-1.5b
if [ "${NO_VLLM:-0}" != 1 ]; then .venv/bin/python -m pip install -q -e ".[vllm]" || echo "vLLM not installed: rollouts by our engine"; fi
PY=.venv/bin/python
mkdir -p "$OUT"
r1_line="r1 -" gsm_line="gsm -"

if [ "$PART" = r1 ] || [ "$PART" = all ]; then
  t0=$SECONDS
  set +e
  timeout "$R1_LIMIT" .venv/bin/reasonlab run recipes/real-r1-gpu.yaml --out "$OUT/real-r1" 2>&1 | tee "$OUT/real-r1.log"
  rc=${PIPESTATUS[0]}
  set -e
  took=$((SECONDS - t0))
  $PY - "$OUT/real-r1" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
times = json.loads((out / "stage_times.json").read_text()) if (out / "stage_times.json").exists() else {}
for name, t in times.items():
    print(f"stage {name:28s} {t.get('kind', ''):8s} {t['seconds'] / 60:6.1f} min")
res = out / "results.json"
for c in json.loads(res.read_text())["claims"] if res.exists() else []:
    print(f"claim {c['verdict']:10s} {c.get('diff', float('nan')):+6.1f}  {c['claim']}")
EOF
  if [ "$rc" = 0 ]; then state=finished; else state="stopped (exit $rc; rerun to resume)"; fi
  r1_line="r1 $((took / 60)):$(printf %02d $((took % 60))) ($state)"
fi

if [ "$PART" = gsm ] || [ "$PART" = all ]; then
  t0=$SECONDS
  # shellcheck disable=SC2086  # GSM_SET is a list of key=value words
  $PY bench/real_rl.py --parts gsm --out "$OUT/rl" --gsm-set $GSM_SET | tee "$OUT/gsm.log"
  took=$((SECONDS - t0))
  gain=$(tail -1 "$OUT/gsm.log" | sed -n 's/.*\(qwen gsm_symbolic [^)]*)\).*/\1/p')
  gsm_line="gsm ${gain#qwen gsm_symbolic } $((took / 60)):$(printf %02d $((took % 60)))"
fi
echo "gpu_check: $r1_line, $gsm_line"
