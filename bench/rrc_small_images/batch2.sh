cd /tmp/rrc
for seed in 0 1 2; do for data in digits clean; do for crop in rrc none; do for bn in train eval; do
  python3 ft_torch.py $seed $crop $bn backbone 32 10 --data /tmp/rrc/$data --two-val
done; done; done; done
