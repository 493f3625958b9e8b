#!/usr/bin/env bash
# Features of the extended study (issue 19), computed once into .cache/study; `run` reuses them.
# From the repository root after the README's setup and `.venv/bin/pip install -e '.[lite12]'`.
set -euo pipefail
D=../shared/data
C="--cache .cache/study --seeds 5 --seed 0"
declare -A N=([lc25000_lung]=120 [lc25000_colon]=120 [idc_breast50]=120 [kather2016_crc_texture]=60)
declare -A G=([lc25000_lung]="" [lc25000_colon]="" [idc_breast50]="--group-column group" [kather2016_crc_texture]="--group-column slide_id")
for s in lc25000_colon lc25000_lung idc_breast50 kather2016_crc_texture; do
  /usr/bin/time -f "$s lite0 %e s" .venv/bin/layergain extract --data $D/$s --max-per-class ${N[$s]} ${G[$s]} $C \
      --readout avg,cov,grid --baseline default,bn-recalibrated,matched --quiet
done
for m in efficientnet_lite1 efficientnet_lite2; do
  for s in lc25000_colon lc25000_lung idc_breast50 kather2016_crc_texture; do
    /usr/bin/time -f "$s $m %e s" .venv/bin/layergain extract --data $D/$s --max-per-class ${N[$s]} ${G[$s]} $C \
        --model $m --quiet
  done
done
