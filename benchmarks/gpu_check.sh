#!/usr/bin/env bash
# On a machine with a CUDA GPU: the device-parametrised tests on CUDA, then the benchmark
# workloads with --device cuda, written as the GPU section of benchmarks/RESULTS-gpu.md (merged
# into benchmarks/RESULTS.md by hand after a look). At most about 4 minutes.
#
#   bash benchmarks/gpu_check.sh [DATA_DIR]      # DATA_DIR: full MNIST (default ../shared/data/mnist)
#
# Assumes the environment of `make venv` (.venv with torch and the package); on a fresh machine it
# creates it. Everything it prints also goes to benchmarks/gpu_check.log.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA_DIR="${1:-../shared/data/mnist}"
LOG=benchmarks/gpu_check.log
PY=.venv/bin/python
exec > >(tee "$LOG") 2>&1

[ -x "$PY" ] || make venv >/dev/null
"$PY" - <<'PYEOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
PYEOF
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device here: nothing to check"; exit 1
fi

echo "== device-parametrised tests (cpu and cuda) =="
timeout 90 "$PY" -m pytest -q -m device tests/test_on_devices.py -p no:cacheprovider
TESTS=$?

echo "== benchmark workloads on cuda =="
timeout 150 "$PY" benchmarks/run.py --device cuda --data-dir "$DATA_DIR" --dataset mnist \
  --no-sklearn --max-wait 0 --retries 0 \
  --only rbm-cd1-h500,rbm-pcd1-h500,vae-z16,ais,iwae,inpaint \
  --json benchmarks/gpu_check.json --out benchmarks/RESULTS-gpu.md
BENCH=$?

echo "tests exit $TESTS, benchmarks exit $BENCH; figures in benchmarks/RESULTS-gpu.md"
exit $(( TESTS != 0 || BENCH != 0 ))
