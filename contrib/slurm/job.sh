#!/bin/bash
# An example Slurm job that runs its payload in a fresh VM from a HEPiX image (hvwg-run(1)).
# The VM gets the cores Slurm allocated (-c), its memory (--mem, else cores × hvwgd's
# MemoryPerCoreMiB), a scratch disk as working directory, and is removed when the job ends,
# is canceled (scancel) or times out. The job's exit code is the payload's.
#
#   sbatch contrib/slurm/job.sh
#
#SBATCH --job-name=vm-job
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=vm-job-%j.out
# the image: a job comment the prolog reads (contrib/slurm/prolog.sh fetches it before the job)
#SBATCH --comment=hvwg-image=el9-worker

set -euo pipefail
exec hvwg-run --image=el9-worker \
        --env "EVENTS=1000" \
        --file "config.json=$SLURM_SUBMIT_DIR/config.json" \
        --timeout=1h50m \
        -- sh -c './run-analysis.sh --events "$EVENTS"'
