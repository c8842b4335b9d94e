#!/bin/bash
# Train on 2 nodes x 4 GPUs with DDP under SLURM: one task per GPU, started by srun.
# Lightning reads the ranks from SLURM's environment; rank 0 creates the run directory and
# every process writes into it. Submit from the repository root:  sbatch examples/slurm_ddp.sh
#
# Pre-emption and the wall-clock limit: SLURM sends SIGUSR1 to every task 5 minutes before the
# end (--signal); spanet-train finishes its batch, writes checkpoints/interrupted.ckpt and exits
# 138 (143 for a SIGTERM, e.g. scancel or pre-emption). The script then requeues the job, and
# the requeued job (same SLURM_JOB_ID) finds the run directory and continues it with --resume.
#
#SBATCH --job-name=spanet-lite
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4          # must equal --gpus below
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --signal=USR1@300            # SIGUSR1 to every task 5 minutes before the end
#SBATCH --requeue                    # let the job be put back in the queue (scontrol requeue)
#SBATCH --open-mode=append           # one log across requeues
#SBATCH --output=spanet-%j.log

set -euo pipefail
source .venv/bin/activate

# batch_size in the options file is per process: the 8 processes take 8 x batch_size events per optimiser step.
# --resume continues with the same epoch counter, optimiser, schedule and metrics.csv.
# (Without --signal, --time-limit 11:50:00 stops cleanly before the limit instead, exit 0.)
RUN="runs/ttH-${SLURM_JOB_ID}/version_0"
if [ -f "${RUN}/options.json" ]; then
    ARGS=(--resume "${RUN}")                                   # a requeued job: continue
else
    ARGS=(options_files/semi_leptonic_ttH/example.json --name "ttH-${SLURM_JOB_ID}")
fi
set +e
srun spanet-train "${ARGS[@]}" --gpus 4 --nodes "${SLURM_NNODES}" --quiet
status=$?
set -e
# 138 (SIGUSR1) or 143 (SIGTERM): stopped with a resumable checkpoint, so come back later.
if [ "${status}" -eq 138 ] || [ "${status}" -eq 143 ]; then
    scontrol requeue "${SLURM_JOB_ID}"
fi
exit "${status}"

# The same job with torchrun instead of srun (one launcher per node, 4 processes each):
#   srun --ntasks-per-node=1 torchrun --nnodes "${SLURM_NNODES}" --nproc-per-node 4 \
#       --rdzv-backend c10d --rdzv-endpoint "$(scontrol show hostnames "$SLURM_NODELIST" | head -1):29500" \
#       -m spanet_lite.cli.train options_files/semi_leptonic_ttH/example.json --gpus 4 --nodes "${SLURM_NNODES}"
