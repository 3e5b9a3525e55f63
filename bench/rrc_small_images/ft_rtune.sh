#!/bin/bash
# ft_rtune.sh SEED CROP(rrc|none) BN(eval|train) FREEZE(backbone|none): one JSON line like ft_torch.py's
seed=$1 crop=$2 bn=$3 freeze=$4
first=$([ $crop = rrc ] && echo random_resized_crop=32 || echo center_crop=32)
out=/tmp/rrc/runs/rt_$(basename ${DATA:-digits})_${crop}_${bn}_${freeze}_$seed; rm -rf $out
${RTUNE:-/work/wt-rrc/build-sim/rtune} train --data ${DATA:-/tmp/rrc/digits} --weights /tmp/rrc/letters_r18w16.pth --freeze $freeze --frozen-bn $bn \
  --epochs 10 --lr 0.01 --batch 32 --transforms $first,hflip,normalize=imagenet --val-transforms center_crop=32,normalize=imagenet \
  --device cpu --threads 1 --no-progress --seed $seed --out $out > $out.log 2>&1 || { echo "FAIL $out"; exit 1; }
python3 -c "
import json; a=[json.loads(l)['val_top1'] for l in open('$out/metrics.jsonl')]
print(json.dumps({'tool':'rtune','data':'$(basename ${DATA:-/tmp/rrc/digits})','seed':$seed,'crop':'$crop','bn':'$bn','freeze':'$freeze','best':max(a),'accs':[round(x,4) for x in a]}))"
