"""Causal sliding window: query i sees keys i-window..i; window 1024 at the default S=4096.

The window is a quarter of the sequence below S=4096 so the small CPU shape still exercises it.
"""


def make(B, Hq, Hkv, Sq, Skv, D, device):
    window = min(1024, max(1, Skv // 4))

    def mask_mod(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx <= window)

    return None, mask_mod


if __name__ == "__main__":
    from kernelscale.problems.attention.selfcheck import main

    main(__file__)
