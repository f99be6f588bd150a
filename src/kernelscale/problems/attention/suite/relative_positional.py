"""Relative positional bias: score + (q_pos - kv_pos), as in NVIDIA's DeepSeek-R1 prompt.

Query row i sits at key position i + (Skv - Sq) (bottom-right); at Sq = Skv, q_pos = q_idx.
"""


def make(B, Hq, Hkv, Sq, Skv, D, device):
    offset = Skv - Sq

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + (q_idx + offset - kv_idx)

    return score_mod, None


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
