cd /tmp/rrc
for seed in 0 1 2 3 4; do
 for crop in rrc none; do for bn in train eval; do
  python3 ft_torch.py $seed $crop $bn backbone | sed 's/^{/{"tool": "torch", /'
  ./ft_rtune.sh $seed $crop $bn backbone
 done; done
done
