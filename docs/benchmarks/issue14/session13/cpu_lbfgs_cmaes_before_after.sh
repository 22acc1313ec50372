#!/bin/bash
old=/work/build-903/examples/ganinv; new=/work/fresh/build/examples/ganinv
M=/work/main/models/fmnist32.safetensors
imgs=$(ls /work/main/examples/images/*.png | head -8)
for cfg in "lbfgs-wplus:--optimizer lbfgs --space wplus --steps 30" "lbfgs-w-noise:--optimizer lbfgs --space w --optimize-noise --steps 30" "cmaes-w:--optimizer cmaes --space w --steps 100" "cmaes-wplus:--optimizer cmaes --space wplus --steps 100"; do
  name=${cfg%%:*}; args=${cfg#*:}
  for round in 1 2; do
    for side in old new; do
      bin=$old; [ $side = new ] && bin=$new
      rm -rf /tmp/ab_out; s=$(date +%s.%N)
      $bin invert --model $M --out /tmp/ab_out --seed 0 $args --image $imgs > /tmp/ab_$side.log 2>&1 || { echo "$name $side FAILED"; tail -3 /tmp/ab_$side.log; continue; }
      wall=$(python3 -c "import time;print(round(time.time()-$s,2))")
      opt=$(/usr/bin/python3 -c "import json;d=json.load(open('/tmp/ab_out/summary.json'));print(round(sum(i['batch_seconds'] for i in d['images'][:1]),2), round(sum(i['psnr'] for i in d['images'])/len(d['images']),3))" 2>/dev/null)
      echo "$name round $round $side wall ${wall}s batch_s/psnr $opt"
    done
  done
done
