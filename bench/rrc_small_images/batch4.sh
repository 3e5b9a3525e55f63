cd /tmp/rrc
for seed in 0 1 2; do for crop in rrc none; do DATA=/tmp/rrc/clean ./ft_rtune.sh $seed $crop eval backbone; done; done
