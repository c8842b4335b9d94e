#!/bin/bash
# Train on 2 nodes x 4 GPUs with DDP under SLURM: one task per GPU, started by srun.
# Lightning reads the ranks from SLURM's environment; rank 0 creates the run directory and
# every process writes into it. Submit from the repository root:  sbatch examples/slurm_ddp.sh
#
#SBATCH --job-name=spanet-lite
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4          # must equal --gpus below
#SBATCH --gres=gpu:4
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --signal=SIGINT@300          # Ctrl-C 5 minutes before the end: a resumable checkpoint
#SBATCH --output=spanet-%j.log

set -euo pipefail
source .venv/bin/activate

# batch_size in the options file is the global batch: each of the 8 processes takes 1/8 of it.
# --time-limit stops cleanly a little before SLURM would kill the job; resubmitting with
# --resume runs/<name>/version_N continues with the same epoch counter, optimiser and schedule.
srun spanet-train options_files/semi_leptonic_ttH/example.json \
    --gpus 4 --nodes "${SLURM_NNODES}" \
    --name "ttH-${SLURM_JOB_ID}" \
    --time-limit 11:50:00 \
    --quiet

# The same job with torchrun instead of srun (one launcher per node, 4 processes each):
#   srun --ntasks-per-node=1 torchrun --nnodes "${SLURM_NNODES}" --nproc-per-node 4 \
#       --rdzv-backend c10d --rdzv-endpoint "$(scontrol show hostnames "$SLURM_NODELIST" | head -1):29500" \
#       -m spanet_lite.cli.train options_files/semi_leptonic_ttH/example.json --gpus 4 --nodes "${SLURM_NNODES}"
