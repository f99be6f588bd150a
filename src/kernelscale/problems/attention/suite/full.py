"""Full attention: every query sees every key, scores unchanged (SDPA's default)."""


def score_mod(score, b, h, q_idx, kv_idx):
    return score


if __name__ == "__main__":
    from kernelscale.cli.variant_check import main

    main(__file__)
