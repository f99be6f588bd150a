"""An attention variant whose make() draws its captured tensor with a CPU generator and then
moves it to the device it is given, as the variant contract allows. Under an ambient
`with torch.device("cuda")` the draw fails ("Expected a 'cuda' device type for generator");
the check below makes the same leak visible on any device."""

import torch


def make(B, Hq, Hkv, Sq, Skv, D, device):
    generator = torch.Generator(device="cpu").manual_seed(7)
    bias = torch.rand(Hq, generator=generator) * 0.1
    if bias.device.type != "cpu":
        raise RuntimeError(f"make() ran under an ambient device ({bias.device}), not as its contract says")
    bias = bias.to(device)

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + bias[h]

    return score_mod, None
