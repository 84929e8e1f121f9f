#!/bin/sh
# Slurm Epilog (slurm.conf: Epilog=/etc/slurm/hvwg-epilog.sh) on the compute node, as root,
# after a job ends however it ended: removes any machine the job left (its name starts with
# slurm-JOBID-, see hvwg-run(1)). hvwg-run and hvwgd already remove them in every case they
# can see (end, scancel, timeout, hvwg-run killed); this is the belt to those braces, for
# example after hvwgd itself was restarted during the job.
[ -n "${SLURM_JOB_ID:-}" ] || exit 0
hvwgctl --no-legend machines 2>/dev/null | awk '{print $1}' | grep "^slurm-${SLURM_JOB_ID}-" | while read -r m; do
  logger -t hvwg-epilog "job $SLURM_JOB_ID ended: removing its machine $m"
  hvwgctl --quiet destroy "$m" || logger -t hvwg-epilog "job $SLURM_JOB_ID: cannot remove $m"
done
exit 0
