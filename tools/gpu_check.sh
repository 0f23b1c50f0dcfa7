#!/usr/bin/env bash
# The GPU check in one call (issue 9): on the device machine, from the repository root,
#   bash tools/gpu_check.sh
# builds pyengine with its CUDA module for the card's architecture only (PYENGINE_CUDA_ARCHS,
# default 90; that machine has no network: no build isolation, no dependencies fetched), prints
# the build facts (including the libraries each module needs) and nvidia-smi, runs the
# cuda-marked tests, then `python -m pyengine bench --device cuda` (side by side with cuBLAS /
# cuDNN / SDPA; pyengine/bench/gpu.py), then the rest of the suite (the two runs together are
# the whole suite). Logs go to $OUT (the device tool brings that folder back), or ./gpu_check_out.
# Knobs: GPU_CHECK_BENCH=0 / GPU_CHECK_FULL=0 skip the bench / the rest of the suite,
# GPU_BENCH_ARGS picks bench cases ("norm conv", "--quick"), GPU_CHECK_WORKERS sets pytest-xdist.
# Exit status: 0 when the build, the tests and the bench all pass, else 1.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check_out}"
mkdir -p "$out"
status=0

echo "== nvidia-smi"
{ nvidia-smi || echo "nvidia-smi: not found or failed"; } 2>&1 | tee "$out/nvidia_smi.txt" | head -20

echo "== build (pip install --no-build-isolation --no-deps .)"
start=$(date +%s)
# Only the card at hand's architecture (90 = H100/H200): one nvcc pass per file, not two.
archs="${PYENGINE_CUDA_ARCHS:-90}"
if ! CMAKE_ARGS="-DPYENGINE_CUDA_ARCHS=$archs" python -m pip install -v --no-build-isolation --no-deps . \
  >"$out/build.log" 2>&1; then
  echo "build failed; the end of $out/build.log:"
  tail -40 "$out/build.log"
  exit 1
fi
echo "built in $(($(date +%s) - start)) s"

echo "== build facts"
grep -h "pyengine:" "$out/build.log" || true
python -m pyengine info 2>&1 | tee "$out/info.txt"
site=$(cd /tmp && python -c "import os, pyengine; print(os.path.dirname(pyengine.__file__))")
for so in "$site"/_C*.so "$site"/_cuda*.so; do
  echo "$(basename "$so") needs: $(readelf -d "$so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
done

# pytest-xdist spreads the tests over the machine's cores when it is installed.
par=()
python -c "import xdist" 2>/dev/null && par=(-n "${GPU_CHECK_WORKERS:-8}")

echo "== cuda-marked tests (failures and skip reasons listed)"
python -m pytest -q -p no:cacheprovider "${par[@]}" -m cuda -rfEs --durations=10 tests \
  >"$out/cuda_tests.log" 2>&1 || status=1
grep -E "^(FAILED|ERROR)" "$out/cuda_tests.log" | head -40
tail -15 "$out/cuda_tests.log"

if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then
  echo "== side-by-side timings (python -m pyengine bench --device cuda)"
  # shellcheck disable=SC2086  # GPU_BENCH_ARGS is a list of words
  PYTHONUNBUFFERED=1 timeout "${GPU_BENCH_TIMEOUT:-300}" python -m pyengine bench --device cuda \
    --json "$out/gpu_bench.json" ${GPU_BENCH_ARGS:-} 2>&1 | tee "$out/gpu_bench.log" || status=1
fi

if [ "${GPU_CHECK_FULL:-1}" = 1 ]; then
  echo "== the rest of the suite (not cuda-marked; those ran above)"
  OMP_NUM_THREADS=2 python -m pytest -q -p no:cacheprovider "${par[@]}" -m "not cuda" tests \
    >"$out/tests.log" 2>&1 || status=1
  tail -5 "$out/tests.log"
fi

echo "== gpu_check exit status: $status (logs in $out)"
exit "$status"
