"""Relative positional bias: score + (q_idx - kv_idx), as in NVIDIA's DeepSeek-R1 prompt."""


def score_mod(score, b, h, q_idx, kv_idx):
    return score + (q_idx - kv_idx)


if __name__ == "__main__":
    from kernelscale.problems.attention.selfcheck import main

    main(__file__)
