#!/usr/bin/env bash
# The GPU check in one call (issue 9): on the device machine, from the repository root,
#   bash tools/gpu_check.sh
# builds pyengine with its CUDA module (that machine has no network: no build isolation, no
# dependencies fetched), prints the build facts and nvidia-smi, and runs the whole test suite
# with the cuda-marked tests included, then those alone with their skip reasons. Logs go to $OUT
# (the device tool brings that folder back), or to ./gpu_check_out without it.
# Exit status: 0 when the build and both test runs pass, else 1. GPU benchmarks are not in it yet
# (`python -m pyengine bench` times the CPU only).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check_out}"
mkdir -p "$out"
status=0

echo "== nvidia-smi"
{ nvidia-smi || echo "nvidia-smi: not found or failed"; } 2>&1 | tee "$out/nvidia_smi.txt" | head -20

echo "== build (pip install --no-build-isolation --no-deps .)"
start=$(date +%s)
if ! pip install --no-build-isolation --no-deps . >"$out/build.log" 2>&1; then
  echo "build failed; the end of $out/build.log:"
  tail -40 "$out/build.log"
  exit 1
fi
echo "built in $(($(date +%s) - start)) s"

echo "== build facts"
python -m pyengine info 2>&1 | tee "$out/info.txt"

echo "== whole suite, cuda tests included"
python -m pytest -q -p no:cacheprovider tests >"$out/tests.log" 2>&1 || status=1
tail -15 "$out/tests.log"

echo "== cuda-marked tests alone (skip reasons listed)"
python -m pytest -q -p no:cacheprovider -m cuda -rs tests >"$out/cuda_tests.log" 2>&1 || status=1
tail -15 "$out/cuda_tests.log"

echo "== gpu_check exit status: $status (logs in $out)"
exit "$status"
