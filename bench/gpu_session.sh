#!/usr/bin/env bash
# Everything a short GPU session should measure for issue 19, as one call that fits one
# device command (10 minutes): the machine, the CUDA tests (no host round trip inside a
# training step, device-resident data, greedy decoding on the GPU), then bench/bench_gpu.py.
# Each part has its own time limit, and bench_gpu rewrites its JSON after every
# configuration, so a part that runs long costs only its own figures. A part still running at
# its limit gets SIGTERM and, KILL_AFTER seconds later, SIGKILL: a training run takes SIGTERM
# as a request to stop cleanly (it checkpoints and returns), after which bench_gpu would go on
# to its next configuration.
#
#   bash bench/gpu_session.sh OUT_DIR            # on the GPU machine, from the repository root
#   QUICK=1 bash bench/gpu_session.sh OUT_DIR    # the same steps at toy sizes (a CPU dry run)
#
# Writes OUT_DIR/machine.txt, pytest.txt, bench_gpu.txt and bench_gpu.json; prints a summary.
# Runs the package from this tree (PYTHONPATH=.), as on a machine without its console scripts.
set -uo pipefail

out=${1:?usage: bash bench/gpu_session.sh OUT_DIR}
mkdir -p "$out"
export PYTHONPATH=.
python=${PYTHON:-python}
# Every part runs under `timeout -k`: their limits and kill delays add up to 585 s at most, so
# the summary below is printed inside the device's 600 s per command.
tests_limit=${TESTS_LIMIT:-120}
bench_limit=${BENCH_LIMIT:-390}
kill_after=${KILL_AFTER:-10}
bench_args=(--json "$out/bench_gpu.json")
if [[ -n "${QUICK:-}" ]]; then
    bench_args+=(--quick)
fi

{
    date -u
    timeout -k 5 15 nvidia-smi || echo "nvidia-smi: not available"
    timeout -k 5 30 "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
} > "$out/machine.txt" 2>&1

timeout -k "$kill_after" "$tests_limit" "$python" -m pytest -q -p no:cacheprovider -rs \
    tests/test_step_sync.py tests/test_device_data.py \
    tests/test_decoding_on_device.py > "$out/pytest.txt" 2>&1
tests_rc=$?

timeout -k "$kill_after" "$bench_limit" "$python" bench/bench_gpu.py "${bench_args[@]}" > "$out/bench_gpu.txt" 2>&1
bench_rc=$?

echo "machine: $(grep -m1 '^torch' "$out/machine.txt")"
echo "tests (rc $tests_rc, 124 or 137 = time limit): $(tail -n 1 "$out/pytest.txt")"
echo "bench_gpu (rc $bench_rc, 124 or 137 = time limit): one JSON line per configuration"
grep '^{"' "$out/bench_gpu.txt" | grep -v '^{"device"' | cut -c1-1500
exit $(( tests_rc != 0 || bench_rc != 0 ))
