"""Causal sliding window: the query at position p sees keys p-window..p; window 1024 at S=4096.

The window is a quarter of the key sequence below 4096 so the small CPU shape still exercises
it. Query row i sits at key position p = i + (Skv - Sq) (bottom-right, as in decoding).
"""


def make(B, Hq, Hkv, Sq, Skv, D, device):
    window = min(1024, max(1, Skv // 4))
    offset = Skv - Sq

    def mask_mod(b, h, q_idx, kv_idx):
        q_pos = q_idx + offset
        return (q_pos >= kv_idx) & (q_pos - kv_idx <= window)

    return None, mask_mod


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
