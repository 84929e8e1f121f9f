#!/bin/sh
# Slurm Prolog (slurm.conf: Prolog=/etc/slurm/hvwg-prolog.sh) on the compute node, as root,
# before a job starts: fetches the image the job names, so that the job does not wait for the
# download (and a thousand jobs do not start a thousand downloads). The job names it in its
# comment (sbatch --comment=hvwg-image=NAME) and where it comes from in HVWG_IMAGE_URL
# (site-wide, below) — or the image is already there.
#
# A failing Prolog drains the node: this one never fails a job for a missing image (the job's
# own hvwg-run then says "no image named …"); it only logs. Where the images come from signed
# image lists (hvwgctl subscribe --auto-fetch) and jobs name an alias, set HVWG_IMAGE_URL=""
# (nothing to fetch here: the subscription keeps the images current).
HVWG_IMAGE_URL=${HVWG_IMAGE_URL-https://images.example.org/hepix}
[ -n "$HVWG_IMAGE_URL" ] || exit 0
comment=$(scontrol show job "$SLURM_JOB_ID" 2>/dev/null | sed -n 's/.*Comment=\(hvwg-image=[^ ]*\).*/\1/p')
image=${comment#hvwg-image=}
[ -n "$image" ] || exit 0
case $image in *[!A-Za-z0-9._-]*|.*) logger -t hvwg-prolog "job $SLURM_JOB_ID: invalid image name"; exit 0 ;; esac
if hvwgctl --quiet --no-legend images | awk '{print $1}' | grep -qx "$image"; then
  exit 0
fi
# a second job's prolog while the first one fetches waits for that download (one download per
# image and host) and its job finds the image once it is done (or says it is missing)
hvwgctl --quiet fetch "$HVWG_IMAGE_URL/$image.img.gz" "$image" ||
  logger -t hvwg-prolog "job $SLURM_JOB_ID: fetching $image failed (exit $?)"
exit 0
