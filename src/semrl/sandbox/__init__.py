"""The offline sandbox: a synthetic world with known meanings, a high-resource language H, a
low-resource language L in Tibetan script, general tasks in H, target tasks in L, and an oracle."""
