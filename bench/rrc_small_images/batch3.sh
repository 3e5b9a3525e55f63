cd /tmp/rrc
for seed in 0 1 2; do for crop in rrc none; do
  python3 ft_torch.py $seed $crop train none | sed 's/^{/{"tool": "torch", /'
  ./ft_rtune.sh $seed $crop train none
done; done
