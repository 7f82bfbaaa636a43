"""COGNOS (papers/002): the GWNR residual-whitening loss and the ARKS residual Kalman smoother."""
