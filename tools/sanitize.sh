#!/usr/bin/env bash
# Build pyengine with AddressSanitizer + UndefinedBehaviorSanitizer into its own virtual
# environment and run the kernel tests under them. Usage: tools/sanitize.sh [pytest args...]
# The CUDA module is left out (sanitizers do not apply to device code).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PYENGINE_SAN_VENV:-/tmp/pyengine-sanitize-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
# The build tools (no build isolation: the sanitizer flags reach CMake through -C options) and
# the test extra; already-present packages (system site) are left as they are.
pip install --quiet scikit-build-core pybind11 cmake ninja numpy pytest hypothesis \
  pytest-benchmark scikit-learn matplotlib
pip install --quiet --no-build-isolation --no-deps --force-reinstall \
  -Cbuild-dir=build/sanitize -Ccmake.build-type=RelWithDebInfo \
  -Ccmake.define.PYENGINE_SANITIZE=address,undefined -Ccmake.define.PYENGINE_CUDA=OFF .
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
# Python itself leaks by design at exit: leak checking off; UBSan findings are fatal.
# Reports go to files as well: pytest captures stderr and a halted process never prints it.
logs="${PYENGINE_SAN_LOGS:-/tmp/pyengine-sanitize-logs}"
rm -rf "$logs" && mkdir -p "$logs"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_init_order=1:log_path=$logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
# Run from tests/ so that the sanitized install is imported, not the source tree; test paths
# may be given from the repository root (tests/test_x.py).
cd tests
args=("${@#tests/}")
# The CUDA host-emulation tests run nvcc, which must not inherit the sanitizer preload.
# --capture=sys: a sanitizer writes its report to file descriptor 2 and ends the process, so
# pytest's fd capture would swallow it.
status=0
LD_PRELOAD="$asan $ubsan" python -m pytest -q -p no:cacheprovider --capture=sys -k "not emu" "${args[@]:-.}" ||
  status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "== sanitizer reports ($logs):"
  head -n 40 "$logs"/*
  status=1
fi
exit "$status"
