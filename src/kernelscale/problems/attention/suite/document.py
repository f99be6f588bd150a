"""Document masking: packed documents of random length (256-1024 at S=4096), causal within each.

Lengths are drawn with torch's RNG in make(), so every seed gives another layout; at other
sequence lengths they scale with S (S/16 to S/4). Query row i sits at key position
i + max(Skv - Sq, 0) (bottom-right, as in decoding).
"""

import torch


def make(B, Hq, Hkv, Sq, Skv, D, device):
    n = max(Sq, Skv)
    lo, hi = max(1, n // 16), max(1, n // 4)
    lengths = []
    while sum(lengths) < n:
        lengths.append(int(torch.randint(lo, hi + 1, (1,))))
    doc_ids = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))[:n].to(device)
    offset = max(Skv - Sq, 0)  # never negative: doc_ids is indexed by the query position

    def mask_mod(b, h, q_idx, kv_idx):
        q_pos = q_idx + offset
        return (q_pos >= kv_idx) & (doc_ids[q_pos] == doc_ids[kv_idx])

    return None, mask_mod


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
