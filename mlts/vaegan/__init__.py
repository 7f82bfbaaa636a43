"""β-VAEGAN (papers/001): model, anomaly scores and their composition."""
