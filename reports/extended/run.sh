#!/usr/bin/env bash
# The extended study (issue 19): every run, comparison and report under reports/extended/.
# From the repository root after reports/extended/extract.sh (or without it: `run` extracts what is
# not cached). Each step's wall time goes to reports/extended/times.txt.
set -euo pipefail
D=../shared/data
O=reports/extended
C="--cache .cache/study --seeds 5 --seed 0 --similarity-resamples 50 --quiet"
declare -A N=([lc25000_lung]=120 [lc25000_colon]=120 [idc_breast50]=120 [kather2016_crc_texture]=60)
declare -A G=([lc25000_lung]="" [lc25000_colon]="" [idc_breast50]="--group-column group" [kather2016_crc_texture]="--group-column slide_id")
SETS=${SETS:-"lc25000_colon idc_breast50 lc25000_lung kather2016_crc_texture"}
t() { local what=$1; shift; local s=$SECONDS; "$@"; echo "$what $((SECONDS - s)) s" >> $O/times.txt; }
for s in $SETS; do
  # Lite0: 3 readouts x 3 baselines, one run (9 configurations and their paired comparison)
  t "$s lite0 run" .venv/bin/layergain run --data $D/$s --max-per-class ${N[$s]} ${G[$s]} $C \
      --readout avg,cov,grid --baseline default,bn-recalibrated,matched --out $O/$s/lite0
done
for s in $SETS; do
  # Lite1 and Lite2: global average readout, default baseline; then the three side by side
  for m in lite1 lite2; do
    t "$s $m run" .venv/bin/layergain run --data $D/$s --max-per-class ${N[$s]} ${G[$s]} $C \
        --model efficientnet_$m --out $O/$s/$m
  done
  t "$s backbones" .venv/bin/layergain compare $O/$s/lite0/avg_default $O/$s/lite1 $O/$s/lite2 --out $O/$s/backbones --quiet
done
# across the four sets, per configuration of Lite0 (default readout and baseline) and per backbone
for c in avg_default avg_bn-recalibrated avg_matched cov_default grid_default; do
  t "compare $c" .venv/bin/layergain compare $(for s in $SETS; do echo $O/$s/lite0/$c; done) --out $O/comparison/$c --quiet
done
for m in lite1 lite2; do
  t "compare $m" .venv/bin/layergain compare $(for s in $SETS; do echo $O/$s/$m; done) --out $O/comparison/$m --quiet
done
