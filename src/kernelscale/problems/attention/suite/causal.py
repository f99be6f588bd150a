"""Causal attention, bottom-right aligned: query i sees keys 0..i + (Skv - Sq).

At Sq = Skv this is SDPA's is_causal; with fewer query rows than keys (decoding) the rows are
the last Sq positions of the sequence, as FlashAttention and PyTorch's causal_lower_right align them.
"""


def make(B, Hq, Hkv, Sq, Skv, D, device):
    offset = Skv - Sq  # query row i sits at position i + offset of the key sequence

    def mask_mod(b, h, q_idx, kv_idx):
        return q_idx + offset >= kv_idx

    return None, mask_mod


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
