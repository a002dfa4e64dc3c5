#!/usr/bin/env bash
# The GPU checks in one prepared run, on a machine with one CUDA GPU:
#   1. env             the GPU, torch, torchvision and transformers versions;
#   2. tests           the CUDA cases of tests/test_predict.py (fast path vs eager fp32 on >= 99.9% of pixels,
#                      nvjpeg decoding, GPU RLE, torch.compile with a padded last batch);
#   3. inference-1024  model only at 1024x1024, batch 8: eager fp32, folded fp32, bf16 + channels_last, compiled bf16;
#   4. predict         256 generated 1280x1918 JPEGs to a submission with the network at full resolution (native:
#                      1280x1918, padded to 1280x1920 in the model; the GPU target is 147 img/s),
#                      compiled bf16, with and without hflip TTA, each row checked against eager fp32 on 16 images;
#   4b. predict-bundled the same with the bundled trained model at its own input size, eager bf16: its confident
#                      logits make the agreement with eager fp32 the check that matters for real masks;
#   5. inference-full  model only at 1280x1920 (Carvana's size padded to a multiple of 128);
#   6. max-autotune    model only at 1024x1024, compiled with mode="max-autotune" (slowest to build, so last).
# Each step runs under its own time limit, cut to what is left of BUDGET_S seconds (default 540, inside the device
# tool's 600 s per command), and its log is written as it runs, so a step stopped at its limit keeps what it printed.
#
#   bash benchmarks/gpu_checks.sh                   # all steps; logs in $OUT (the device tool's) or ./gpu-results
#   bash benchmarks/gpu_checks.sh tests predict     # only these steps
#
# Uses the machine's own Python packages (PYTHONPATH=., no install): torch, torchvision, transformers, safetensors,
# huggingface_hub, pillow, numpy and pytest; none of the Space, data-set or training extras are needed.
# PREDICT_RESOLUTION (default native) sets the network input of the predict step, e.g. 1024x1024.
# DEVICE, CONFIG and IMAGES (defaults cuda, reference, 256) exist to dry-run the script itself on a CPU, e.g.
#   DEVICE=cpu CONFIG=tiny IMAGES=16 bash benchmarks/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-$PWD/gpu-results}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python="${PYTHON:-python3}"
budget="${BUDGET_S:-540}"
device="${DEVICE:-cuda}"
config="${CONFIG:-reference}"
images="${IMAGES:-256}"
predict_resolution="${PREDICT_RESOLUTION:-native}"
data="${DATA:-/tmp/carseg-gpu-checks}"  # the generated JPEGs, shared by both predict steps
started=$SECONDS
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(env tests inference-1024 predict predict-bundled inference-full max-autotune)

# run STEP CAP_S COMMAND...: run COMMAND under min(CAP_S, what is left of the budget), logging to $out/STEP.log.
run() {
    local step=$1 cap=$2
    shift 2
    local left=$((budget - (SECONDS - started)))
    local limit=$((cap < left ? cap : left))
    if [ "$limit" -lt 20 ]; then
        echo "$step: skipped, ${left} s of the budget left" | tee -a "$out/summary.log"
        return
    fi
    echo "== $step (limit ${limit} s): $*" | tee -a "$out/summary.log"
    local begin=$SECONDS
    timeout --signal=INT --kill-after=15 "$limit" "$@" 2>&1 | tee "$out/$step.log"
    local rc=${PIPESTATUS[0]}
    echo "$step: exit $rc after $((SECONDS - begin)) s$([ "$rc" -eq 124 ] && echo ' (stopped at its limit)')" \
        | tee -a "$out/summary.log"
}

inference=("$python" benchmarks/bench_inference.py --device "$device" --config "$config" --batch-size 8 --iters 20)
for step in "${steps[@]}"; do
    case "$step" in
        env)
            run env 30 bash -c "nvidia-smi -L 2>/dev/null; $python -c 'import torch, torchvision, transformers; \
print(torch.__version__, torch.version.cuda, torchvision.__version__, transformers.__version__); \
from carseg_hf.device_info import describe_device; print(describe_device(torch.device(\"$device\")))'" ;;
        tests)
            run tests 180 "$python" -m pytest -q -rs -p no:cacheprovider tests/test_predict.py -k "$device" ;;
        inference-1024)
            run inference-1024 200 "${inference[@]}" --sizes 1024x1024 \
                --modes eager-fp32,eager-fp32-cl-fold,eager-bf16,compile-bf16 ;;
        predict)
            run predict 200 "$python" benchmarks/bench_predict.py --device "$device" --config "$config" \
                --images "$images" --data "$data" --resolution "$predict_resolution" --batch-size 16 --workers 8 \
                --compile default --fold yes --tta both --check 16 ;;
        predict-bundled)
            run predict-bundled 90 "$python" benchmarks/bench_predict.py --device "$device" \
                --model carseg_hf/pretrained/carseg-synth --resolution processor --data "$data" \
                --images $((images < 64 ? images : 64)) --batch-size 16 --workers 8 --fold yes --tta both --check 32 ;;
        inference-full)
            run inference-full 150 "${inference[@]}" --sizes 1280x1920 --modes eager-fp32,eager-bf16,compile-bf16 ;;
        max-autotune)
            run max-autotune 400 "${inference[@]}" --sizes 1024x1024 --modes eager-bf16,max-autotune-bf16 ;;
        *)
            echo "unknown step '$step'; expected env, tests, inference-1024, predict, predict-bundled," \
                "inference-full or max-autotune" >&2
            exit 2 ;;
    esac
done
echo "done in $((SECONDS - started)) s; logs in $out" | tee -a "$out/summary.log"
