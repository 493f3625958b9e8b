#!/usr/bin/env bash
# (how this session ran the rest after reordering: per set, extract Lite1/Lite2 then run them, so
# that extraction and runs never work on the same features at once; the same commands as run.sh)
set -euo pipefail
D=../shared/data
O=reports/extended
C="--cache .cache/study --seeds 5 --seed 0 --quiet"
R="--similarity-resamples 50"
declare -A N=([lc25000_lung]=120 [lc25000_colon]=120 [idc_breast50]=120 [kather2016_crc_texture]=60)
declare -A G=([lc25000_lung]="" [lc25000_colon]="" [idc_breast50]="--group-column group" [kather2016_crc_texture]="--group-column slide_id")
t() { local what=$1; shift; local s=$SECONDS; "$@"; echo "$what $((SECONDS - s)) s" >> $O/times.txt; }
while pgrep -f "layergain extract --data ../shared/data/lc25000_lung" >/dev/null; do sleep 10; done
for s in lc25000_colon idc_breast50 lc25000_lung kather2016_crc_texture; do
  for m in lite1 lite2; do
    t "$s $m extract" .venv/bin/layergain extract --data $D/$s --max-per-class ${N[$s]} ${G[$s]} $C --model efficientnet_$m
    t "$s $m run" .venv/bin/layergain run --data $D/$s --max-per-class ${N[$s]} ${G[$s]} $C $R --model efficientnet_$m --out $O/$s/$m
  done
done
while pgrep -f "layergain run --data ../shared/data/kather2016_crc_texture --max-per-class 60 --group-column slide_id --cache .cache/study --seeds 5 --seed 0 --similarity-resamples 50 --quiet --readout" >/dev/null; do sleep 10; done
for s in lc25000_colon idc_breast50 lc25000_lung kather2016_crc_texture; do
  t "$s backbones" .venv/bin/layergain compare $O/$s/lite0/avg_default $O/$s/lite1 $O/$s/lite2 --out $O/$s/backbones --quiet
done
SETS="lc25000_colon idc_breast50 lc25000_lung kather2016_crc_texture"
for c in avg_default avg_bn-recalibrated avg_matched cov_default grid_default; do
  t "compare $c" .venv/bin/layergain compare $(for s in $SETS; do echo $O/$s/lite0/$c; done) --out $O/comparison/$c --quiet
done
for m in lite1 lite2; do
  t "compare $m" .venv/bin/layergain compare $(for s in $SETS; do echo $O/$s/$m; done) --out $O/comparison/$m --quiet
done
echo done >> $O/times.txt
