#!/usr/bin/env bash
# The checks and measurements that need a CUDA GPU (CI has none). Run from the repository root with
# the cofitune package and its dependencies importable (`pip install -e .`, or PYTHONPATH=src):
#
#   bash bench/gpu.sh [tests|bench|smoke]...     (no argument: all three)
#
#   tests  the unit tests on a machine with a GPU (the CUDA-only test included)
#   bench  step time (bf16 and fp32), soft-mask cost and MC scoring speed on SmolLM2-135M's
#          architecture with random weights -> bench/results/*_cuda*.md and step_time_smollm2-shape_*.md
#   smoke  the smoke workflow end to end on the GPU: accelerate launch with workflow/accelerate/gpu.yaml,
#          bf16 training (precision: auto), importance and lm-eval on cuda -> results/gpu_smoke/
set -euo pipefail
PYTHON=${PYTHON:-python3}
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(tests bench smoke)
failed=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__, 'bf16', torch.cuda.is_bf16_supported())"

for stage in "${stages[@]}"; do
  case "$stage" in
    tests)
      # A failing test is reported at the end but does not stop the measurements.
      "$PYTHON" -m pytest -q -m "not integration" -p no:cacheprovider tests || failed=1 ;;
    bench)
      "$PYTHON" bench/step_time.py --model smollm2-shape --precision bf16 --loss answer --steps 20 --warmup 3
      "$PYTHON" bench/step_time.py --model smollm2-shape --precision fp32 --loss answer --steps 20 --warmup 3
      "$PYTHON" bench/softmask_overhead.py --model smollm2-shape --steps 20 --rounds 3 --examples 256
      "$PYTHON" bench/eval_speed.py --model smollm2-shape --limit 169 --chat && "$PYTHON" bench/eval_speed.py --model llama-1b-shape --dtype bf16 --batch 16 --limit 180 --chat ;;
    smoke)
      mkdir -p results
      "$PYTHON" - <<'EOF'
import yaml
config = yaml.safe_load(open("workflow/presets/smoke.yaml"))
config["results_dir"] = "results/gpu_smoke"
config["training"]["accelerate_config"] = "gpu"
yaml.safe_dump(config, open("results/gpu_smoke.yaml", "w"))
EOF
      # Four model jobs share the GPU at a time (the tiny model leaves it idle); --rerun-incomplete
      # resumes a run that a time limit cut short.
      snakemake --cores "$(nproc)" --set-threads train_candidate=4 evaluate_candidate=4 estimate_importance=4 \
        --rerun-incomplete --configfile results/gpu_smoke.yaml
      "$PYTHON" -m cofitune.cli summary results/gpu_smoke/tables/summary.parquet ;;
    *) echo "unknown stage: $stage (tests | bench | smoke)" >&2; exit 2 ;;
  esac
done
exit "$failed"
